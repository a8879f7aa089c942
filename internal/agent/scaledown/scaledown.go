// Package scaledown removes empty and under-utilized nodes whose pods can
// move elsewhere, on-demand before spot, as cluster-autoscaler does: it
// reads nodes, pods and PodDisruptionBudgets from informers
// (internal/agent/capacity), simulates where the pods would go
// (internal/agent/placement, topology spread and pod affinity included),
// drains through the Eviction API (PDBs respected) and deletes the node's
// instance through the provider. RBAC: nodes get, list, watch, patch; pods
// get, list, watch; pods/eviction create; policy poddisruptionbudgets
// list, watch; events create, patch.
package scaledown

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Options configure the scale-down controller. They are used as
// given: start from DefaultOptions (cluster-autoscaler's
// defaults); Validate says what is out of range. The cloud (Deps.Provider)
// and the cluster whose node groups it scales (Deps.Cluster), the
// recorder (Events on Nodes), the logger and dry-run (log, count and
// report what would be removed, change nothing) come with
// controller.Deps, and so does the registry of the metrics it shares with
// the reaper (CapacityMetrics).
type Options struct {
	// UtilizationThreshold: a node whose CPU and memory requests are both
	// below this share of its allocatable is under-utilized.
	UtilizationThreshold float64
	// UnneededTime is how long a node must stay unneeded before it is
	// removed.
	UnneededTime time.Duration
	// DelayAfterScaleUp: no node is removed this long after the newest
	// launch in the cluster's groups (0: no delay).
	DelayAfterScaleUp time.Duration
	// MaxConcurrentDrains bounds the non-empty nodes drained at once.
	MaxConcurrentDrains int
	// MaxEmptyBulkDelete bounds the empty nodes removed in one pass.
	MaxEmptyBulkDelete int
	// DrainTimeout: a drain still waiting (for a PDB) after this long
	// fails and the node is uncordoned.
	DrainTimeout time.Duration
	// EvictKubeSystemWithoutPDB lets kube-system pods without a
	// PodDisruptionBudget move (default false, as cluster-autoscaler).
	EvictKubeSystemWithoutPDB bool
}

// DefaultOptions returns cluster-autoscaler's defaults:
// utilization threshold 0.5, unneeded time 10m, delay after scale-up 10m,
// one drain at a time, ten empty nodes per pass, drain timeout 5m.
func DefaultOptions() Options {
	return Options{
		UtilizationThreshold: 0.5,
		UnneededTime:         10 * time.Minute,
		DelayAfterScaleUp:    10 * time.Minute,
		MaxConcurrentDrains:  1,
		MaxEmptyBulkDelete:   10,
		DrainTimeout:         5 * time.Minute,
	}
}

// Validate reports the options out of range, naming the agent's flag.
func (o Options) Validate() error {
	var errs []error
	if o.UtilizationThreshold <= 0 || o.UtilizationThreshold > 1 {
		errs = append(errs, fmt.Errorf("--scale-down-utilization-threshold %g: expected a share in (0, 1]", o.UtilizationThreshold))
	}
	if o.UnneededTime <= 0 {
		errs = append(errs, fmt.Errorf("--scale-down-unneeded-time %s: expected a positive duration", o.UnneededTime))
	}
	if o.DelayAfterScaleUp < 0 {
		errs = append(errs, fmt.Errorf("--scale-down-delay-after-add %s: expected 0 (no delay) or more", o.DelayAfterScaleUp))
	}
	if o.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout %s: expected a positive duration", o.DrainTimeout))
	}
	if o.MaxConcurrentDrains < 1 {
		errs = append(errs, fmt.Errorf("scale-down MaxConcurrentDrains %d: expected 1 or more", o.MaxConcurrentDrains))
	}
	if o.MaxEmptyBulkDelete < 1 {
		errs = append(errs, fmt.Errorf("scale-down MaxEmptyBulkDelete %d: expected 1 or more", o.MaxEmptyBulkDelete))
	}
	return errors.Join(errs...)
}

// config is what the scale-down runs with.
type config struct {
	Options
	controller.Deps
}

// Controller removes empty and under-utilized nodes whose pods can all move
// elsewhere, after they stayed unneeded for UnneededTime: it cordons and
// taints the node (TaintScaleDown), drains it through the Eviction API and
// deletes its instance through the provider. On-demand nodes go before
// spot. Its "unneeded since" times are kept in memory (a restart starts
// them again); the taint is the state that survives a crash.
type Controller struct {
	capacity.Remover
	opts config
	// since is when each node was first found unneeded.
	since map[string]time.Time
}

// Name is the scale-down's name in --controllers, logs and
// metrics.
const Name = agentcmd.ControllerScaleDown

// New returns the scale-down controller. It reads nodes, pods and
// PodDisruptionBudgets from the factory's informers (Deps.Factory must be
// cluster-wide; the caller starts it), so an idle pass makes no API
// request. Deps.Provider, Client and Factory are required.
//
// RBAC: nodes get, list, watch, patch; pods list, watch, get (the drain
// lists the node's pods and waits for them to go); pods/eviction create;
// poddisruptionbudgets (policy) list, watch; events create, patch.
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	base, deps, err := capacity.NewRemover(Name, deps, capacity.EvictionRules{EvictKubeSystemWithoutPDB: opts.EvictKubeSystemWithoutPDB})
	if err != nil {
		return nil, err
	}
	return &Controller{
		Remover: base,
		opts:    config{Options: opts, Deps: deps},
		since:   map[string]time.Time{},
	}, nil
}

// Name is the controller's name.
func (s *Controller) Name() string { return Name }

// candidate is an unneeded node with the pods that would move.
type candidate struct {
	*capacity.Member
	movable []*corev1.Pod
	util    float64
}

func (c *candidate) empty() bool { return len(c.movable) == 0 }

func (c *candidate) reason() string {
	if c.empty() {
		return capacity.ReasonEmpty
	}
	return capacity.ReasonUnderutilized
}

// Pass finds unneeded nodes, starts removing those unneeded for long
// enough, and returns what it did (or, in dry-run, would do). Drains run
// in the background; the next passes see their nodes as busy.
func (s *Controller) Pass(ctx context.Context) ([]string, error) {
	now := s.opts.Clock.Now()
	v, err := capacity.ReadView(ctx, s.opts.Provider, s.opts.Cluster, s.Listers)
	if err != nil {
		return nil, fmt.Errorf("scale-down, %w", err)
	}
	s.Metrics.OnDemandRatio.Set(v.OnDemandRatio())
	actions, errs := s.recover(ctx, v)
	unneeded := s.unneeded(v, now)
	if s.opts.DelayAfterScaleUp > 0 && now.Sub(v.LastLaunch()) < s.opts.DelayAfterScaleUp {
		return actions, errors.Join(errs...)
	}
	if n := reapInProgress(v); n != "" {
		// The reaper's spot replacement is empty until the on-demand
		// node drains onto it; removing it would undo the reap.
		s.opts.Logger.Debug("scale-down: waiting for the reap of an on-demand node", "node", n)
		return actions, errors.Join(errs...)
	}
	for _, c := range s.choose(v, unneeded, now) {
		a, err := s.remove(ctx, c, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		actions = append(actions, a)
	}
	return actions, errors.Join(errs...)
}

// reapInProgress names a node the on-demand reaper is replacing, if any.
func reapInProgress(v *capacity.View) string {
	for _, n := range v.Nodes {
		if n.Annotations[capacity.AnnotationReapStarted] != "" || capacity.HasTaint(n, capacity.TaintReapOnDemand) {
			return n.Name
		}
	}
	return ""
}

// recover handles nodes this controller tainted but is not draining: a
// previous process crashed mid-drain. A node with no pods left to move is
// finished (its instance deleted); any other is uncordoned.
func (s *Controller) recover(ctx context.Context, v *capacity.View) ([]string, []error) {
	var actions []string
	var errs []error
	for _, n := range v.Nodes {
		if !capacity.HasTaint(n, capacity.TaintScaleDown) || s.Drains.Active(n.Name) {
			continue
		}
		m := v.ByNode[n.Name]
		if m == nil || m.Instance.State != provider.Running {
			// No instance, or it is already going away: so is the node.
			continue // its instance is already going away
		}
		if len(capacity.Movable(m.Pods)) == 0 {
			a := fmt.Sprintf("finish removing drained node %s: delete instance %s of %s", n.Name, m.Instance.ID, m.Group.ID)
			if !s.opts.DryRun {
				if err := s.opts.Provider.DeleteInstances(ctx, m.Group.ID, []string{m.Instance.ID}); err != nil {
					errs = append(errs, fmt.Errorf("deleting instance %s of node %s, %w", m.Instance.ID, n.Name, err))
					continue
				}
				s.event(n, corev1.EventTypeNormal, "ScaleDown", "Instance %s deleted after an interrupted scale-down", m.Instance.ID)
			}
			actions = append(actions, a)
			continue
		}
		a := fmt.Sprintf("uncordon node %s left by an interrupted scale-down", n.Name)
		if !s.opts.DryRun {
			if err := capacity.Untaint(ctx, s.opts.Client, n.Name, capacity.TaintScaleDown); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		actions = append(actions, a)
	}
	return actions, errs
}

// unneeded returns the nodes that are empty or under-utilized and whose
// pods could all move now, and keeps their "unneeded since" times.
func (s *Controller) unneeded(v *capacity.View, now time.Time) []*candidate {
	sim := newSimulation(v)
	awaited := awaitedNodes(v)
	var out []*candidate
	seen := map[string]bool{}
	needed := map[string]int{}
	for _, m := range v.Members {
		if m.Instance.State != provider.Running || m.Instance.Interruption != nil ||
			!capacity.NodeReady(m.Node) || capacity.Busy(m.Node) || s.Drains.Active(m.Node.Name) {
			continue
		}
		if awaited[m.Node.Name] {
			needed[NeededPendingPod]++
			s.opts.Logger.Debug("scale-down: node needed", "node", m.Node.Name, "why", "a pending pod fits on it")
			continue
		}
		c, reason, why := s.evaluate(v, m, sim)
		if why != "" {
			needed[reason]++
			s.opts.Logger.Debug("scale-down: node needed", "node", m.Node.Name, "reason", reason, "why", why)
			continue
		}
		seen[m.Node.Name] = true
		if _, ok := s.since[m.Node.Name]; !ok {
			s.since[m.Node.Name] = now
		}
		out = append(out, c)
	}
	for name := range s.since {
		if !seen[name] {
			delete(s.since, name)
		}
	}
	s.Metrics.Unneeded.Set(float64(len(out)))
	for _, r := range neededReasons {
		s.Metrics.Needed.WithLabelValues(r).Set(float64(needed[r]))
	}
	return out
}

// awaitedNodes places the pods that wait for a node on the nodes there
// are, as the scheduler will (cluster-autoscaler's filter-out-schedulable):
// a node about to take one is needed, even when it is still empty — a new
// node often is, for the seconds the scheduler's backoff keeps its pod
// waiting. A pod nominated for a node after a preemption counts there.
func awaitedNodes(v *capacity.View) map[string]bool {
	dest := capacity.NewDestinations(v)
	out := map[string]bool{}
	for _, pod := range v.Pending {
		if n := pod.Status.NominatedNodeName; n != "" {
			out[n] = true
			continue
		}
		r, f := placement.PodRequests(pod), placement.NewFitter(pod)
		for _, n := range dest.Nodes {
			free := dest.Free[n.Name]
			if r.Within(free) && f.Fits(n) {
				dest.Free[n.Name] = free.Minus(r)
				out[n.Name] = true
				break
			}
		}
	}
	return out
}

// Why the scale-down keeps a node, the reason label of
// bosun_provisioner_needed_nodes.
const (
	NeededMinSize     = "min-size"
	NeededUtilization = "utilization"
	NeededPendingPod  = "pending-pod"
	NeededPod         = "pod-not-evictable"
	NeededPDB         = "pdb"
	NeededNoPlace     = "no-place"
)

var neededReasons = []string{NeededMinSize, NeededUtilization, NeededPendingPod, NeededPod, NeededPDB, NeededNoPlace}

// evaluate returns the node as a candidate, or why it is needed: one of
// the Needed reasons and the details.
func (s *Controller) evaluate(v *capacity.View, m *capacity.Member, sim *simulation) (*candidate, string, string) {
	if m.Group.TargetSize <= m.Group.MinSize {
		return nil, NeededMinSize, fmt.Sprintf("group %s is at its minimum size %d", m.Group.ID, m.Group.MinSize)
	}
	c := &candidate{Member: m, movable: capacity.Movable(m.Pods), util: capacity.Utilization(m.Node, m.Pods)}
	if c.empty() {
		return c, "", ""
	}
	if c.util >= s.opts.UtilizationThreshold {
		return nil, NeededUtilization, fmt.Sprintf("utilization %.2f at or above %.2f", c.util, s.opts.UtilizationThreshold)
	}
	for _, p := range c.movable {
		if why := s.Rules.Blocker(p, v.PDBs); why != "" {
			return nil, NeededPod, why
		}
	}
	if pdb := (capacity.PDBBudget{}).Take(c.movable, v.PDBs, false); pdb != "" {
		return nil, NeededPDB, "PodDisruptionBudget " + pdb + " allows no disruption"
	}
	if _, why := sim.place(c.movable, m.Node.Name, false); why != "" {
		return nil, NeededNoPlace, why
	}
	return c, "", ""
}

// choose picks, among the nodes unneeded for UnneededTime, those to remove
// now: on-demand before spot, empty before under-utilized, least utilized
// first; never a group below its MinSize, at most MaxEmptyBulkDelete empty
// nodes and MaxConcurrentDrains drains at once. Pods of chosen nodes take
// room on the others, so two chosen nodes never count on the same room.
func (s *Controller) choose(v *capacity.View, unneeded []*candidate, now time.Time) []*candidate {
	var ready []*candidate
	for _, c := range unneeded {
		if now.Sub(s.since[c.Node.Name]) >= s.opts.UnneededTime {
			ready = append(ready, c)
		}
	}
	// On-demand first: fallback capacity (L21) is the first to go (L22).
	sort.SliceStable(ready, func(i, j int) bool {
		a, b := ready[i], ready[j]
		if (a.Group.Lifecycle == provider.OnDemand) != (b.Group.Lifecycle == provider.OnDemand) {
			return a.Group.Lifecycle == provider.OnDemand
		}
		if a.empty() != b.empty() {
			return a.empty()
		}
		if a.util != b.util {
			return a.util < b.util
		}
		return a.Node.Name < b.Node.Name
	})
	sim := newSimulation(v)
	budget := capacity.PDBBudget{}
	planned := map[string]int{}
	received := map[string]bool{}
	emptyLeft := s.opts.MaxEmptyBulkDelete
	drainsLeft := s.opts.MaxConcurrentDrains - s.Drains.Count()
	var out []*candidate
	for _, c := range ready {
		name := c.Node.Name
		if received[name] || c.Group.TargetSize-planned[c.Group.ID]-1 < c.Group.MinSize {
			continue
		}
		if c.empty() {
			if emptyLeft == 0 {
				continue
			}
			emptyLeft--
		} else {
			if drainsLeft <= 0 || budget.Take(c.movable, v.PDBs, false) != "" {
				continue
			}
			to, why := sim.place(c.movable, name, true)
			if why != "" {
				continue
			}
			budget.Take(c.movable, v.PDBs, true)
			for _, n := range to {
				received[n] = true
			}
			drainsLeft--
		}
		sim.remove(name)
		planned[c.Group.ID]++
		out = append(out, c)
	}
	return out
}

// simulation is the cluster as the scale-down removes nodes: the room
// left on the nodes pods may move to, and where pods run for the rules
// between pods (topology spread, inter-pod affinity and anti-affinity).
type simulation struct {
	dest *capacity.Destinations
	topo *topology
}

func newSimulation(v *capacity.View) *simulation {
	return &simulation{dest: capacity.NewDestinations(v), topo: newTopology(v)}
}

// remove drops a node that is going away: no pod moves to it any more,
// and it is drained (the pods that move were moved by place).
func (s *simulation) remove(name string) {
	s.dest.Remove(name)
	s.topo.drain(name, nil)
}

// place finds a node other than from for every pod (largest first, first
// fit) as kube-scheduler's filters would: room, node affinity and taints
// (fits), then the pod's required topology spread constraints and
// inter-pod (anti-)affinity, counted on the pods that run now and those
// moved earlier in the simulation, without the pods evicted from from and
// from the nodes removed before (which stay as drained, tainted nodes; see
// topology). It returns the nodes that receive pods, or why a pod has
// nowhere to go. With commit and success, the room is taken and the pods
// stay moved (from drained); otherwise nothing changes.
func (s *simulation) place(pods []*corev1.Pod, from string, commit bool) ([]string, string) {
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := placement.PodRequests(sorted[i]), placement.PodRequests(sorted[j])
		if a.CPU != b.CPU {
			return a.CPU > b.CPU
		}
		return a.Mem > b.Mem
	})
	s.topo.begin()
	s.topo.drain(from, pods)
	trial := map[string]placement.Resources{}
	received := map[string]bool{}
	var to []string
	for _, pod := range sorted {
		n, free, why := s.find(pod, from, trial)
		if why != "" {
			s.topo.undo()
			return nil, why
		}
		trial[n] = free
		s.topo.add(pod, n)
		if !received[n] {
			received[n] = true
			to = append(to, n)
		}
	}
	if !commit {
		s.topo.undo()
		return to, ""
	}
	s.topo.keep()
	for name, free := range trial {
		s.dest.Free[name] = free
	}
	return to, ""
}

// find returns the first node other than from the pod may go to, with the
// room it leaves there, or why there is none. trial is the room left on
// the nodes that received pods in this placement.
func (s *simulation) find(pod *corev1.Pod, from string, trial map[string]placement.Resources) (string, placement.Resources, string) {
	r := placement.PodRequests(pod)
	var rules *podRules
	refused := ""
	for _, n := range s.dest.Nodes {
		free, ok := trial[n.Name]
		if !ok {
			if free, ok = s.dest.Free[n.Name]; !ok {
				continue
			}
		}
		if n.Name == from || !r.Within(free) || !placement.Fits(pod, n) {
			continue
		}
		if rules == nil {
			rules = s.topo.rules(pod)
		}
		if why := rules.broken(n); why != "" {
			if refused == "" {
				refused = why
			}
			continue
		}
		return n.Name, free.Minus(r), ""
	}
	name := pod.Namespace + "/" + pod.Name
	if refused != "" {
		return "", placement.Resources{}, fmt.Sprintf("pod %s can move only in violation of %s", name, refused)
	}
	return "", placement.Resources{}, fmt.Sprintf("pod %s fits on no other node", name)
}

// remove cordons and taints the node and drains it in the background; the
// drain deletes the instance when it succeeds and uncordons the node when
// it fails.
func (s *Controller) remove(ctx context.Context, c *candidate, now time.Time) (string, error) {
	name := c.Node.Name
	action := fmt.Sprintf("remove %s node %s of %s (%s, utilization %.0f%%, %d pod(s) to move)",
		c.Group.Lifecycle, name, c.Group.ID, c.reason(), 100*c.util, len(c.movable))
	s.opts.Logger.Info("scale-down", "node", name, "group", c.Group.ID, "reason", c.reason(), "utilization", c.util, "dryRun", s.opts.DryRun)
	if s.opts.DryRun {
		s.Metrics.CountRemoved(c.reason(), c.Group.Lifecycle, true)
		return action, nil
	}
	if err := capacity.Taint(ctx, s.opts.Client, c.Node, capacity.TaintScaleDown, now); err != nil {
		return "", err
	}
	s.event(c.Node, corev1.EventTypeNormal, "ScaleDown", "Removing node: %s, utilization %.0f%%, draining %d pod(s)", c.reason(), 100*c.util, len(c.movable))
	s.Drains.Start(name, func() { s.drainAndDelete(ctx, c) })
	return action, nil
}

func (s *Controller) drainAndDelete(ctx context.Context, c *candidate) {
	name := c.Node.Name
	fail := func(err error) {
		s.Metrics.DrainFailures.WithLabelValues(Name).Inc()
		s.opts.Logger.Warn("scale-down failed; uncordoning", "node", name, "error", err)
		s.event(c.Node, corev1.EventTypeWarning, "ScaleDownFailed", "Node stays: %v", err)
		if err := capacity.Untaint(ctx, s.opts.Client, name, capacity.TaintScaleDown); err != nil {
			s.opts.Logger.Warn("scale-down: uncordoning", "node", name, "error", err)
		}
	}
	if err := capacity.DrainNode(ctx, s.opts.Client, name, s.opts.DrainTimeout); err != nil {
		fail(err)
		return
	}
	if err := s.opts.Provider.DeleteInstances(ctx, c.Group.ID, []string{c.Instance.ID}); err != nil {
		fail(fmt.Errorf("deleting instance %s of %s, %w", c.Instance.ID, c.Group.ID, err))
		return
	}
	s.Metrics.CountRemoved(c.reason(), c.Group.Lifecycle, false)
	s.event(c.Node, corev1.EventTypeNormal, "ScaleDown", "Drained; instance %s of %s deleted", c.Instance.ID, c.Group.ID)
	s.opts.Logger.Info("scale-down: node removed", "node", name, "instance", c.Instance.ID, "group", c.Group.ID)
}

func (s *Controller) event(n *corev1.Node, typ, reason, format string, args ...any) {
	if s.opts.Recorder != nil {
		s.opts.Recorder.Eventf(n, typ, reason, format, args...)
	}
}
