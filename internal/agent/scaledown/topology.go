package scaledown

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/placement"
)

// topology is where pods run in the scale-down simulation, for the rules
// kube-scheduler applies between pods: required topology spread
// constraints (PodTopologySpread) and required inter-pod affinity and
// anti-affinity (InterPodAffinity). It holds every node of the cluster with
// the pods bound to it, plus the pods moved in the simulation, minus the
// pods evicted from the nodes being drained.
//
// A drained node stays, tainted and without its evicted pods: that is what
// the scheduler sees while it places the evicted pods' replacements, as the
// node is deleted only once the drain is over. For a spread constraint
// with the default nodeTaintsPolicy (Ignore) the node is still a domain,
// with no matching pod: it can hold the global minimum down to 0 and make
// the replacement wait, which the provisioner would then answer with a new
// node. The simulation refuses such moves.
//
// The pods matching a rule are counted per node and per domain once per
// pass and rule (cached until a commit), then corrected by the pods the
// trial moved or evicted: a pass evaluates every node, and recounting for
// every moved pod took 30 s for 6,000 spread pods on 200 nodes
// (BenchmarkSimulationTopology; 0.2 s with the caches).
type topology struct {
	nodes map[string]*corev1.Node
	// draining are the nodes being drained in the simulation (cordoned and
	// tainted with TaintScaleDown, as remove does).
	draining map[string]bool
	// byNamespace are the pods with the node each runs on: the committed
	// ones first, then those a trial added. Evicted ones stay and are
	// skipped.
	byNamespace map[string][]placedPod
	// evicted are the pods evicted by committed drains.
	evicted map[placedPod]bool
	// antiAffine are the pods with required anti-affinity terms, committed
	// ones first.
	antiAffine []antiAffinePod
	// trial, when set, records a trial placement's changes so that undo
	// can revert them.
	trial *topologyTrial
	// counts caches the committed pods matching a filter per node, by the
	// filter's key; domainCache the same per domain, for a topology key
	// and a set of eligible nodes; refusals the committed anti-affine pods
	// refusing a pod (by its namespace and labels), by topology key and
	// value.
	counts      map[string]map[string]int
	domainCache map[string]*domainBase
	refusals    map[string]map[string]map[string][]placedPod
}

// placedPod is a pod on a node: where it is bound, or where the simulation
// moved it.
type placedPod struct {
	pod  *corev1.Pod
	node string
}

type antiAffinePod struct {
	placedPod
	terms []podTerm
}

type topologyTrial struct {
	draining []string
	evicted  map[placedPod]bool
	added    []placedPod
	addedIn  map[string]int // pods added per namespace
	anti     int            // len(antiAffine) before the trial
}

// newTopology takes every node of the view (Ready or not, cordoned or not:
// with the default policies the scheduler counts them all as domains)
// with its pods.
func newTopology(v *capacity.View) *topology {
	t := &topology{
		nodes:       make(map[string]*corev1.Node, len(v.Nodes)),
		draining:    map[string]bool{},
		byNamespace: map[string][]placedPod{},
		evicted:     map[placedPod]bool{},
	}
	for _, n := range v.Nodes {
		t.nodes[n.Name] = n
		for _, p := range v.PodsOn[n.Name] {
			t.add(p, n.Name)
		}
	}
	return t
}

// begin starts a trial: the changes until undo or keep are recorded.
func (t *topology) begin() {
	t.trial = &topologyTrial{evicted: map[placedPod]bool{}, addedIn: map[string]int{}, anti: len(t.antiAffine)}
}

// keep ends the trial and commits its changes.
func (t *topology) keep() {
	if t.trial == nil {
		return
	}
	for p := range t.trial.evicted {
		t.evicted[p] = true
	}
	t.trial = nil
	t.invalidate()
}

// undo ends the trial and reverts its changes.
func (t *topology) undo() {
	tr := t.trial
	t.trial = nil
	if tr == nil {
		return
	}
	for _, name := range tr.draining {
		delete(t.draining, name)
	}
	for ns, n := range tr.addedIn {
		t.byNamespace[ns] = t.byNamespace[ns][:len(t.byNamespace[ns])-n]
	}
	t.antiAffine = t.antiAffine[:tr.anti]
}

func (t *topology) invalidate() { t.counts, t.domainCache, t.refusals = nil, nil, nil }

// add puts the pod on the node.
func (t *topology) add(pod *corev1.Pod, node string) {
	p := placedPod{pod: pod, node: node}
	t.byNamespace[pod.Namespace] = append(t.byNamespace[pod.Namespace], p)
	if t.trial != nil {
		t.trial.added = append(t.trial.added, p)
		t.trial.addedIn[pod.Namespace]++
	} else {
		t.invalidate()
	}
	if a := pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
		// An existing pod's term that cannot be read cannot refuse
		// anyone (the API server validates selectors).
		terms, _ := parseTerms(pod, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, true)
		t.antiAffine = append(t.antiAffine, antiAffinePod{placedPod: p, terms: terms})
	}
}

// drain marks the node as being drained and the pods as evicted from it;
// the node's other pods (DaemonSet and static pods) stay until it goes.
func (t *topology) drain(node string, evicted []*corev1.Pod) {
	if !t.draining[node] {
		t.draining[node] = true
		if t.trial != nil {
			t.trial.draining = append(t.trial.draining, node)
		}
	}
	for _, pod := range evicted {
		p := placedPod{pod: pod, node: node}
		switch {
		case t.evicted[p]:
		case t.trial != nil:
			t.trial.evicted[p] = true
		default:
			t.evicted[p] = true
			t.invalidate()
		}
	}
}

// present reports whether the pod still runs where it is placed.
func (t *topology) present(p placedPod) bool {
	return !t.evicted[p] && (t.trial == nil || !t.trial.evicted[p])
}

// committed calls fn for the committed, not evicted pods of the
// namespaces (nil: all).
func (t *topology) committed(namespaces map[string]bool, fn func(placedPod)) {
	for ns, pods := range t.byNamespace {
		if namespaces != nil && !namespaces[ns] {
			continue
		}
		if t.trial != nil {
			pods = pods[:len(pods)-t.trial.addedIn[ns]]
		}
		for _, p := range pods {
			if !t.evicted[p] {
				fn(p)
			}
		}
	}
}

// podFilter selects the pods that match every term; live ones only
// (not terminating) if live.
type podFilter struct {
	terms []podTerm
	live  bool
}

func (f podFilter) matches(p *corev1.Pod) bool {
	return (!f.live || p.DeletionTimestamp == nil) && matchesAll(f.terms, p)
}

// key identifies the filter in the cache.
func (f podFilter) key() string {
	var b strings.Builder
	fmt.Fprint(&b, f.live)
	for _, t := range f.terms {
		b.WriteString("|")
		if t.anyNamespace {
			b.WriteString("*")
		} else {
			b.WriteString(strings.Join(slices.Sorted(maps.Keys(t.namespaces)), ","))
		}
		// Everything and Nothing both print as "".
		_, selects := t.selector.Requirements()
		fmt.Fprintf(&b, "|%t|%s", selects, t.selector.String())
	}
	return b.String()
}

// namespaces are those the filter looks at (nil: all).
func (f podFilter) namespaces() map[string]bool {
	out := map[string]bool{}
	for _, t := range f.terms {
		if t.anyNamespace {
			return nil
		}
		for ns := range t.namespaces {
			out[ns] = true
		}
	}
	return out
}

// matching returns the committed pods the filter selects, per node
// (cached until a commit).
func (t *topology) matching(f podFilter, key string) map[string]int {
	if perNode, ok := t.counts[key]; ok {
		return perNode
	}
	perNode := map[string]int{}
	t.committed(f.namespaces(), func(p placedPod) {
		if f.matches(p.pod) {
			perNode[p.node]++
		}
	})
	if t.counts == nil {
		t.counts = map[string]map[string]int{}
	}
	t.counts[key] = perNode
	return perNode
}

// domainCounts are the pods a filter selects per value of a topology key,
// over some nodes: the committed ones (base, maybe cached: read only)
// corrected by the trial (delta, on few domains).
type domainCounts struct {
	*domainBase
	delta map[string]int
}

// domainBase are the committed counts: every value of the nodes counted is
// a key of counts, with or without pods; hist tells how many domains have
// each count, fewest pods first.
type domainBase struct {
	counts map[string]int
	hist   []domainsWith
	total  int
}

type domainsWith struct{ pods, domains int }

func newDomainBase(counts map[string]int) *domainBase {
	b := &domainBase{counts: counts}
	by := map[int]int{}
	for _, n := range counts {
		by[n]++
		b.total += n
	}
	for _, n := range slices.Sorted(maps.Keys(by)) {
		b.hist = append(b.hist, domainsWith{pods: n, domains: by[n]})
	}
	return b
}

func (d domainCounts) at(v string) int { return d.counts[v] + d.delta[v] }

// min returns the fewest pods in a domain (0 without a domain) and the
// number of domains.
func (d domainCounts) min() (int, int) {
	low, found := 0, false
	for v, k := range d.delta {
		if n := d.counts[v] + k; !found || n < low {
			low, found = n, true
		}
	}
	// The fewest among the domains the trial left alone.
	for _, h := range d.hist {
		touched := 0
		for v := range d.delta {
			if d.counts[v] == h.pods {
				touched++
			}
		}
		if h.domains > touched {
			if !found || h.pods < low {
				low = h.pods
			}
			break
		}
	}
	return low, len(d.counts)
}

// empty reports whether no domain has a pod.
func (d domainCounts) empty() bool {
	n := d.total
	for _, k := range d.delta {
		n += k
	}
	return n == 0
}

// domains counts the pods the filter selects per value of the topology
// key, on the nodes that have the key and that eligible accepts. sig,
// unless empty, identifies eligible for the cache: it must not depend on
// the trial.
func (t *topology) domains(f podFilter, key string, eligible func(*corev1.Node) bool, sig string) domainCounts {
	fk := f.key()
	ck := ""
	var base *domainBase
	if sig != "" {
		ck = fk + "\x00" + key + "\x00" + sig
		base = t.domainCache[ck]
	}
	if base == nil {
		perNode := t.matching(f, fk)
		counts := map[string]int{}
		for name, n := range t.nodes {
			if v, ok := n.Labels[key]; ok && eligible(n) {
				counts[v] += perNode[name]
			}
		}
		base = newDomainBase(counts)
		if ck != "" {
			if t.domainCache == nil {
				t.domainCache = map[string]*domainBase{}
			}
			t.domainCache[ck] = base
		}
	}
	d := domainCounts{domainBase: base, delta: map[string]int{}}
	if t.trial == nil {
		return d
	}
	count := func(p placedPod, k int) {
		n := t.nodes[p.node]
		if v, ok := n.Labels[key]; ok && f.matches(p.pod) && eligible(n) {
			d.delta[v] += k
		}
	}
	for _, p := range t.trial.added {
		count(p, 1)
	}
	for p := range t.trial.evicted {
		count(p, -1)
	}
	return d
}

// refusing returns the committed anti-affine pods whose terms match the
// pod, by topology key and value, and those a trial added.
func (t *topology) refusing(pod *corev1.Pod) (map[string]map[string][]placedPod, []placedPod, []podTerm) {
	committed := len(t.antiAffine)
	if t.trial != nil {
		committed = t.trial.anti
	}
	k := pod.Namespace + "\x00" + labels.Set(pod.Labels).String()
	base, ok := t.refusals[k]
	if !ok {
		base = map[string]map[string][]placedPod{}
		for _, a := range t.antiAffine[:committed] {
			if t.evicted[a.placedPod] {
				continue
			}
			n := t.nodes[a.node]
			for _, term := range a.terms {
				if v, ok := n.Labels[term.key]; ok && term.matches(pod) {
					if base[term.key] == nil {
						base[term.key] = map[string][]placedPod{}
					}
					base[term.key][v] = append(base[term.key][v], a.placedPod)
				}
			}
		}
		if t.refusals == nil {
			t.refusals = map[string]map[string]map[string][]placedPod{}
		}
		t.refusals[k] = base
	}
	var added []placedPod
	var addedTerms []podTerm
	for _, a := range t.antiAffine[committed:] {
		for _, term := range a.terms {
			if term.matches(pod) {
				added = append(added, a.placedPod)
				addedTerms = append(addedTerms, term)
			}
		}
	}
	return base, added, addedTerms
}

// drainTaints are the taints a drained node carries besides its own:
// the cordon's and the scale-down's.
var drainTaints = []corev1.Taint{
	{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule},
	{Key: capacity.TaintScaleDown, Effect: corev1.TaintEffectNoSchedule},
}

func (t *topology) tolerated(pod *corev1.Pod, n *corev1.Node) bool {
	if !placement.Tolerates(pod, n.Spec.Taints) {
		return false
	}
	return !t.draining[n.Name] || placement.Tolerates(pod, drainTaints)
}

// podRules are a pod's required placement rules against other pods,
// counted on the simulation as it is when the pod moves.
type podRules struct {
	topo *topology
	// invalid, when set, is why the rules cannot be simulated: no node is
	// allowed.
	invalid string
	spread  []spreadRule
	// affinity are the required pod affinity terms; affinityCounts the
	// pods matching all of them by domain; selfAffine that none does and
	// the pod matches its own terms (the first pod of a group may go
	// anywhere).
	affinity       []podTerm
	affinityCounts []domainCounts
	selfAffine     bool
	// anti are the required pod anti-affinity terms, antiCounts the pods
	// matching each, by domain.
	anti       []podTerm
	antiCounts []domainCounts
	// refusedBy are the anti-affine pods whose terms match this pod, by
	// topology key (sorted in refusedKeys) and value; addedRefusers those
	// moved in the trial, with the matching term.
	refusedBy     map[string]map[string][]placedPod
	refusedKeys   []string
	addedRefusers []placedPod
	addedTerms    []podTerm
}

// spreadRule is a DoNotSchedule topology spread constraint with the
// matching pods counted per eligible domain.
type spreadRule struct {
	key     string
	maxSkew int
	// self is 1 if the pod matches its own selector.
	self   int
	counts domainCounts
	// min is the global minimum: the fewest matching pods in an eligible
	// domain, or 0 with fewer eligible domains than minDomains.
	min int
}

// rules computes the pod's rules. A pod without any, and that no existing
// pod's anti-affinity refuses anywhere, gets empty rules.
func (t *topology) rules(pod *corev1.Pod) *podRules {
	r := &podRules{topo: t}
	if err := t.spreadRules(pod, r); err != nil {
		r.invalid = fmt.Sprintf("its topology spread constraints, which cannot be read (%v)", err)
		return r
	}
	if err := t.affinityRules(pod, r); err != nil {
		r.invalid = fmt.Sprintf("its pod affinity, which cannot be simulated (%v)", err)
		return r
	}
	r.refusedBy, r.addedRefusers, r.addedTerms = t.refusing(pod)
	r.refusedKeys = slices.Sorted(maps.Keys(r.refusedBy))
	return r
}

// broken returns the rule the pod would break on the node, or "".
func (r *podRules) broken(n *corev1.Node) string {
	if r.invalid != "" {
		return r.invalid
	}
	for _, s := range r.spread {
		v, ok := n.Labels[s.key]
		if !ok {
			return fmt.Sprintf("its topology spread constraint on %s (node %s has no such label)", s.key, n.Name)
		}
		if s.counts.at(v)+s.self-s.min > s.maxSkew {
			return fmt.Sprintf("its topology spread constraint on %s (maxSkew %d)", s.key, s.maxSkew)
		}
	}
	if len(r.affinity) > 0 {
		exists := true
		for i, term := range r.affinity {
			v, ok := n.Labels[term.key]
			if !ok {
				return fmt.Sprintf("its required pod affinity on %s (node %s has no such label)", term.key, n.Name)
			}
			if r.affinityCounts[i].at(v) <= 0 {
				exists = false
			}
		}
		if !exists && !r.selfAffine {
			return fmt.Sprintf("its required pod affinity on %s", r.affinity[0].key)
		}
	}
	for i, term := range r.anti {
		if v, ok := n.Labels[term.key]; ok && r.antiCounts[i].at(v) > 0 {
			return fmt.Sprintf("its required pod anti-affinity on %s", term.key)
		}
	}
	refused := func(by *corev1.Pod, key string) string {
		return fmt.Sprintf("the required pod anti-affinity of pod %s/%s on %s", by.Namespace, by.Name, key)
	}
	for _, key := range r.refusedKeys {
		v, ok := n.Labels[key]
		if !ok {
			continue
		}
		for _, p := range r.refusedBy[key][v] {
			if r.topo.present(p) {
				return refused(p.pod, key)
			}
		}
	}
	for i, p := range r.addedRefusers {
		key := r.addedTerms[i].key
		v, ok := n.Labels[key]
		at, there := r.topo.nodes[p.node].Labels[key]
		if ok && there && v == at {
			return refused(p.pod, key)
		}
	}
	return ""
}

// spreadRules counts, for each DoNotSchedule constraint of the pod, the
// matching pods of its namespace (terminating ones left out) per domain,
// over the eligible nodes: those with every constraint's topology key
// that pass the constraint's nodeAffinityPolicy (default Honor: the pod's
// nodeSelector and required node affinity) and nodeTaintsPolicy (default
// Ignore).
func (t *topology) spreadRules(pod *corev1.Pod, r *podRules) error {
	var cs []corev1.TopologySpreadConstraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	r.spread = make([]spreadRule, len(cs))
	own := labels.Set(pod.Labels)
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.TopologyKey
	}
	slices.Sort(keys)
	for i, c := range cs {
		sel, err := spreadSelector(c, pod.Labels)
		if err != nil {
			return err
		}
		r.spread[i] = spreadRule{key: c.TopologyKey, maxSkew: int(c.MaxSkew)}
		if sel.Matches(own) {
			r.spread[i].self = 1
		}
		honorAffinity := c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor
		honorTaints := c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor
		eligible := func(n *corev1.Node) bool {
			if !hasKeys(n, cs) {
				return false
			}
			if honorAffinity {
				if ok, _ := required.Match(n); !ok {
					return false
				}
			}
			return !honorTaints || t.tolerated(pod, n)
		}
		// Eligibility depends on the nodes every constraint needs, on
		// the pod's node affinity if honored, and, if taints are
		// honored, on the nodes the trial drains: no caching then.
		sig := ""
		if !honorTaints {
			sig = strings.Join(keys, ",") + "\x00" + nodeAffinityKey(pod, honorAffinity)
		}
		filter := podFilter{terms: []podTerm{{selector: sel, namespaces: map[string]bool{pod.Namespace: true}}}, live: true}
		s := &r.spread[i]
		s.counts = t.domains(filter, c.TopologyKey, eligible, sig)
		var domains int
		s.min, domains = s.counts.min()
		if c.MinDomains != nil && domains < int(*c.MinDomains) {
			s.min = 0
		}
	}
	return nil
}

// nodeAffinityKey identifies the pod's nodeSelector and required node
// affinity ("-" when they are not honored).
func nodeAffinityKey(pod *corev1.Pod, honored bool) string {
	if !honored {
		return "-"
	}
	k := labels.Set(pod.Spec.NodeSelector).String()
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		k += "\x00" + a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.String()
	}
	return k
}

// spreadSelector is the constraint's labelSelector (none: it matches no
// pod) with its matchLabelKeys: the pod's values of those keys, ANDed.
// (Since Kubernetes 1.34 the API server merges them into the selector on
// creation; adding them again changes nothing.)
func spreadSelector(c corev1.TopologySpreadConstraint, podLabels map[string]string) (labels.Selector, error) {
	sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
	if err != nil {
		return nil, fmt.Errorf("labelSelector of the constraint on %s, %w", c.TopologyKey, err)
	}
	for _, key := range c.MatchLabelKeys {
		v, ok := podLabels[key]
		if !ok {
			continue
		}
		req, err := labels.NewRequirement(key, selection.Equals, []string{v})
		if err != nil {
			return nil, fmt.Errorf("matchLabelKeys of the constraint on %s, %w", c.TopologyKey, err)
		}
		sel = sel.Add(*req)
	}
	return sel, nil
}

func hasKeys(n *corev1.Node, cs []corev1.TopologySpreadConstraint) bool {
	for _, c := range cs {
		if _, ok := n.Labels[c.TopologyKey]; !ok {
			return false
		}
	}
	return true
}

// affinityRules counts the pods matching the pod's required affinity and
// anti-affinity terms per domain.
func (t *topology) affinityRules(pod *corev1.Pod, r *podRules) error {
	a := pod.Spec.Affinity
	if a == nil {
		return nil
	}
	if a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
		terms, err := parseTerms(pod, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, false)
		if err != nil {
			return err
		}
		r.affinity = terms
		filter := podFilter{terms: terms}
		found := false
		for _, term := range terms {
			d := t.domains(filter, term.key, anyNode, "all")
			r.affinityCounts = append(r.affinityCounts, d)
			found = found || !d.empty()
		}
		r.selfAffine = !found && matchesAll(terms, pod)
	}
	if a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
		terms, err := parseTerms(pod, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, true)
		if err != nil {
			return err
		}
		r.anti = terms
		for _, term := range terms {
			r.antiCounts = append(r.antiCounts, t.domains(podFilter{terms: []podTerm{term}}, term.key, anyNode, "all"))
		}
	}
	return nil
}

func anyNode(*corev1.Node) bool { return true }

// podTerm is a required pod (anti-)affinity term: the pods it selects and
// its topology key.
type podTerm struct {
	key          string
	selector     labels.Selector
	namespaces   map[string]bool
	anyNamespace bool
}

func (t podTerm) matches(p *corev1.Pod) bool {
	return (t.anyNamespace || t.namespaces[p.Namespace]) && t.selector.Matches(labels.Set(p.Labels))
}

func matchesAll(terms []podTerm, p *corev1.Pod) bool {
	for _, t := range terms {
		if !t.matches(p) {
			return false
		}
	}
	return len(terms) > 0
}

// parseTerms reads the owner pod's terms. A term selects the pods of its
// namespaces (none listed and no namespaceSelector: the owner's own; an
// empty namespaceSelector: all) that match its labelSelector (none: no
// pod); matchLabelKeys and mismatchLabelKeys are already merged into the
// labelSelector by the API server. A namespaceSelector with requirements
// would need the namespaces' labels, which the scale-down does not watch:
// for anti-affinity it is taken to select every namespace (the node stays
// rather than risk a pod that cannot be scheduled); for affinity parseTerms
// fails.
func parseTerms(owner *corev1.Pod, terms []corev1.PodAffinityTerm, anti bool) ([]podTerm, error) {
	out := make([]podTerm, 0, len(terms))
	for _, term := range terms {
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("labelSelector of the term on %s, %w", term.TopologyKey, err)
		}
		t := podTerm{key: term.TopologyKey, selector: sel, namespaces: map[string]bool{}}
		for _, ns := range term.Namespaces {
			t.namespaces[ns] = true
		}
		switch ns := term.NamespaceSelector; {
		case ns == nil:
			if len(term.Namespaces) == 0 {
				t.namespaces[owner.Namespace] = true
			}
		case len(ns.MatchLabels) == 0 && len(ns.MatchExpressions) == 0:
			t.anyNamespace = true
		case anti:
			t.anyNamespace = true
		default:
			return nil, fmt.Errorf("the term on %s has a namespaceSelector", term.TopologyKey)
		}
		out = append(out, t)
	}
	return out, nil
}
