package provisioner

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/utils/clock"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/agentcmd"
)

// Controller is the provisioner as an agent controller: it reads pods the
// scheduler could not place and the DaemonSets from informer caches, so an
// idle pass makes no API request, and calls Reconcile when pods wait.
//
// RBAC: pods list/watch, daemonsets and replicasets list/watch, events
// create.
type Controller struct {
	p *Provisioner
	// podInformer holds the pods without a node: the shared factory's pod
	// informer (every pod, unassigned ones indexed) or, when the pods are
	// not shared, one of its own for those pods only.
	podInformer cache.SharedIndexInformer
	// own are the factories the controller made and starts itself.
	own        []informers.SharedInformerFactory
	daemonSets appslisters.DaemonSetLister
	// pausePods holds the overprovisioner's pause pods, bound or not,
	// under indexPause, and pauseSets their ReplicaSets (label
	// agentapi.LabelManaged), for the pause pods a burst release deleted
	// and the controller-manager has not re-created yet (missingHeadroom).
	// With shared pods pausePods is podInformer (every pod is cached
	// once); otherwise an informer of the pause pods alone.
	pausePods cache.SharedIndexInformer
	pauseSets appslisters.ReplicaSetLister
	// displaced are the pause pods that gave their room to other pods
	// lately, whose replacements need new capacity (heldDemand).
	displaced *displacedHeadroom
}

// indexUnassigned indexes the pods without a node under "".
const indexUnassigned = "bosun.dev/unassigned"

// Name is the provisioner's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerProvisioner

// New returns the provisioner as an agent controller (NewProvisioner,
// wired to the cluster); call Start before the first Pass. Deps.Client is
// required; Deps.Factory is the agent's informer factory, for DaemonSets
// (nil: the controller makes its own). With Options.SharedPods, the pods
// waiting for a node are read from the factory's pod informer through an
// index: the agent does so when another controller (scale-down, reaper,
// overprovisioner) caches every pod anyway, so each pod is decoded and
// kept once. Without it the controller watches only the pods without a
// node (field selector spec.nodeName=""), far fewer than every pod when
// it runs alone.
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldClient); err != nil {
		return nil, err
	}
	p, err := NewProvisioner(deps, opts)
	if err != nil {
		return nil, err
	}
	return newController(p, deps.Client, deps.Factory, opts.SharedPods)
}

// newController wires p to a clientset (see New).
func newController(p *Provisioner, cs kubernetes.Interface, shared informers.SharedInformerFactory, sharedPods bool) (*Controller, error) {
	c := &Controller{p: p, displaced: newDisplacedHeadroom()}
	if shared == nil {
		shared = informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(agentcache.CacheTransform))
		c.own = append(c.own, shared)
	}
	if sharedPods {
		c.podInformer = shared.Core().V1().Pods().Informer()
	} else {
		unassigned := informers.NewSharedInformerFactoryWithOptions(cs, 0,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
			}),
			informers.WithTransform(agentcache.CacheTransform))
		c.podInformer = unassigned.Core().V1().Pods().Informer()
		c.own = append(c.own, unassigned)
	}
	if err := c.podInformer.AddIndexers(cache.Indexers{indexUnassigned: unassignedIndex}); err != nil {
		return nil, fmt.Errorf("indexing pods without a node, %w", err)
	}
	c.daemonSets = shared.Apps().V1().DaemonSets().Lister()
	headroomOpts := []informers.SharedInformerOption{
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = agentapi.LabelManaged }),
		informers.WithTransform(agentcache.CacheTransform),
	}
	if p.opts.Namespace != "" {
		headroomOpts = append(headroomOpts, informers.WithNamespace(p.opts.Namespace))
	}
	headroom := informers.NewSharedInformerFactoryWithOptions(cs, 0, headroomOpts...)
	c.pauseSets = headroom.Apps().V1().ReplicaSets().Lister()
	c.own = append(c.own, headroom)
	c.pausePods = c.podInformer
	if !sharedPods {
		c.pausePods = headroom.Core().V1().Pods().Informer()
	}
	if err := c.pausePods.AddIndexers(cache.Indexers{indexPause: pauseIndex}); err != nil {
		return nil, fmt.Errorf("indexing pause pods, %w", err)
	}
	if _, err := c.pausePods.AddEventHandler(pauseGoing(func(pod *corev1.Pod) {
		c.displaced.record(pod, p.opts.Clock.Now())
	})); err != nil {
		return nil, fmt.Errorf("watching pause pods, %w", err)
	}
	return c, nil
}

// pauseGoing calls f with each pause pod that is marked for deletion or
// deleted (a graceful deletion twice).
func pauseGoing(f func(*corev1.Pod)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok && isPause(pod) {
				f(pod)
			}
		},
		UpdateFunc: func(old, obj any) {
			if o, ok := old.(*corev1.Pod); ok && o.DeletionTimestamp == nil && isPause(o) {
				if n, ok := obj.(*corev1.Pod); ok && n.DeletionTimestamp != nil {
					f(n)
				}
			}
		},
	}
}

// OnChange calls f whenever a pod turns unschedulable (or a pause pod is
// held back, or a pod is nominated, see burstHeadroom), so capacity is
// asked for within a batching window instead of at the next interval.
func (c *Controller) OnChange(f func()) error {
	_, err := c.podInformer.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			pod, ok := obj.(*corev1.Pod)
			return ok && (isUnschedulable(pod) || heldHeadroom(pod) ||
				(pod.Spec.NodeName == "" && pod.Status.NominatedNodeName != ""))
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				c.p.Seen(obj.(*corev1.Pod).UID)
				f()
			},
			UpdateFunc: func(_, obj any) {
				c.p.Seen(obj.(*corev1.Pod).UID)
				f()
			},
		},
	})
	if err != nil {
		return fmt.Errorf("watching pending pods, %w", err)
	}
	// A pause pod going away may leave headroom to re-create, which
	// heldDemand asks capacity for.
	_, err = c.pausePods.AddEventHandler(pauseGoing(func(*corev1.Pod) { f() }))
	if err != nil {
		return fmt.Errorf("watching pause pods, %w", err)
	}
	return nil
}

// Name is the controller's name in `bosun agent --controllers`.
func (c *Controller) Name() string { return Name }

// Provisioner returns the provisioner the controller drives.
func (c *Controller) Provisioner() *Provisioner { return c.p }

// Start starts the informers the controller made until run ends and
// reports whether they synced before sync ended. The shared factory in
// Deps is started by its owner.
func (c *Controller) Start(run, sync context.Context) bool {
	for _, f := range c.own {
		f.Start(run.Done())
		for _, ok := range f.WaitForCacheSync(sync.Done()) {
			if !ok {
				return false
			}
		}
	}
	return true
}

// unassignedIndex indexes a pod without a node under "".
func unassignedIndex(obj any) ([]string, error) {
	if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName == "" {
		return []string{""}, nil
	}
	return nil, nil
}

// indexPause indexes the overprovisioner's pause pods under "".
const indexPause = "bosun.dev/pause"

func pauseIndex(obj any) ([]string, error) {
	if pod, ok := obj.(*corev1.Pod); ok && isPause(pod) {
		return []string{""}, nil
	}
	return nil, nil
}

// isPause reports a pause pod of the overprovisioner.
func isPause(pod *corev1.Pod) bool {
	_, ok := pod.Labels[agentapi.LabelManaged]
	return ok
}

// Pass runs one scale-up pass over the pods waiting for capacity and
// returns the decisions as text.
func (c *Controller) Pass(ctx context.Context) ([]string, error) {
	objs, err := c.podInformer.GetIndexer().ByIndex(indexUnassigned, "")
	if err != nil {
		return nil, fmt.Errorf("listing pending pods from the cache, %w", err)
	}
	var pending, held []*corev1.Pod
	for _, obj := range objs {
		pod, ok := obj.(*corev1.Pod)
		switch {
		case !ok:
		case isUnschedulable(pod):
			pending = append(pending, pod)
		case heldHeadroom(pod):
			held = append(held, pod)
		}
	}
	held = append(held, c.missingHeadroom()...)
	var displaced map[types.UID]int
	if len(held) > 0 {
		// A burst's pods count until they run, bound or not: the
		// overprovisioner holds the pause pods back until then.
		objs = c.podInformer.GetStore().List()
		displaced = c.displaced.counts(c.p.opts.Clock.Now())
	}
	pending = append(pending, c.p.heldDemand(held, objs, displaced)...)
	if len(pending) == 0 {
		return nil, nil
	}
	dsList, err := c.daemonSets.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing DaemonSets from the cache, %w", err)
	}
	templates := make([]*corev1.PodTemplateSpec, 0, len(dsList))
	for _, ds := range dsList {
		templates = append(templates, &ds.Spec.Template)
	}
	decisions, err := c.p.Reconcile(ctx, pending, templates)
	out := make([]string, 0, len(decisions))
	for _, d := range decisions {
		out = append(out, d.String())
	}
	return out, err
}

// String says what the decision does.
func (d Decision) String() string {
	s := fmt.Sprintf("scale up %s from %d to %d for %d pod(s)", d.Group, d.From, d.To, d.Pods)
	if d.Fallback {
		s += " (fallback: a preferred group's offerings are unavailable)"
	}
	return s
}

// Run watches unscheduled pods and DaemonSets through informers and runs a
// pass every interval, and early (batched, see Kicks) when a pod turns
// unschedulable; an idle pass reads only the informers' caches and makes
// no API request. It returns when ctx ends.
func (p *Provisioner) Run(ctx context.Context, cs kubernetes.Interface, interval time.Duration) error {
	c, err := newController(p, cs, nil, false)
	if err != nil {
		return err
	}
	kicks := NewKicks(p.opts.Clock)
	if err := c.OnChange(kicks.Kick); err != nil {
		return err
	}
	if !c.Start(ctx, ctx) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("provisioner: informer caches did not sync")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.opts.Clock.After(interval):
		case <-kicks.C():
			if !kicks.Batch(ctx, p.opts.Clock) {
				return nil
			}
		}
		if _, err := c.Pass(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("provisioner pass", "error", err)
		}
	}
}

// Batching of early passes: a pass runs once arrivals pause for
// BatchIdle, or BatchMax after the first, whichever comes first, so a burst
// of pending pods makes one decision, not one per pod. BatchMax bounds the
// decision latency of a steady stream of pods (plus the watch's lag and one
// pass); it also bounds passes to four a second while pods keep arriving.
// The scale benchmark's p99 was 1.6 s with 1 s, 0.99 s with 500 ms.
const (
	BatchIdle = 100 * time.Millisecond
	BatchMax  = 250 * time.Millisecond
)

// waitBatch waits after a first kick until kicks pause for BatchIdle or
// limit has passed; false when ctx ended.
func waitBatch(ctx context.Context, clk clock.Clock, kick <-chan struct{}, limit time.Duration) bool {
	deadline, idle := clk.NewTimer(limit), clk.NewTimer(BatchIdle)
	defer deadline.Stop()
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C():
			return true
		case <-idle.C():
			return true
		case <-kick:
			if !idle.Stop() {
				select { // drain a tick that fired meanwhile
				case <-idle.C():
				default:
				}
			}
			idle.Reset(BatchIdle)
		}
	}
}

// UnschedulablePods keeps the pods the scheduler tried and could not place.
func UnschedulablePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, pod := range pods {
		if isUnschedulable(pod) {
			out = append(out, pod)
		}
	}
	return out
}

// HeadroomGate is the scheduling gate that holds re-created pause pods
// back while the pods a burst release made room for wait for it (see the
// overprovisioner, which owns it).
const HeadroomGate = "overprovisioning.bosun.dev/burst-release"

// heldHeadroom reports a pause pod HeadroomGate holds back.
func heldHeadroom(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && headroomGated(pod.Spec.SchedulingGates)
}

// missingHeadroom returns the pause pods a burst release deleted that the
// controller-manager has not re-created yet, as expected pods
// (placement.Expected) of the pause ReplicaSets whose pods start held
// (HeadroomGate). The controller-manager re-creates a burst's worth of
// pause pods at its own API rate, beside the burst's pods (200 pods took
// 6 s on a local control plane; its default budget is 20 requests a
// second): counting them from the moment they are deleted asks for the
// headroom's capacity within the release, not as each is re-created, so
// the headroom is back within one boot time of the burst (L12, issue 17).
// Once the burst runs, heldDemand keeps as many as were displaced lately.
func (c *Controller) missingHeadroom() []*corev1.Pod {
	sets, err := c.pauseSets.List(labels.Everything())
	if err != nil || len(sets) == 0 {
		return nil
	}
	objs, err := c.pausePods.GetIndexer().ByIndex(indexPause, "")
	if err != nil {
		return nil
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		if pod, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, pod)
		}
	}
	priority := func(spec *corev1.PodSpec) (int32, bool) {
		return agentapi.Priority, spec.PriorityClassName == agentapi.PriorityClassName
	}
	return placement.Expected(sets, pods, priority, startsHeld, c.p.opts.Clock.Now(), placement.MaxExpected)
}

// startsHeld reports a ReplicaSet whose pods start held by HeadroomGate:
// the overprovisioner's, with burst release on.
func startsHeld(rs *appsv1.ReplicaSet) bool {
	return headroomGated(rs.Spec.Template.Spec.SchedulingGates)
}

// headroomGated reports HeadroomGate among gates.
func headroomGated(gates []corev1.PodSchedulingGate) bool {
	for _, g := range gates {
		if g.Name == HeadroomGate {
			return true
		}
	}
	return false
}

// heldDemand returns the held pause pods that need new capacity: while a
// burst's pods of higher priority wait, unbound, for room (a burst
// release, or the scheduler's preemption, is taking the room of the pause
// pods these replace), the overprovisioner keeps them gated and the
// scheduler never reports them unschedulable. Asking for their capacity
// at once, not after the gate is lifted, restores the headroom within one
// boot time of the burst (L12, issue 17). Once no burst's pod waits (it
// may run before the provisioner's next pass), they are, per pause
// ReplicaSet, as many as it had pods displaced (Displaced) within
// displacedTTL, those capacity was asked for counted first; and those
// capacity was already asked for (so the request is kept, not dropped as
// if they were placed, until the scheduler has them). Other held pods,
// such as a scale-up of the headroom, go through the scheduler: the gate
// is lifted within a fraction of a second and it places them or reports
// them as usual.
func (p *Provisioner) heldDemand(held []*corev1.Pod, pods []any, displaced map[types.UID]int) []*corev1.Pod {
	if len(held) == 0 {
		return nil
	}
	if burstWaiting(held, pods, p.opts.Clock.Now()) {
		return held
	}
	var out []*corev1.Pod
	take := func(pod *corev1.Pod) bool {
		if o := metav1.GetControllerOf(pod); o != nil && displaced[o.UID] > 0 {
			displaced[o.UID]--
			return true
		}
		return false
	}
	for _, pod := range held {
		if _, ok := p.requested[pod.UID]; ok {
			take(pod)
			out = append(out, pod)
		}
	}
	for _, pod := range held {
		if _, ok := p.requested[pod.UID]; !ok && take(pod) {
			out = append(out, pod)
		}
	}
	return out
}

// burstWindow is how long after its creation an unbound pod of higher
// priority than the held pause pods counts as a burst's: a pod pending
// for longer (one that fits no node, say) is the scale-up's as usual and
// does not turn every briefly gated pause pod into demand.
const burstWindow = time.Minute

// burstWaiting reports a pod of a burst, not running yet, whose priority
// is above the lowest of the held pause pods: unbound and nominated to a
// node (by a burst release or the scheduler's preemption), or created
// within burstWindow and not held back by scheduling gates of its own
// (bound or not: the overprovisioner lifts the gate once the burst runs).
func burstWaiting(held []*corev1.Pod, pods []any, now time.Time) bool {
	lowest := corev1helpers.PodPriority(held[0])
	for _, p := range held[1:] {
		lowest = min(lowest, corev1helpers.PodPriority(p))
	}
	for _, obj := range pods {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.DeletionTimestamp != nil || corev1helpers.PodPriority(p) <= lowest ||
			p.Status.Phase != corev1.PodPending && p.Status.Phase != "" {
			continue
		}
		if p.Spec.NodeName == "" && p.Status.NominatedNodeName != "" ||
			len(p.Spec.SchedulingGates) == 0 && now.Sub(p.CreationTimestamp.Time) < burstWindow {
			return true
		}
	}
	return false
}

// Unschedulable is isUnschedulable, for the overprovisioner's burst
// release: it acts on exactly the pods the provisioner would ask capacity
// for.
func Unschedulable(pod *corev1.Pod) bool { return isUnschedulable(pod) }

// isUnschedulable reports a pod the scheduler tried and could not place.
// A pod with a nominated node is not one: the scheduler preempted
// lower-priority pods (pause pods, L12) to make room for it there, and a
// new node would be wasted on it.
func isUnschedulable(pod *corev1.Pod) bool {
	if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || pod.Status.NominatedNodeName != "" {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}
