// Package capacity is what the scale-down and the reaper share: a pass's
// view of the cluster's node groups, instances, nodes, pods and PDBs
// (ReadView, from the provider and the informer caches), whether and where
// a node's pods could move (EvictionRules, PDBBudget, Destinations), the
// taints and annotations that keep their state in the API, drains, and the
// metrics both report (CapacityMetrics).
package capacity

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/bosun-platform/bosun/internal/agent/drain"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Taints, annotations and labels the capacity controllers use. The taints
// carry the Unix time they were set, so a node left tainted by a process
// that crashed mid-drain is recognised and uncordoned (or finished) by the
// next one.
const (
	// TaintScaleDown marks a node the scale-down is draining.
	TaintScaleDown = "bosun.dev/scale-down"
	// TaintReapOnDemand marks an on-demand node the reaper is draining.
	TaintReapOnDemand = "bosun.dev/reap-on-demand"
	// AnnotationReapStarted is set on an on-demand node when the reaper
	// asked for its spot replacement (RFC 3339); spot instances launched
	// since then are its replacement.
	AnnotationReapStarted = "bosun.dev/reap-on-demand-started"
	// AnnotationReapSpotGroup names the spot node group the replacement
	// was asked from.
	AnnotationReapSpotGroup = "bosun.dev/reap-spot-group"
	// interruptionTaint is set by internal/agent/interruption (L19).
	interruptionTaint = "bosun.dev/spot-interruption"
	// LabelApplicationGroup groups a pool's spot and on-demand groups
	// (fleet.LabelApplicationGroup).
	LabelApplicationGroup = "node.bosun.dev/application-group"
)

// Member is a Node of the cluster with the instance and group behind it.
type Member struct {
	Node     *corev1.Node
	Group    provider.NodeGroup
	Instance provider.Instance
	Pods     []*corev1.Pod
}

// View is what a pass knows: the cluster's node groups and instances from
// the provider, nodes, pods and PDBs from the informer caches.
type View struct {
	Groups    []provider.NodeGroup
	Instances map[string][]provider.Instance
	// members are nodes backed by an instance of one of the cluster's
	// groups, sorted by node name.
	Members []*Member
	ByNode  map[string]*Member
	// Nodes are all nodes, with their pods in podsOn.
	Nodes  []*corev1.Node
	PodsOn map[string][]*corev1.Pod
	PDBs   []*policyv1.PodDisruptionBudget
	// pending are the pods not bound to a node yet, at or above the
	// scale-up priority cutoff.
	Pending []*corev1.Pod
}

// Listers are the informer caches the capacity controllers read.
type Listers struct {
	nodes corelisters.NodeLister
	pods  corelisters.PodLister
	pdbs  policylisters.PodDisruptionBudgetLister
}

// NewListers registers the informers the capacity controllers read with
// the (cluster-wide) factory.
func NewListers(factory informers.SharedInformerFactory) Listers {
	return Listers{
		nodes: factory.Core().V1().Nodes().Lister(),
		pods:  factory.Core().V1().Pods().Lister(),
		pdbs:  factory.Policy().V1().PodDisruptionBudgets().Lister(),
	}
}

// ReadView builds a pass's view. It sends no request to the API server.
func ReadView(ctx context.Context, p provider.Provider, cluster string, l Listers) (*View, error) {
	all, err := p.NodeGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing node groups, %w", err)
	}
	v := &View{Instances: map[string][]provider.Instance{}, ByNode: map[string]*Member{}, PodsOn: map[string][]*corev1.Pod{}}
	byProviderID := map[string]provider.Instance{}
	byName := map[string]provider.Instance{}
	groupOf := map[string]provider.NodeGroup{}
	for _, g := range all {
		if cluster != "" && g.Cluster != cluster {
			continue
		}
		ins, err := p.Instances(ctx, g.ID)
		if err != nil {
			return nil, fmt.Errorf("listing instances of %s, %w", g.ID, err)
		}
		v.Groups = append(v.Groups, g)
		v.Instances[g.ID] = ins
		groupOf[g.ID] = g
		for _, in := range ins {
			if in.ProviderID != "" {
				byProviderID[in.ProviderID] = in
			}
			if in.NodeName != "" {
				byName[in.NodeName] = in
			}
		}
	}
	if v.Nodes, err = l.nodes.List(labels.Everything()); err != nil {
		return nil, fmt.Errorf("listing nodes from the cache, %w", err)
	}
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Name < v.Nodes[j].Name })
	pods, err := l.pods.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing pods from the cache, %w", err)
	}
	for _, pod := range pods {
		switch {
		case Terminal(pod):
		case pod.Spec.NodeName != "":
			v.PodsOn[pod.Spec.NodeName] = append(v.PodsOn[pod.Spec.NodeName], pod)
		case pod.DeletionTimestamp == nil && corev1helpers.PodPriority(pod) >= provisioner.DefaultPriorityCutoff:
			v.Pending = append(v.Pending, pod)
		}
	}
	if v.PDBs, err = l.pdbs.List(labels.Everything()); err != nil {
		return nil, fmt.Errorf("listing PodDisruptionBudgets from the cache, %w", err)
	}
	for _, n := range v.Nodes {
		in, ok := byProviderID[n.Spec.ProviderID]
		if !ok || n.Spec.ProviderID == "" {
			if in, ok = byName[n.Name]; !ok {
				continue
			}
		}
		m := &Member{Node: n, Group: groupOf[in.Group], Instance: in, Pods: v.PodsOn[n.Name]}
		v.Members = append(v.Members, m)
		v.ByNode[n.Name] = m
	}
	return v, nil
}

// OnDemandRatio is the share of running instances that are on-demand.
func (v *View) OnDemandRatio() float64 {
	var od, all int
	for _, ins := range v.Instances {
		for _, in := range ins {
			if in.State != provider.Running || in.Interruption != nil {
				continue
			}
			all++
			if in.Lifecycle == provider.OnDemand {
				od++
			}
		}
	}
	if all == 0 {
		return 0
	}
	return float64(od) / float64(all)
}

// LastLaunch is the newest launch of a live instance: the last scale-up.
func (v *View) LastLaunch() time.Time {
	var last time.Time
	for _, ins := range v.Instances {
		for _, in := range ins {
			if (in.State == provider.Pending || in.State == provider.Running) && in.LaunchTime.After(last) {
				last = in.LaunchTime
			}
		}
	}
	return last
}

// Terminal reports a pod that has finished (Succeeded or Failed).
func Terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// DaemonSetPod reports a pod a DaemonSet owns (it stays on its node).
func DaemonSetPod(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.Kind == "DaemonSet"
}

// MirrorPod reports a static pod's mirror (it stays on its node).
func MirrorPod(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

// Movable returns the pods a drain would evict: not DaemonSet pods, not
// static (mirror) pods, not pods already terminating.
func Movable(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if DaemonSetPod(p) || MirrorPod(p) || p.DeletionTimestamp != nil {
			continue
		}
		out = append(out, p)
	}
	return out
}

// EvictionRules say which pods keep their node, as cluster-autoscaler's
// defaults do.
type EvictionRules struct {
	// evictKubeSystemWithoutPDB lets kube-system pods without a
	// PodDisruptionBudget move (cluster-autoscaler keeps them by default).
	EvictKubeSystemWithoutPDB bool
}

// Blocker returns why the pod keeps its node, or "" if it may be evicted:
// safe-to-evict "false", a bare pod (no controller), local storage
// (emptyDir, hostPath) or kube-system without a PDB unless safe-to-evict
// is "true". PDB budgets are checked separately (pdbBudget).
func (r EvictionRules) Blocker(pod *corev1.Pod, pdbs []*policyv1.PodDisruptionBudget) string {
	name := pod.Namespace + "/" + pod.Name
	switch pod.Annotations[placement.AnnotationSafeToEvict] {
	case "false":
		return fmt.Sprintf("pod %s has %s=false", name, placement.AnnotationSafeToEvict)
	case "true":
		return ""
	}
	if metav1.GetControllerOf(pod) == nil {
		return fmt.Sprintf("pod %s has no controller", name)
	}
	for _, vol := range pod.Spec.Volumes {
		if vol.EmptyDir != nil || vol.HostPath != nil {
			return fmt.Sprintf("pod %s has local storage (volume %s)", name, vol.Name)
		}
	}
	if pod.Namespace == metav1.NamespaceSystem && !r.EvictKubeSystemWithoutPDB && len(MatchingPDBs(pod, pdbs)) == 0 {
		return fmt.Sprintf("pod %s is in kube-system without a PodDisruptionBudget", name)
	}
	return ""
}

// MatchingPDBs returns the PodDisruptionBudgets of the pod's namespace
// whose selector matches it.
func MatchingPDBs(pod *corev1.Pod, pdbs []*policyv1.PodDisruptionBudget) []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for _, pdb := range pdbs {
		if pdb.Namespace != pod.Namespace || pdb.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, pdb)
	}
	return out
}

// PDBBudget tracks the disruptions a pass may still cause per PDB, so two
// nodes chosen in one pass do not both count on the same allowance.
type PDBBudget map[types.UID]int32

// Take reserves one disruption for each pod from its PDBs; it returns
// the PDB that has none left (and reserves nothing) or "".
func (b PDBBudget) Take(pods []*corev1.Pod, pdbs []*policyv1.PodDisruptionBudget, commit bool) string {
	trial := PDBBudget{}
	for _, pod := range pods {
		for _, pdb := range MatchingPDBs(pod, pdbs) {
			left, ok := trial[pdb.UID]
			if !ok {
				if left, ok = b[pdb.UID]; !ok {
					left = pdb.Status.DisruptionsAllowed
				}
			}
			if left < 1 {
				return pdb.Namespace + "/" + pdb.Name
			}
			trial[pdb.UID] = left - 1
		}
	}
	if commit {
		for uid, left := range trial {
			b[uid] = left
		}
	}
	return ""
}

// Utilization is the larger of the node's CPU and memory requests over
// its allocatable, DaemonSet pods included (cluster-autoscaler's default).
func Utilization(node *corev1.Node, pods []*corev1.Pod) float64 {
	a := placement.NodeAllocatable(node)
	var used placement.Resources
	for _, p := range pods {
		used = used.Add(placement.PodRequests(p))
	}
	u := 0.0
	if a.CPU > 0 {
		u = float64(used.CPU) / float64(a.CPU)
	}
	if a.Mem > 0 {
		u = max(u, float64(used.Mem)/float64(a.Mem))
	}
	return u
}

// NodeReady reports a node whose Ready condition is True: the
// overprovisioner's burst release counts the room of those only (a node
// still booting runs nothing yet).
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// HasTaint reports whether the node has a taint with key.
func HasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// Busy reports whether a capacity controller or the interruption handler
// is already working on the node (a reap in progress included), or
// someone cordoned it.
func Busy(n *corev1.Node) bool {
	return n.Spec.Unschedulable || n.DeletionTimestamp != nil || n.Annotations[AnnotationReapStarted] != "" ||
		HasTaint(n, TaintScaleDown) || HasTaint(n, TaintReapOnDemand) || HasTaint(n, interruptionTaint)
}

// Destinations is the room left on the nodes pods may move to, as the
// scheduler would see it.
type Destinations struct {
	Nodes []*corev1.Node
	Free  map[string]placement.Resources
}

// NewDestinations takes every Ready, schedulable node that nobody is
// draining, with its allocatable minus its pods' requests.
func NewDestinations(v *View) *Destinations {
	d := &Destinations{Free: map[string]placement.Resources{}}
	for _, n := range v.Nodes {
		if !NodeReady(n) || Busy(n) {
			continue
		}
		free := placement.NodeAllocatable(n)
		for _, p := range v.PodsOn[n.Name] {
			free = free.Minus(placement.PodRequests(p))
		}
		d.Nodes = append(d.Nodes, n)
		d.Free[n.Name] = free
	}
	return d
}

// Remove drops a node that is going away.
func (d *Destinations) Remove(name string) { delete(d.Free, name) }

// Taint cordons the node and adds a NoSchedule taint carrying the time,
// in one patch guarded by the resourceVersion the decision was made on.
func Taint(ctx context.Context, client kubernetes.Interface, node *corev1.Node, key string, now time.Time) error {
	taints := append([]corev1.Taint(nil), node.Spec.Taints...)
	if !HasTaint(node, key) {
		taints = append(taints, corev1.Taint{Key: key, Value: fmt.Sprint(now.Unix()), Effect: corev1.TaintEffectNoSchedule})
	}
	patch := map[string]any{
		"metadata": map[string]any{"resourceVersion": node.ResourceVersion},
		"spec":     map[string]any{"unschedulable": true, "taints": taints},
	}
	if err := patchNode(ctx, client, node.Name, patch); err != nil {
		return fmt.Errorf("cordoning %s, %w", node.Name, err)
	}
	return nil
}

// Untaint removes the taint and uncordons the node; a node without the
// taint is left as it is (someone else cordoned it).
func Untaint(ctx context.Context, client kubernetes.Interface, name, key string) error {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading %s to uncordon it, %w", name, err)
	}
	if !HasTaint(node, key) {
		return nil
	}
	taints := []corev1.Taint{}
	for _, t := range node.Spec.Taints {
		if t.Key != key {
			taints = append(taints, t)
		}
	}
	patch := map[string]any{
		"metadata": map[string]any{"resourceVersion": node.ResourceVersion},
		"spec":     map[string]any{"unschedulable": false, "taints": taints},
	}
	if err := patchNode(ctx, client, name, patch); err != nil {
		return fmt.Errorf("uncordoning %s, %w", name, err)
	}
	return nil
}

// Annotate sets (or, for a nil value, removes) node annotations.
func Annotate(ctx context.Context, client kubernetes.Interface, name string, annotations map[string]*string) error {
	return patchNode(ctx, client, name, map[string]any{"metadata": map[string]any{"annotations": annotations}})
}

func patchNode(ctx context.Context, client kubernetes.Interface, name string, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{})
	return err
}

// DrainNode evicts the node's pods through the Eviction API, so
// PodDisruptionBudgets are respected: an eviction a PDB refuses is retried
// until timeout, then the drain fails. DaemonSet pods stay; bare pods make
// the drain fail (they would not come back). Only pods that are safe to
// evict are left on a chosen node, local storage included.
func DrainNode(ctx context.Context, client kubernetes.Interface, name string, timeout time.Duration) error {
	return drain.Node(ctx, client, name, drain.Options{Timeout: timeout})
}
