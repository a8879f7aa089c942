package overprovisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/utils/ptr"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bosun-platform/bosun/internal/agent/placement"
)

// Event reasons of the burst release, on the Deployment (or other owner)
// of the pending pods.
const (
	// ReasonHeadroomReleased: pause pods were deleted so the pods run now.
	ReasonHeadroomReleased = "HeadroomReleased"
)

// burstBatch is how long the release waits after the first pending pod
// for others of the same burst (a ReplicaSet creates them in growing
// batches), so a burst is a few batches of deletions, not one per pod.
const burstBatch = 10 * time.Millisecond

// releaseSpacing is the least time between two releases: every pod
// created without a node kicks one, and each reads every cached pod, so a
// cluster that creates pods all the time pays for at most 20 a second.
const releaseSpacing = 50 * time.Millisecond

// deleters is how many pause pods one release deletes (or pods it
// nominates) at a time: under a burst the API server answers slowly, so
// the deletions' round trips overlap (ReleaseBurst bounds the rate).
const deleters = 64

// ReleaseBurst is the request burst of the burst release's client: one
// release of 200 pause pods is 200 deletions and up to 200 nominations,
// sent at once rather than paced by the agent's steady rate, which still
// bounds it over time.
const ReleaseBurst = 500

// ReleaseConfig is cfg for the burst release's client (Options.
// ReleaseClient): the same rate, a burst of at least ReleaseBurst, a rate
// limiter of its own.
func ReleaseConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.RateLimiter = nil
	c.Burst = max(c.Burst, ReleaseBurst)
	if c.QPS <= 0 {
		c.QPS = rest.DefaultQPS
	}
	return c
}

// Metrics are the burst release's Prometheus metrics.
type Metrics struct {
	released *prometheus.CounterVec
	latency  prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_overprovisioner_pause_pods_released_total",
			Help: "Pause pods the overprovisioner deleted at once for pending pods of higher priority (burst release), by target.",
		}, []string{"target"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bosun_overprovisioner_burst_release_seconds",
			Help:    "From a pending pod's creation (or its turning unschedulable) to the deletion of the pause pods it is to run in, per pod a burst release made room for.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.released, m.latency)
	}
	return m
}

// releaser deletes pause pods in one batch when pods of higher priority
// wait for them (see SelectRelease).
type releaser struct {
	c    *Controller
	kick chan struct{}
	mu   sync.Mutex
	// deleted are the pause pods this process deleted that the cache may
	// still show: they count as terminating until the cache sees them go.
	// A restarted agent does without: the API state it lists is at least
	// as recent as its deletions.
	deleted map[types.UID]bool
	// releasedFor are the pending pods a release made room for, and when:
	// for releaseTTL they get no second release. A pod the scheduler
	// still cannot place in that room (pod affinity, ports: what the
	// selection does not check) would otherwise have the re-created pause
	// pods deleted over and over; it is left to preemption and the
	// provisioner instead. A restarted agent forgets it, so such a pod
	// costs at most one more release per restart.
	releasedFor map[types.UID]releasedFor
	// inflight are the releases whose deletions, nominations and Events
	// are still going out.
	inflight sync.WaitGroup
	// missingSince is when a release first saw each ReplicaSet short of
	// pods (Expected; expectedTTL).
	missingSince map[types.UID]time.Time
}

// releasedFor is when a release made room for a pod, and on which node.
type releasedFor struct {
	at   time.Time
	node string
}

// releaseTTL is how long a pod released for gets no second release.
const releaseTTL = time.Minute

func newReleaser(c *Controller) *releaser {
	return &releaser{c: c, kick: make(chan struct{}, 1), deleted: map[types.UID]bool{}, releasedFor: map[types.UID]releasedFor{}, missingSince: map[types.UID]time.Time{}}
}

// watch kicks the release when a pod of higher priority than the pause
// pods arrives without a node or turns unschedulable.
func (r *releaser) watch(pods cache.SharedIndexInformer) error {
	_, err := pods.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			p, ok := obj.(*corev1.Pod)
			return ok && (waiting(p) || gated(p))
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { r.poke() },
			UpdateFunc: func(any, any) { r.poke() },
		},
	})
	if err != nil {
		return fmt.Errorf("watching pending pods for burst release, %w", err)
	}
	return nil
}

// watchReplicaSets kicks the release when a ReplicaSet has pods to create.
func (r *releaser) watchReplicaSets(rss cache.SharedIndexInformer) error {
	_, err := rss.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			rs, ok := obj.(*appsv1.ReplicaSet)
			return ok && ptr.Deref(rs.Spec.Replicas, 1) > rs.Status.Replicas
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { r.poke() },
			UpdateFunc: func(any, any) { r.poke() },
		},
	})
	if err != nil {
		return fmt.Errorf("watching ReplicaSets for burst release, %w", err)
	}
	return nil
}

// expected returns the pods ReplicaSets are about to create (Expected),
// each ReplicaSet's for expectedTTL after a release first saw it short.
func (r *releaser) expected(pods []*corev1.Pod, now time.Time) ([]*corev1.Pod, error) {
	if r.c.replicaSets == nil {
		return nil, nil
	}
	rss, err := r.c.replicaSets.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing ReplicaSets, %w", err)
	}
	classes, err := r.c.priorityClasses.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing priority classes, %w", err)
	}
	value := map[string]int32{}
	var globalDefault int32
	for _, pc := range classes {
		value[pc.Name] = pc.Value
		if pc.GlobalDefault {
			globalDefault = pc.Value
		}
	}
	priority := func(spec *corev1.PodSpec) (int32, bool) {
		switch {
		case spec.Priority != nil:
			return *spec.Priority, true
		case spec.PriorityClassName == "":
			return globalDefault, true
		}
		v, ok := value[spec.PriorityClassName]
		return v, ok
	}
	seen := map[types.UID]bool{}
	fresh := func(rs *appsv1.ReplicaSet) bool {
		if !releasable(rs) {
			return false
		}
		seen[rs.UID] = true
		since, ok := r.missingSince[rs.UID]
		if !ok {
			r.missingSince[rs.UID], since = now, now
		}
		return now.Sub(since) < expectedTTL
	}
	out := placement.Expected(rss, pods, priority, fresh, now, placement.MaxExpected)
	for uid := range r.missingSince {
		if !seen[uid] {
			delete(r.missingSince, uid) // caught up (or gone): the next scale-up is fresh
		}
	}
	return out, nil
}

// releasable reports a ReplicaSet whose missing pods the release makes
// room for: not those held by scheduling gates (the pause pods' own, or
// another controller's), which would not take the room.
func releasable(rs *appsv1.ReplicaSet) bool {
	return len(rs.Spec.Template.Spec.SchedulingGates) == 0
}

// expectedTTL bounds how long a ReplicaSet's missing pods count as
// expected from the moment the release first saw them missing: pods that
// are not created (a quota, an admission policy that refuses them) hold
// the room for no longer than this, then the held pause pods take it
// back.
const expectedTTL = time.Minute

func (r *releaser) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run releases after every kick, batched, until ctx ends.
func (r *releaser) run(ctx context.Context) {
	clk := r.c.opts.Clock
	if !cache.WaitForCacheSync(ctx.Done(), r.c.synced...) {
		return // ended before the caches synced
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-clk.After(burstBatch):
		}
		if _, err := r.release(ctx); err != nil && ctx.Err() == nil {
			r.c.opts.Logger.Error("burst release failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-clk.After(releaseSpacing):
		}
	}
}

// release makes one burst release from the caches and returns what it
// did.
func (r *releaser) release(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.c
	for _, synced := range c.synced {
		if !synced() {
			return nil, errors.New("the node and pod caches have not synced yet: no burst release from a partial list")
		}
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing nodes, %w", err)
	}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing pods, %w", err)
	}
	now := c.opts.Clock.Now()
	for uid, f := range r.releasedFor {
		if now.Sub(f.at) >= releaseTTL {
			delete(r.releasedFor, uid)
		}
	}
	cached := map[types.UID]bool{}
	// A pod that has waited longer than releaseTTL is the scheduler's
	// and the provisioner's (from the API state, so a restarted agent
	// agrees): it neither gets a release nor holds the gated pause pods.
	fresh := pods[:0:0]
	for _, p := range pods {
		if waiting(p) && now.Sub(unschedulableSince(p)) > releaseTTL {
			continue
		}
		fresh = append(fresh, p)
	}
	pods = fresh
	for i, p := range pods {
		if !r.deleted[p.UID] {
			continue
		}
		cached[p.UID] = true
		if p.DeletionTimestamp == nil {
			p = p.DeepCopy() // never modify the cache
			p.DeletionTimestamp = &metav1.Time{Time: c.opts.Clock.Now()}
			pods[i] = p
		}
	}
	for uid := range r.deleted {
		if !cached[uid] {
			delete(r.deleted, uid) // gone from the cache too
		}
	}
	expected, err := r.expected(pods, now)
	if err != nil {
		return nil, err
	}
	real := pods
	pods = append(pods[:len(pods):len(pods)], expected...)
	// Every pod waiting for room on existing nodes holds the gated pause
	// pods back; those released for already claim the room made for them
	// (as if nominated there) and get no second release.
	rel := SelectRelease(nodes, pods)
	hold := len(rel.Placed) > 0 || nominatedPending(pods) || r.startingReleasedFor(pods)
	if len(r.releasedFor) > 0 {
		claimed := make([]*corev1.Pod, len(pods))
		for i, p := range pods {
			claimed[i] = p
			if f, ok := r.releasedFor[p.UID]; ok && p.Spec.NodeName == "" && p.Status.NominatedNodeName == "" {
				p = p.DeepCopy() // never modify the cache
				p.Status.NominatedNodeName = f.node
				claimed[i] = p
			}
		}
		rel = SelectRelease(nodes, claimed)
	}
	actions, err := r.ungate(ctx, real, hold)
	if err != nil || len(rel.PausePods) == 0 {
		return actions, err
	}
	for p, node := range rel.Placed {
		c.opts.Logger.Debug("burst release: pending pod placed", "pod", p.Namespace+"/"+p.Name, "node", node)
	}
	for _, v := range rel.PausePods {
		c.opts.Logger.Info("releasing headroom: deleting pause pod for pending pods", "pod", v.Namespace+"/"+v.Name, "node", v.Spec.NodeName, "dryRun", c.opts.DryRun)
		actions = append(actions, fmt.Sprintf("delete pause Pod %s/%s on %s (burst release)", v.Namespace, v.Name, v.Spec.NodeName))
	}
	if c.opts.DryRun {
		return actions, nil
	}
	// The deletions go out now, in the background, so the next release
	// (pods of the same burst keep arriving) does not wait for this one's
	// round trips: a burst's deletions form one stream, not rounds that
	// each wait for their slowest request. The pause pods count as
	// terminating from this moment (deleted), so no later release counts
	// their room twice; a deletion that fails gives them back.
	for _, v := range rel.PausePods {
		r.deleted[v.UID] = true
	}
	released := map[string]int{} // per node
	for _, v := range rel.PausePods {
		released[v.Spec.NodeName]++
	}
	byOwner := map[corev1.ObjectReference][]*corev1.Pod{}
	var nominate []nomination
	lowest := lowestContender(real)
	for p, node := range rel.Placed {
		if released[node] == 0 {
			continue // fits in room that was free already
		}
		r.releasedFor[p.UID] = releasedFor{at: now, node: node}
		byOwner[ownerOf(p)] = append(byOwner[ownerOf(p)], p)
		if placement.IsExpected(p) {
			continue // not created yet: nothing to measure or nominate
		}
		c.metrics.latency.Observe(now.Sub(unschedulableSince(p)).Seconds())
		if lowest < corev1helpers.PodPriority(p) {
			nominate = append(nominate, nomination{pod: p, node: node})
		}
	}
	bg := context.WithoutCancel(ctx)
	r.inflight.Add(1)
	go func() {
		defer r.inflight.Done()
		bg, cancel := context.WithTimeout(bg, releaseTimeout)
		defer cancel()
		if err := r.delete(bg, rel.PausePods); err != nil {
			c.opts.Logger.Error("burst release: deleting pause pods failed; they count again at the next release", "err", err)
		}
		// After the deletions, so the scheduler (one pod watch, in order)
		// has the room free when it sees the nomination.
		if err := r.nominate(bg, nominate); err != nil {
			c.opts.Logger.Error("burst release: nominating pods failed", "err", err)
		}
		r.events(bg, rel.PausePods, released, byOwner)
	}()
	return actions, nil
}

// releaseTimeout bounds one release's deletions, nominations and Events
// in the background.
const releaseTimeout = 30 * time.Second

// Wait returns once every release's deletions, nominations and Events
// are done.
func (r *releaser) Wait() { r.inflight.Wait() }

// events records HeadroomReleased on the owners of the pods a release
// made room for.
func (r *releaser) events(ctx context.Context, paused []*corev1.Pod, released map[string]int, byOwner map[corev1.ObjectReference][]*corev1.Pod) {
	c := r.c
	if c.opts.Recorder == nil {
		return
	}
	nodeNames := make([]string, 0, len(released))
	for n := range released {
		nodeNames = append(nodeNames, n)
	}
	sort.Strings(nodeNames)
	if len(nodeNames) > 5 {
		nodeNames = append(nodeNames[:5], "...")
	}
	for ref, ps := range byOwner {
		if ref.Kind == "Deployment" {
			// The UID, so `kubectl describe deployment` lists the Event.
			if d, err := c.opts.Client.AppsV1().Deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
				ref.UID = d.UID
			}
		}
		c.opts.Recorder.Eventf(&ref, corev1.EventTypeNormal, ReasonHeadroomReleased,
			"Released %d pause pod(s) on %d node(s) (%s) at once for %d pending pod(s) of higher priority, instead of waiting for preemption (L12); the pause pods are re-created and ask for new capacity",
			len(paused), len(released), strings.Join(nodeNames, ", "), len(ps))
	}
}

// lowestContender is the lowest priority of the pods that could take room
// a release makes before the pod it was made for: unbound, schedulable
// (no scheduling gate) and not being deleted; MaxInt32 when there is
// none. A pod a release made room for is nominated there only when a
// contender of lower priority exists: the scheduler then keeps the room
// for it while it backs off. Without one the nomination would be a write
// per pod, in the middle of a burst, that changes nothing: the pause pods
// re-created meanwhile wait behind their scheduling gate.
func lowestContender(pods []*corev1.Pod) int32 {
	lowest := int32(math.MaxInt32)
	for _, p := range pods {
		if p.Spec.NodeName != "" || p.DeletionTimestamp != nil || len(p.Spec.SchedulingGates) > 0 ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		lowest = min(lowest, corev1helpers.PodPriority(p))
	}
	return lowest
}

// ungateAfter is how soon gated pause pods are looked at again while
// pending pods wait for room on existing nodes.
const ungateAfter = 200 * time.Millisecond

// ungate removes SchedulingGate from the pause pods that have it once no
// pending pod waits for room on existing nodes (not hold), so they go
// pending and ask for capacity; until then it looks again soon.
func (r *releaser) ungate(ctx context.Context, pods []*corev1.Pod, hold bool) ([]string, error) {
	var held []*corev1.Pod
	for _, p := range pods {
		if gated(p) && p.DeletionTimestamp == nil {
			held = append(held, p)
		}
	}
	if len(held) == 0 {
		return nil, nil
	}
	if hold {
		go func() {
			select {
			case <-ctx.Done():
			case <-r.c.opts.Clock.After(ungateAfter):
				r.poke()
			}
		}()
		return nil, nil
	}
	var actions []string
	for _, p := range held {
		r.c.opts.Logger.Info("no pending pod waits for room on existing nodes: ungating pause pod", "pod", p.Namespace+"/"+p.Name, "dryRun", r.c.opts.DryRun)
		actions = append(actions, fmt.Sprintf("ungate pause Pod %s/%s", p.Namespace, p.Name))
		if r.c.opts.DryRun {
			continue
		}
		patch := []byte(`{"spec":{"schedulingGates":null}}`)
		_, err := r.c.opts.Client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return actions, fmt.Errorf("removing the scheduling gate of pause pod %s/%s, %w", p.Namespace, p.Name, err)
		}
	}
	return actions, nil
}

// startingReleasedFor reports a pod a release made room for (within
// releaseTTL) that is not Running yet: the gated pause pods stay back
// until the burst runs. Their capacity is asked for while they are held
// (the provisioner counts them), so waiting costs the headroom nothing,
// and lifting 200 gates at once, with the scheduler's attempts, status
// updates and Events that follow, would compete for the API server with
// the burst's own last steps.
func (r *releaser) startingReleasedFor(pods []*corev1.Pod) bool {
	if len(r.releasedFor) == 0 {
		return false
	}
	for _, p := range pods {
		if _, ok := r.releasedFor[p.UID]; ok && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodPending {
			return true
		}
	}
	return false
}

// nominatedPending reports a pod of higher priority than the pause pods
// that waits, unbound, for room on the node it is nominated to (by a
// burst release or by the scheduler's preemption): the gated pause pods
// stay back until it runs, so none of them takes its room.
func nominatedPending(pods []*corev1.Pod) bool {
	for _, p := range pods {
		if p.Spec.NodeName == "" && p.Status.NominatedNodeName != "" && p.DeletionTimestamp == nil &&
			corev1helpers.PodPriority(p) > Priority {
			return true
		}
	}
	return false
}

// gated reports a pause pod that SchedulingGate holds back.
func gated(p *corev1.Pod) bool {
	if p.Labels[LabelManaged] == "" || p.Spec.NodeName != "" {
		return false
	}
	for _, g := range p.Spec.SchedulingGates {
		if g.Name == SchedulingGate {
			return true
		}
	}
	return false
}

// delete deletes the pause pods, deleters at a time. They are marked
// deleted before; one whose deletion fails is unmarked, so the next
// release counts it again.
func (r *releaser) delete(ctx context.Context, pods []*corev1.Pod) error {
	c := r.c
	return parallel(pods, func(v *corev1.Pod) error {
		// The UID precondition: a pause pod the Deployment re-created
		// under the same name is never deleted in its place. Grace 0: a
		// pause pod has nothing to shut down, and its room is free the
		// moment it is gone.
		err := c.opts.ReleaseClient.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{
			Preconditions:      &metav1.Preconditions{UID: &v.UID},
			GracePeriodSeconds: ptr.To[int64](0),
		})
		switch {
		case err == nil:
			c.metrics.released.WithLabelValues(v.Labels[LabelManaged]).Inc()
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			// Gone already (or re-created under its name): its room is free.
		default:
			r.mu.Lock()
			delete(r.deleted, v.UID)
			r.mu.Unlock()
			return fmt.Errorf("deleting pause pod %s/%s, %w", v.Namespace, v.Name, err)
		}
		return nil
	})
}

// nomination is a pending pod and the node a release made room on.
type nomination struct {
	pod  *corev1.Pod
	node string
}

// nominate sets each pod's status.nominatedNodeName to the node the
// release made room on, as the scheduler's own preemption does for its
// preemptors: the scheduler then tries that node first and keeps pods of
// lower priority (pause pods, re-created or left pending by an earlier
// burst) out of the room while the pod backs off, and a restarted agent
// reads the room as claimed from the API (SelectRelease) and releases
// nothing twice. The scheduler clears the field if it still cannot place
// the pod there. The pod's UID is a precondition: a pod re-created under
// the same name is not nominated.
func (r *releaser) nominate(ctx context.Context, ns []nomination) error {
	c := r.c
	return parallel(ns, func(n nomination) error {
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"uid": n.pod.UID},
			"status":   map[string]any{"nominatedNodeName": n.node},
		})
		if err != nil {
			return fmt.Errorf("nominating pod %s/%s, %w", n.pod.Namespace, n.pod.Name, err)
		}
		_, err = c.opts.ReleaseClient.CoreV1().Pods(n.pod.Namespace).Patch(ctx, n.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("nominating pod %s/%s for node %s (status.nominatedNodeName), %w", n.pod.Namespace, n.pod.Name, n.node, err)
		}
		return nil
	})
}

// parallel calls f for every item, deleters at a time, and returns the
// first error.
func parallel[T any](items []T, f func(T) error) error {
	work := make(chan T)
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for range min(deleters, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := f(it); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // the first, if any
}

// unschedulableSince is when the scheduler marked the pod unschedulable,
// or its creation when the cache kept no time.
func unschedulableSince(p *corev1.Pod) time.Time {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && !cond.LastTransitionTime.IsZero() {
			return cond.LastTransitionTime.Time
		}
	}
	return p.CreationTimestamp.Time
}

// ownerOf is the object the pod's Events go to: the Deployment of a pod
// of a Deployment's ReplicaSet (the ReplicaSet's name is the Deployment's
// and the pod-template-hash label), else the pod's controller, else the
// pod.
func ownerOf(p *corev1.Pod) corev1.ObjectReference {
	if o := metav1.GetControllerOf(p); o != nil {
		if hash := p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; o.Kind == "ReplicaSet" && hash != "" && strings.HasSuffix(o.Name, "-"+hash) {
			return corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: p.Namespace, Name: strings.TrimSuffix(o.Name, "-"+hash)}
		}
		return corev1.ObjectReference{Kind: o.Kind, APIVersion: o.APIVersion, Namespace: p.Namespace, Name: o.Name, UID: o.UID}
	}
	return corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID}
}
