// Package provisioner is the agent's capacity controller: it turns pods the
// scheduler cannot place into node-group scale-ups through the provider
// seam, spot first, and falls back to on-demand within seconds when the
// cloud reports insufficient capacity (L10, L11, L21, L57) — instead of the
// 10 to 45 minutes the seeds waited for cluster-autoscaler's provision
// timeouts.
//
// Each pass is level-based: it reads the pending pods and the groups'
// instances, counts capacity already on its way (booting instances), and
// requests only what is still missing. State that matters lives in the
// provider (target sizes); the unavailable-offering cache is a hint that is
// rebuilt from the provider's failed launches after a restart.
//
// Two more capacity controllers live beside it, sharing its placement
// (internal/agent/placement) and the cluster view of internal/agent/capacity:
// internal/agent/scaledown and internal/agent/reaper (L22).
package provisioner

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/provider"
)

// DefaultPriorityCutoff is the cutoff: pods below it never trigger a scale-up (as in
// cluster-autoscaler), so overprovisioning pause pods at -10 do (L12).
const DefaultPriorityCutoff = int32(-10)

// Options configure the provisioner.
//
// The cloud (Deps.Provider), the cluster whose node groups it scales
// (Deps.Cluster), the clock, the logger, dry-run (decisions computed,
// target sizes unchanged) and the recorder (a TriggeredScaleUp Event on
// each pod the first time capacity is asked for it, not in dry-run) come
// with controller.Deps.
type Options struct {
	// Templates returns the node a new instance of the group would
	// register, one per zone, for placement simulation.
	Templates func(g provider.NodeGroup) ([]*corev1.Node, error)
	// PriorityCutoff: pods with a lower priority never trigger a scale-up
	// (default -10, so overprovisioning pause pods at -10 do, L12).
	PriorityCutoff *int32
	// UnavailableTTL is how long an offering that failed for capacity or
	// quota is skipped (default 3 minutes).
	UnavailableTTL time.Duration
	// ProvisionTimeout catches launches that never finish without an
	// error (default 5 minutes).
	ProvisionTimeout time.Duration
	// SharedPods: read the pods waiting for a node from the shared
	// factory's pod informer (New).
	SharedPods bool
}

// config is what the provisioner runs with: its options and its deps.
type config struct {
	Options
	controller.Deps
}

// Provisioner decides scale-ups. Run it with Reconcile on every pass.
type Provisioner struct {
	opts        config
	unavailable *unavailableOfferings
	// requested remembers, per pod, the group capacity was requested from
	// and when, so a pod waiting for a booting node is not asked for twice.
	// A failure of that group or the provision timeout releases the pod.
	requested map[types.UID]request
	// observed holds pending pods whose latency was observed (once a pod:
	// asking for it again is not a new wait).
	observed map[types.UID]bool
	// seen holds when the controller saw pods turn unschedulable.
	seenMu sync.Mutex
	seen   map[types.UID]time.Time
	// seenFailures holds failed launches already acted on.
	seenFailures map[string]bool
	// booting holds the instances (id to group) that were booting at the
	// last pass, to notice one that goes away before it registers.
	booting map[string]string
	// Metrics is updated on every pass.
	Metrics *Metrics
	// Decided, if set, is called with each pod and the time the first
	// pass decided for it (capacity asked for it, or the pod counted on
	// capacity booting), on the pass's goroutine: benchmarks pair it with
	// precise start times the metric cannot see.
	Decided func(pod *corev1.Pod, at time.Time)
}

// NewProvisioner returns the provisioner's decisions without the
// controller around them (Reconcile with the pending pods, or Run), with
// defaults filled in. Deps.Provider and Options.Templates are required;
// the metrics are registered with Deps.Registry.
func NewProvisioner(deps controller.Deps, opts Options) (*Provisioner, error) {
	if err := deps.Require(Name, controller.FieldProvider); err != nil {
		return nil, err
	}
	if opts.Templates == nil {
		return nil, fmt.Errorf("%s: Options.Templates is required", Name)
	}
	if opts.PriorityCutoff == nil {
		c := DefaultPriorityCutoff
		opts.PriorityCutoff = &c
	}
	if opts.UnavailableTTL == 0 {
		opts.UnavailableTTL = 3 * time.Minute
	}
	if opts.ProvisionTimeout == 0 {
		opts.ProvisionTimeout = 5 * time.Minute
	}
	deps = deps.WithDefaults()
	m := newMetrics()
	if deps.Registry != nil {
		if err := m.Register(deps.Registry); err != nil {
			return nil, fmt.Errorf("provisioner metrics, %w", err)
		}
	}
	return &Provisioner{
		opts:         config{Options: opts, Deps: deps},
		unavailable:  newUnavailableOfferings(deps.Clock, opts.UnavailableTTL),
		requested:    map[types.UID]request{},
		observed:     map[types.UID]bool{},
		seen:         map[types.UID]time.Time{},
		seenFailures: map[string]bool{},
		booting:      map[string]string{},
		Metrics:      m,
	}, nil
}

type request struct {
	group string
	at    time.Time
	// bootingVersion is the pod's resourceVersion the last time capacity
	// of this request was seen booting ("" if never), registeredAt the
	// first pass after that which saw none of it booting.
	bootingVersion string
	registeredAt   time.Time
}

// Decision is one scale-up the provisioner made (or, in dry-run, would make).
type Decision struct {
	Group string
	// From and To are the target sizes before and after.
	From, To int
	// Pods is how many pending pods the new nodes are for.
	Pods int
	// Fallback is set when a higher-priority group was skipped because its
	// offerings are unavailable.
	Fallback bool
}

// groupState is a node group with what the pass learned about it.
type groupState struct {
	provider.NodeGroup
	templates []*corev1.Node
	// booting counts launched instances that have not registered yet;
	// oldestBooting is the launch time of the oldest of them.
	booting       int
	oldestBooting time.Time
	// lastLaunch is the launch time of the newest booting or running
	// instance.
	lastLaunch time.Time
	// live counts pending and running instances.
	live int
}

// Reconcile runs one pass over the pending pods (pods the scheduler marked
// unschedulable) and the DaemonSet templates of the cluster.
func (p *Provisioner) Reconcile(ctx context.Context, pending []*corev1.Pod, daemonSets []*corev1.PodTemplateSpec) ([]Decision, error) {
	groups, err := p.groups(ctx)
	if err != nil {
		return nil, err
	}
	p.settle(groups, pending)
	pods, waiting := p.eligible(pending)
	if len(pods) == 0 {
		return nil, nil
	}
	pods = p.subtractBooting(waiting, pods, groups, daemonSets)
	var decisions []Decision
	skipped := false
	for _, tier := range tiers(groups) {
		if len(pods) == 0 {
			break
		}
		best, placed, nodes := p.bestInTier(tier, pods, daemonSets, &skipped)
		if best == nil {
			continue
		}
		d := Decision{Group: best.ID, From: best.TargetSize, To: best.TargetSize + nodes, Pods: len(placed), Fallback: skipped}
		asked := p.opts.Clock.Now() // before the launches it causes
		if !p.opts.DryRun {
			if err := p.opts.Provider.SetTargetSize(ctx, best.ID, d.To); err != nil {
				return decisions, fmt.Errorf("scaling up %s to %d, %w", best.ID, d.To, err)
			}
		}
		p.record(d, placed)
		for _, pod := range placed {
			p.requested[pod.UID] = request{group: best.ID, at: asked}
		}
		decisions = append(decisions, d)
		pods = without(pods, placed)
	}
	return decisions, nil
}

// groups reads the cluster's node groups and their instances; failed
// launches mark the group's offerings unavailable and give the failed
// capacity back, so the pods move to the next option in this same pass.
func (p *Provisioner) groups(ctx context.Context) ([]*groupState, error) {
	all, err := p.opts.Provider.NodeGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing node groups, %w", err)
	}
	now := p.opts.Clock.Now()
	var out []*groupState
	capacityError := false
	booting, running := map[string]string{}, map[string]bool{}
	for _, g := range all {
		if p.opts.Cluster != "" && g.Cluster != p.opts.Cluster {
			continue
		}
		ins, err := p.opts.Provider.Instances(ctx, g.ID)
		if err != nil {
			return nil, fmt.Errorf("listing instances of %s, %w", g.ID, err)
		}
		gs := &groupState{NodeGroup: g}
		failed := false
		var stuck []string
		for _, in := range ins {
			switch {
			case in.State == provider.Failed && (in.ErrorClass == provider.InsufficientCapacity || in.ErrorClass == provider.QuotaExceeded):
				if !p.seenFailures[in.ID] {
					p.seenFailures[in.ID] = true
					failed = true
					capacityError = true
					p.Metrics.fallback(g.ID, string(in.ErrorClass))
				}
			case in.State == provider.Pending && now.Sub(in.LaunchTime) > p.opts.ProvisionTimeout:
				stuck = append(stuck, in.ID)
			case in.State == provider.Pending && in.Interruption == nil:
				booting[in.ID] = g.ID
				gs.booting++
				gs.live++
				if gs.oldestBooting.IsZero() || in.LaunchTime.Before(gs.oldestBooting) {
					gs.oldestBooting = in.LaunchTime
				}
			case in.State == provider.Running && in.Interruption == nil:
				gs.live++
			}
			if in.State == provider.Running {
				running[in.ID] = true
				p.unavailable.running(in, g.Lifecycle)
			}
			if (in.State == provider.Running || in.State == provider.Pending) && in.LaunchTime.After(gs.lastLaunch) {
				gs.lastLaunch = in.LaunchTime
			}
		}
		if len(stuck) > 0 {
			failed = true
			p.Metrics.fallback(g.ID, "ProvisionTimeout")
			if !p.opts.DryRun {
				if err := p.opts.Provider.DeleteInstances(ctx, g.ID, stuck); err != nil {
					p.opts.Logger.Warn("deleting instances past the provision timeout", "group", g.ID, "error", err)
				}
			}
		}
		if failed {
			// L11: fall back now, not after a timeout.
			p.unavailable.markGroup(g)
			p.release(g.ID, releaseFailed)
			if gs.TargetSize > gs.live && gs.live >= g.MinSize && !p.opts.DryRun {
				if err := p.opts.Provider.SetTargetSize(ctx, g.ID, gs.live); err == nil {
					p.opts.Logger.Info("capacity error: gave the request back", "group", g.ID, "target", gs.live)
					gs.TargetSize = gs.live
				}
			}
		}
		if gs.templates, err = p.opts.Templates(g); err != nil {
			return nil, fmt.Errorf("node template of %s, %w", g.ID, err)
		}
		out = append(out, gs)
	}
	if capacityError {
		p.learnOfferings(ctx)
	}
	p.releaseLost(booting, running)
	p.Metrics.setUnavailable(p.unavailable.count())
	return out, nil
}

// launchLag bounds how long a provider takes to launch the instances of a
// raised target size: instances launched later are another request's.
const launchLag = 10 * time.Second

// settleTime is how long registered nodes get to turn Ready and take pods
// before a pod they were asked for may be asked for again.
const settleTime = 30 * time.Second

// settle releases pods whose requested capacity registered at least
// settleTime ago and which the scheduler has tried again since their
// capacity was booting and still could not place (it rewrote their
// status): other pods took the new nodes (pods are not bound to the node
// asked for them), so these need capacity of their own now, not after the
// provision timeout. A pod the scheduler has not retried keeps waiting, so
// a slow scheduler does not cause capacity to be asked for twice, and the
// settle time covers retries that failed only because a new node was not
// Ready yet. A request's capacity is the group's instances launched up to
// launchLag after it, so a group that keeps booting for later requests
// does not hold it.
func (p *Provisioner) settle(groups []*groupState, pending []*corev1.Pod) {
	now := p.opts.Clock.Now()
	byID := map[string]*groupState{}
	for _, g := range groups {
		byID[g.ID] = g
	}
	for _, pod := range pending {
		r, ok := p.requested[pod.UID]
		if !ok {
			continue
		}
		var oldest, last time.Time
		if g := byID[r.group]; g != nil {
			oldest, last = g.oldestBooting, g.lastLaunch
		}
		switch {
		case !oldest.IsZero() && !oldest.After(r.at.Add(launchLag)):
			r.bootingVersion, r.registeredAt = pod.ResourceVersion, time.Time{}
			p.requested[pod.UID] = r
		case r.bootingVersion == "" && now.Sub(r.at) > launchLag && !p.opts.DryRun:
			// Never seen booting: either it booted between two passes
			// (an instance launched since runs), or it went away first.
			if !last.Before(r.at) {
				r.bootingVersion, r.registeredAt = pod.ResourceVersion, now
				p.requested[pod.UID] = r
				continue
			}
			delete(p.requested, pod.UID)
			p.Metrics.released(releaseLost)
		case r.bootingVersion == "":
		case r.registeredAt.IsZero():
			r.registeredAt = now
			p.requested[pod.UID] = r
		case now.Sub(r.registeredAt) >= settleTime && r.bootingVersion != pod.ResourceVersion:
			delete(p.requested, pod.UID)
			p.Metrics.released(releaseTaken)
		}
	}
}

// learnOfferings asks the provider which offerings have no capacity now and
// marks them all unavailable, after a launch failed for capacity: when
// spot runs out it usually runs out for many types at once, and the
// provisioner would otherwise find that out one failed launch (one pass)
// per group — 12 spot groups meant 11 more passes before on-demand. The
// provider's word (the local cloud's market; on AWS, recent failures and
// spot placement scores) lets the pods move past every exhausted group in
// the same pass (L11). An error only loses the shortcut.
func (p *Provisioner) learnOfferings(ctx context.Context) {
	offerings, err := p.opts.Provider.Offerings(ctx)
	if err != nil {
		p.opts.Logger.Warn("reading offerings after a capacity error", "error", err)
		return
	}
	for _, o := range offerings {
		if !o.Available {
			p.unavailable.markOffering(o)
		}
	}
}

// Why pods waiting for capacity were released to be placed again.
const (
	// releaseFailed: a launch of their group failed (capacity, quota,
	// provision timeout).
	releaseFailed = "launch-failed"
	// releaseLost: an instance of their group went away before it
	// registered (deleted, or interrupted while booting).
	releaseLost = "instance-lost"
	// releaseTaken: their capacity registered and other pods took it.
	releaseTaken = "capacity-taken"
)

// release forgets the requests made from a group, so their pods are placed
// again at once.
func (p *Provisioner) release(group, reason string) {
	for uid, r := range p.requested {
		if r.group == group {
			delete(p.requested, uid)
			p.Metrics.released(reason)
		}
	}
}

// releaseLost releases the pods waiting on a group one of whose instances
// was booting at the last pass and is now neither booting nor running: it
// will never register, and the scheduler, seeing no new node, would not
// retry the pods before its own timeout, so settle would not free them.
// The released pods are counted against the group's remaining booting
// capacity first, so only the lost capacity is asked for again.
func (p *Provisioner) releaseLost(booting map[string]string, running map[string]bool) {
	lost := map[string]int{}
	for id, group := range p.booting {
		if _, still := booting[id]; !still && !running[id] {
			lost[group]++
		}
	}
	p.booting = booting
	for group, n := range lost {
		p.opts.Logger.Info("booting instances went away before registering: their pods are placed again", "group", group, "instances", n)
		p.release(group, releaseLost)
	}
}

// eligible drops pods below the priority cutoff and pods already bound;
// pods whose requested capacity is still on its way are returned apart
// (waiting).
func (p *Provisioner) eligible(pending []*corev1.Pod) (out, waiting []*corev1.Pod) {
	now := p.opts.Clock.Now()
	still := map[types.UID]bool{}
	for _, pod := range pending {
		if pod.Spec.NodeName != "" || corev1helpers.PodPriority(pod) < *p.opts.PriorityCutoff {
			continue
		}
		still[pod.UID] = true
		if r, ok := p.requested[pod.UID]; ok && now.Sub(r.at) < p.opts.ProvisionTimeout {
			waiting = append(waiting, pod)
			continue
		}
		out = append(out, pod)
	}
	for uid := range p.requested {
		if !still[uid] {
			delete(p.requested, uid) // scheduled or gone
		}
	}
	p.seenMu.Lock()
	for uid := range p.seen {
		if !still[uid] {
			delete(p.seen, uid)
		}
	}
	p.seenMu.Unlock()
	for uid := range p.observed {
		if !still[uid] {
			delete(p.observed, uid)
		}
	}
	// Largest first packs better and is deterministic.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := placement.PodRequests(out[i]), placement.PodRequests(out[j])
		if a.CPU != b.CPU {
			return a.CPU > b.CPU
		}
		if a.Mem != b.Mem {
			return a.Mem > b.Mem
		}
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out, waiting
}

// subtractBooting removes the pods that capacity already on its way will
// take, so a pass does not ask twice while nodes boot. The waiting pods,
// which that capacity was asked for, take it first: only what they leave
// covers new pods. A new pod counted on booting capacity is decided: it
// waits like a pod capacity was asked for (settle releases it if other
// pods take that capacity), so it is not asked for in the window between
// its node registering and the scheduler placing it there.
func (p *Provisioner) subtractBooting(waiting, pods []*corev1.Pod, groups []*groupState, daemonSets []*corev1.PodTemplateSpec) []*corev1.Pod {
	now := p.opts.Clock.Now()
	for _, g := range groups {
		if g.booting == 0 || len(pods) == 0 {
			continue
		}
		_, placed := packBest(g, append(append([]*corev1.Pod(nil), waiting...), pods...), daemonSets, g.booting)
		fresh := len(pods)
		pods = without(pods, placed)
		waiting = without(waiting, placed)
		if fresh == len(pods) {
			continue
		}
		for _, pod := range placed {
			if _, ok := p.requested[pod.UID]; !ok {
				// It is booting now: settle may free the pod once it registered.
				p.requested[pod.UID] = request{group: g.ID, at: now, bootingVersion: pod.ResourceVersion}
				p.observe(pod, now)
			}
		}
	}
	return pods
}

// tiers orders groups for scale-up: spot before on-demand, then by
// priority, highest first; groups with equal keys form a tier.
func tiers(groups []*groupState) [][]*groupState {
	sorted := append([]*groupState(nil), groups...)
	key := func(g *groupState) (int, int) {
		spot := 0
		if g.Lifecycle == provider.Spot {
			spot = 1
		}
		return spot, g.Priority
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		si, pi := key(sorted[i])
		sj, pj := key(sorted[j])
		if si != sj {
			return si > sj
		}
		if pi != pj {
			return pi > pj
		}
		return sorted[i].ID < sorted[j].ID
	})
	var out [][]*groupState
	for i, g := range sorted {
		if i > 0 {
			ps, pp := key(sorted[i-1])
			gs, gp := key(g)
			if ps == gs && pp == gp {
				out[len(out)-1] = append(out[len(out)-1], g)
				continue
			}
		}
		out = append(out, []*groupState{g})
	}
	return out
}

// bestInTier picks, among the tier's usable groups, the one that places
// the most pods with the least waste. A group whose offerings are all
// unavailable is skipped and sets *skipped (a fallback).
func (p *Provisioner) bestInTier(tier []*groupState, pods []*corev1.Pod, daemonSets []*corev1.PodTemplateSpec, skipped *bool) (*groupState, []*corev1.Pod, int) {
	var (
		best       *groupState
		bestPlaced []*corev1.Pod
		bestNodes  int
		bestWaste  float64
	)
	for _, g := range tier {
		room := g.MaxSize - g.TargetSize
		if room <= 0 {
			continue
		}
		if !p.unavailable.groupAvailable(g.NodeGroup) {
			// Only a fallback if the group could have taken some pods.
			if n, _ := packBest(g, pods, daemonSets, room); n > 0 {
				*skipped = true
			}
			continue
		}
		nodes, placed, waste := packWithWaste(g, pods, daemonSets, room)
		if nodes == 0 {
			continue
		}
		if best == nil || len(placed) > len(bestPlaced) || (len(placed) == len(bestPlaced) && waste < bestWaste) {
			best, bestPlaced, bestNodes, bestWaste = g, placed, nodes, waste
		}
	}
	return best, bestPlaced, bestNodes
}

// packBest packs pods on up to maxNodes nodes of the group's best template.
func packBest(g *groupState, pods []*corev1.Pod, daemonSets []*corev1.PodTemplateSpec, maxNodes int) (int, []*corev1.Pod) {
	n, placed, _ := packWithWaste(g, pods, daemonSets, maxNodes)
	return n, placed
}

func packWithWaste(g *groupState, pods []*corev1.Pod, daemonSets []*corev1.PodTemplateSpec, maxNodes int) (int, []*corev1.Pod, float64) {
	var (
		bestN      int
		bestPlaced []*corev1.Pod
		bestWaste  float64
	)
	for _, t := range g.templates {
		n, placed, waste := placement.BinPack(pods, t, placement.DaemonOverhead(t, daemonSets), maxNodes)
		if len(placed) > len(bestPlaced) || (len(placed) == len(bestPlaced) && len(placed) > 0 && waste < bestWaste) {
			bestN, bestPlaced, bestWaste = n, placed, waste
		}
	}
	return bestN, bestPlaced, bestWaste
}

func without(pods, remove []*corev1.Pod) []*corev1.Pod {
	gone := map[*corev1.Pod]bool{}
	for _, p := range remove {
		gone[p] = true
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if !gone[p] {
			out = append(out, p)
		}
	}
	return out
}

// pendingSince is when the pod turned unschedulable: the condition's
// transition time, which the API stores to the second, refined by when
// this process saw the change if that was within the same second.
func (p *Provisioner) pendingSince(uid types.UID, transition time.Time) time.Time {
	p.seenMu.Lock()
	seen, ok := p.seen[uid]
	delete(p.seen, uid)
	p.seenMu.Unlock()
	if ok && !seen.Before(transition) && seen.Sub(transition) < time.Second {
		return seen
	}
	return transition
}

// Seen records that the pod was seen turning unschedulable now (the
// controller's event handler calls it), for a sub-second latency metric.
func (p *Provisioner) Seen(uid types.UID) {
	p.seenMu.Lock()
	defer p.seenMu.Unlock()
	if _, ok := p.seen[uid]; !ok && len(p.seen) < maxSeen {
		p.seen[uid] = p.opts.Clock.Now()
	}
}

// maxSeen bounds the seen-times kept for pods never asked capacity for.
const maxSeen = 100000

// record logs a decision and observes the pending-to-requested latency of
// the pods asked for the first time.
func (p *Provisioner) record(d Decision, pods []*corev1.Pod) {
	now := p.opts.Clock.Now()
	for _, pod := range pods {
		if !p.observe(pod, now) {
			continue
		}
		if !p.opts.DryRun {
			how := ""
			if d.Fallback {
				how = " (fallback: a preferred group's offerings are out of capacity)"
			}
			p.opts.Recorder.Eventf(pod, corev1.EventTypeNormal, "TriggeredScaleUp", "pod triggered scale-up of %s from %d to %d%s", d.Group, d.From, d.To, how)
		}
	}
	p.Metrics.scaleUp(d.Group)
	p.opts.Logger.Info("scale-up", "group", d.Group, "from", d.From, "to", d.To, "pods", d.Pods, "fallback", d.Fallback, "dryRun", p.opts.DryRun)
}

// observe records the pod's decision latency, from its turning
// unschedulable to now, the first time a pass decides for it (capacity
// asked for it, or counted on capacity booting); false if it was decided
// before (asking again is not a new wait) or is an expected pod
// (placement.Expected: not created yet, so it gets no Event either).
func (p *Provisioner) observe(pod *corev1.Pod, now time.Time) bool {
	if p.observed[pod.UID] || placement.IsExpected(pod) {
		return false // an expected pod does not exist yet: no wait to measure, nothing to tell
	}
	p.observed[pod.UID] = true
	if p.Decided != nil {
		p.Decided(pod, now)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			p.Metrics.observeLatency(now.Sub(p.pendingSince(pod.UID, c.LastTransitionTime.Time)))
		}
	}
	return true
}
