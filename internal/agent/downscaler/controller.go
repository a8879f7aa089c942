// Package downscaler scales workloads down outside working hours and
// restores them afterwards (L24), keeping kube-downscaler's annotations.
//
// Each pass reads Deployments, StatefulSets, CronJobs, Jobs, HPAs and Namespaces
// from informer caches, decides per object (workload > namespace > flags,
// see Decide) and writes only where something must change, one merge patch
// per object carrying both the new replicas and the original-replicas
// annotation. A pass over an unchanged cluster makes no API request.
package downscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agentcmd"
)

// Options configure the controller. Dry-run, the namespace, the logger
// and the rest come with controller.Deps.
type Options struct {
	Defaults Defaults
	// Workers bounds the writes in flight during a pass (default 8).
	Workers int
}

func (o Options) workers() int {
	if o.Workers <= 0 {
		return 8
	}
	return o.Workers
}

// Controller is the downscaler.
type Controller struct {
	clock    clock.PassiveClock
	client   kubernetes.Interface
	recorder record.EventRecorder
	opts     Options
	// dryRun logs and counts what would change and writes nothing (no
	// patches, no events).
	dryRun  bool
	metrics *Metrics
	log     *slog.Logger
	// crds are the optional kinds (Argo Rollouts, KEDA ScaledObjects)
	// found by DiscoverCRDKinds (nil: none), in crdFactory.
	crds       *CRDKinds
	crdFactory dynamicinformer.DynamicSharedInformerFactory
	warned     sync.Map // uid/resourceVersion already warned about
	decider    *decider

	// passMu makes passes one at a time; it guards buf, the workloads
	// slice reused from pass to pass, and key, the cache key buffer.
	passMu sync.Mutex
	buf    []workload
	key    []byte

	namespaces corelisters.NamespaceLister
	// stores are the caches of the workload kinds.
	stores struct {
		deployments, statefulSets, cronJobs, jobs, hpas cache.Indexer
	}
	informers []cache.SharedIndexInformer
}

// New returns the downscaler. It registers the informers it needs with
// the shared factory (Deps.Client and Deps.Factory are required; the
// caller starts the factory and waits for sync before the first pass)
// and registers its metrics with Deps.Registry. With Deps.Dynamic it asks
// discovery (once) for the optional kinds (Argo Rollouts, KEDA
// ScaledObjects) and watches them in a factory of its own, which Start
// starts.
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldClient, controller.FieldFactory); err != nil {
		return nil, err
	}
	deps = deps.WithDefaults()
	factory := deps.Factory
	c := &Controller{
		clock: deps.Clock, client: deps.Client, recorder: deps.Recorder, opts: opts, dryRun: deps.DryRun,
		metrics:    NewMetrics(deps.Registry),
		log:        deps.Logger,
		decider:    newDecider(opts.Defaults),
		namespaces: factory.Core().V1().Namespaces().Lister(),
	}
	if deps.Dynamic != nil {
		c.crdFactory = dynamicinformer.NewFilteredDynamicSharedInformerFactory(deps.Dynamic, 0, deps.Namespace, nil)
		crds, err := DiscoverCRDKinds(deps.Client.Discovery(), deps.Dynamic, c.crdFactory)
		if err != nil {
			return nil, err
		}
		c.crds = crds
	}
	// Informers are registered with the factory on first use; each is
	// touched here so that the factory starts it.
	c.informers = []cache.SharedIndexInformer{
		factory.Core().V1().Namespaces().Informer(),
		factory.Apps().V1().Deployments().Informer(),
		factory.Apps().V1().StatefulSets().Informer(),
		factory.Batch().V1().CronJobs().Informer(),
		factory.Batch().V1().Jobs().Informer(),
		factory.Autoscaling().V2().HorizontalPodAutoscalers().Informer(),
	}
	c.stores.deployments = c.informers[1].GetIndexer()
	c.stores.statefulSets = c.informers[2].GetIndexer()
	c.stores.cronJobs = c.informers[3].GetIndexer()
	c.stores.jobs = c.informers[4].GetIndexer()
	c.stores.hpas = c.informers[5].GetIndexer()
	return c, nil
}

// Start starts the informers of the optional kinds until run ends and
// reports whether they synced before sync ended (the shared factory is
// started by the agent).
func (c *Controller) Start(run, sync context.Context) bool {
	if c.crdFactory == nil {
		return true
	}
	c.crdFactory.Start(run.Done())
	for _, ok := range c.crdFactory.WaitForCacheSync(sync.Done()) {
		if !ok {
			return false
		}
	}
	return true
}

// OnChange calls f whenever an object's downscaler annotations
// change (an annotation edited by a user, say force-uptime), so the agent
// can run a pass at once instead of at the next interval. Other changes do
// not call f: status churn, and other annotations (a Deployment's revision,
// bumped by every rollout, or a deploy tool's), change nothing the
// downscaler decides on, and each would cost a pass over every workload.
func (c *Controller) OnChange(f func()) error {
	for _, inf := range c.informers {
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(oldObj, newObj any) {
				o, ok1 := oldObj.(metav1.Object)
				n, ok2 := newObj.(metav1.Object)
				if ok1 && ok2 && downscalerAnnotationsChanged(o.GetAnnotations(), n.GetAnnotations()) {
					f()
				}
			},
		})
		if err != nil {
			return fmt.Errorf("adding event handler, %w", err)
		}
	}
	return nil
}

// annotationPrefix starts every annotation the downscaler reads on
// built-in kinds and namespaces.
const annotationPrefix = "downscaler/"

// downscalerAnnotationsChanged reports whether an annotation under
// annotationPrefix was added, removed or changed.
func downscalerAnnotationsChanged(old, cur map[string]string) bool {
	for k, v := range old {
		if strings.HasPrefix(k, annotationPrefix) {
			if w, ok := cur[k]; !ok || w != v {
				return true
			}
		}
	}
	for k := range cur {
		if strings.HasPrefix(k, annotationPrefix) {
			if _, ok := old[k]; !ok {
				return true
			}
		}
	}
	return false
}

// Name is the downscaler's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerDownscaler

// Name identifies the controller in flags, logs and metrics.
func (c *Controller) Name() string { return Name }

// Pass runs Reconcile and reports its actions as text.
func (c *Controller) Pass(ctx context.Context) ([]string, error) {
	actions, err := c.Reconcile(ctx)
	out := make([]string, 0, len(actions))
	for _, a := range actions {
		out = append(out, a.String())
	}
	return out, err
}

// Action is one change the pass made, or would make in dry-run.
type Action struct {
	Object string
	// Verb is ScaledDown, Restored, or RestoreSkipped.
	Verb   string
	From   int32
	To     int32
	Reason string
}

// String formats the action for logs and previews.
func (a Action) String() string {
	return fmt.Sprintf("%s %s %d -> %d (%s)", a.Verb, a.Object, a.From, a.To, a.Reason)
}

// Reconcile runs one pass over every workload and returns what it changed
// (or would change in dry-run). Errors on single objects are logged and
// reported together; one bad object does not stop the pass. Passes run
// one at a time.
//
// The pass decides for every workload first, from the caches and on this
// goroutine, and then writes what must change through a bounded pool: a
// pass over an unchanged cluster starts no goroutine and allocates
// nothing per workload.
func (c *Controller) Reconcile(ctx context.Context) ([]Action, error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	start := time.Now()
	now := c.clock.Now()
	all, err := c.workloads(c.buf[:0])
	if err != nil {
		return nil, err
	}
	// Keep the slice for the next pass, not the objects: a deleted object
	// must not stay reachable from here.
	c.buf = all
	defer clear(all)
	tally := newTally()
	var changes []change
	for i := range all {
		w := &all[i]
		tally.add(w)
		if ch, ok := c.reconcileOne(ctx, now, w); ok {
			changes = append(changes, ch)
		}
	}
	actions, errs := c.apply(ctx, changes)
	c.metrics.observePass(tally, time.Since(start))
	sort.Slice(actions, func(i, j int) bool { return actions[i].Object < actions[j].Object })
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return actions, errors.Join(errs...)
}

// apply writes the changes a pass decided on through a bounded pool: a
// first downtime pass may patch thousands of objects, and each write
// waits on the API server.
func (c *Controller) apply(ctx context.Context, changes []change) ([]Action, []error) {
	if len(changes) == 0 {
		return nil, nil
	}
	var (
		mu      sync.Mutex
		actions []Action
		errs    []error
		wg      sync.WaitGroup
	)
	work := make(chan *change)
	for i := 0; i < min(c.opts.workers(), len(changes)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range work {
				a, err := c.write(ctx, ch)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ch.w.key(), err))
				}
				if a != nil {
					actions = append(actions, *a)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range changes {
		if ctx.Err() != nil {
			break
		}
		work <- &changes[i]
	}
	close(work)
	wg.Wait()
	return actions, errs
}

// workloads appends every supported object from the caches to out. It
// reads the caches' stores directly: a store's List is one slice, where a
// lister's grows one by one.
func (c *Controller) workloads(out []workload) ([]workload, error) {
	for _, o := range c.stores.deployments.List() {
		if d, ok := o.(*appsv1.Deployment); ok {
			out = append(out, fromDeployment(d))
		}
	}
	for _, o := range c.stores.statefulSets.List() {
		if s, ok := o.(*appsv1.StatefulSet); ok {
			out = append(out, fromStatefulSet(s))
		}
	}
	for _, o := range c.stores.cronJobs.List() {
		if cj, ok := o.(*batchv1.CronJob); ok {
			out = append(out, fromCronJob(cj))
		}
	}
	for _, o := range c.stores.jobs.List() {
		j, ok := o.(*batchv1.Job)
		if !ok {
			continue
		}
		if metav1.GetControllerOf(j) != nil {
			continue // a CronJob's run: suspending the CronJob is enough
		}
		if j.Status.CompletionTime != nil {
			continue // finished: nothing to suspend
		}
		out = append(out, fromJob(j))
	}
	for _, o := range c.stores.hpas.List() {
		h, ok := o.(*autoscalingv2.HorizontalPodAutoscaler)
		if !ok {
			continue
		}
		if owner := metav1.GetControllerOf(h); owner != nil && owner.Kind == "ScaledObject" {
			continue // KEDA's own HPA: the ScaledObject is paused instead
		}
		out = append(out, fromHPA(h))
	}
	return c.crds.appendTo(out)
}

// layers appends the annotation maps that apply to w to buf, most
// specific first. An HPA inherits its scale target's annotations, so
// annotating a Deployment also holds its HPA down.
func (c *Controller) layers(buf []map[string]string, w *workload) []map[string]string {
	layers := append(buf, w.obj.GetAnnotations())
	switch o := w.obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		if annos, ok := c.targetAnnotations(o.Namespace, o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name); ok {
			layers = append(layers, annos)
		}
	case *unstructured.Unstructured:
		if w.kind == "ScaledObject" {
			if annos, ok := c.scaledObjectTarget(o); ok {
				layers = append(layers, annos)
			}
		}
	}
	if ns, err := c.namespaces.Get(w.obj.GetNamespace()); err == nil {
		layers = append(layers, ns.Annotations)
	}
	return layers
}

// targetAnnotations returns the annotations of an autoscaler's target.
func (c *Controller) targetAnnotations(ns, kind, name string) (map[string]string, bool) {
	switch kind {
	case "Deployment":
		if d, ok := c.cached(c.stores.deployments, ns, name).(*appsv1.Deployment); ok {
			return d.Annotations, true
		}
	case "StatefulSet":
		if s, ok := c.cached(c.stores.statefulSets, ns, name).(*appsv1.StatefulSet); ok {
			return s.Annotations, true
		}
	case "Rollout":
		return c.crds.rolloutAnnotations(ns, name)
	}
	return nil, false
}

// change is a write a pass decided on: the action, and the spec and
// annotations of its patch (nil annotation value: remove).
type change struct {
	w     *workload
	a     *Action
	spec  map[string]any
	annos map[string]*string
}

// cached returns the object stored in idx as namespace/name, or nil. It
// runs on the pass's goroutine, once per autoscaler per pass, and
// allocates nothing: the key is built in a buffer kept across passes and
// looked up without a copy (the lister's Get allocates the key and, for a
// missing target, an error). The key string lives only for the lookup;
// the cache reads it and does not keep it.
func (c *Controller) cached(idx cache.Indexer, ns, name string) any {
	c.key = append(append(append(c.key[:0], ns...), '/'), name...)
	obj, ok, err := idx.GetByKey(unsafe.String(unsafe.SliceData(c.key), len(c.key))) //nolint:gosec // G103: audited: the store only reads the key during the map lookup; c.key is not touched until it returns
	if err != nil || !ok {
		return nil
	}
	return obj
}

// reconcileOne decides for one workload from the caches; ok means a write
// is needed. It writes nothing (warnings aside).
func (c *Controller) reconcileOne(ctx context.Context, now time.Time, w *workload) (ch change, ok bool) {
	var buf [maxLayers - 1]map[string]string
	layers := c.layers(buf[:0], w)
	d, err := c.decider.decide(Input{
		Now: now, Created: w.obj.GetCreationTimestamp().Time,
		Name: w.obj.GetName(), Namespace: w.obj.GetNamespace(), Labels: w.obj.GetLabels(),
	}, layers)
	if err != nil {
		// Never act on a value that could not be parsed.
		c.warn(w, "InvalidAnnotation", err.Error())
		return change{}, false
	}
	orig, hasOrig, err := w.originalReplicas()
	if err != nil {
		c.warn(w, "InvalidAnnotation", err.Error())
		return change{}, false
	}
	target := max(d.DowntimeReplicas, w.floor)
	switch {
	case d.Intent == Down && !hasOrig && w.replicas > target:
		return c.scaleDown(w, target, d.Reason), true
	case d.Intent == Down && hasOrig && w.replicas != target:
		// Scaled by hand during downtime: someone needs it; leave it alone
		// until uptime, when the annotation is dropped without restoring.
		// Every pass sees it again: log only when someone listens.
		if c.log.Enabled(ctx, slog.LevelDebug) {
			c.log.Debug("left alone: scaled by hand during downtime", "object", w.key(), "replicas", w.replicas)
		}
	case d.Intent == Up && hasOrig:
		return c.restore(w, orig, target, d.Reason)
	case d.Intent != Down && !hasOrig && !d.Excluded && w.kind != "CronJob" && w.kind != "Job" && w.kind != "ScaledObject":
		// L33: only a workload the downscaler leaves up can be pre-scaled.
		return c.prescale(now, w, layers)
	}
	return change{}, false
}

func (c *Controller) scaleDown(w *workload, target int32, reason string) change {
	a := &Action{Object: w.key(), Verb: "ScaledDown", From: w.replicas, To: target, Reason: reason}
	annos := map[string]*string{AnnotationOriginalReplicas: ptr(strconv.Itoa(int(w.replicas)))}
	if w.annotate != nil {
		for k, v := range w.annotate(target, false) {
			annos[k] = v
		}
	}
	spec := w.spec(target)
	if h, ok := w.obj.(*autoscalingv2.HorizontalPodAutoscaler); ok {
		spec["maxReplicas"] = target
		annos[AnnotationOriginalMaxReplicas] = ptr(strconv.Itoa(int(h.Spec.MaxReplicas)))
	}
	return change{w: w, a: a, spec: spec, annos: annos}
}

func (c *Controller) restore(w *workload, orig, target int32, reason string) (change, bool) {
	annos := map[string]*string{AnnotationOriginalReplicas: nil}
	if w.replicas != target {
		// Changed by hand during downtime: keep the hand-set value.
		a := &Action{Object: w.key(), Verb: "RestoreSkipped", From: w.replicas, To: w.replicas,
			Reason: fmt.Sprintf("replicas changed by hand during downtime (original %d); keeping %d", orig, w.replicas)}
		if _, isHPA := w.obj.(*autoscalingv2.HorizontalPodAutoscaler); isHPA {
			annos[AnnotationOriginalMaxReplicas] = nil
		}
		return change{w: w, a: a, annos: annos}, true
	}
	a := &Action{Object: w.key(), Verb: "Restored", From: w.replicas, To: orig, Reason: reason}
	if w.annotate != nil {
		for k, v := range w.annotate(orig, true) {
			annos[k] = v
		}
	}
	spec := w.spec(orig)
	if _, isHPA := w.obj.(*autoscalingv2.HorizontalPodAutoscaler); isHPA {
		annos[AnnotationOriginalMaxReplicas] = nil
		if v, ok := w.obj.GetAnnotations()[AnnotationOriginalMaxReplicas]; ok {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < int64(orig) {
				c.warn(w, "InvalidAnnotation", fmt.Sprintf("%s %q: expected an integer >= minReplicas", AnnotationOriginalMaxReplicas, v))
				return change{}, false
			}
			spec["maxReplicas"] = int32(n)
		}
	}
	return change{w: w, a: a, spec: spec, annos: annos}, true
}

// write applies one patch (or only logs it in dry-run) and records an
// event. A conflict means the cache was stale; the next pass retries.
func (c *Controller) write(ctx context.Context, ch *change) (*Action, error) {
	w, a := ch.w, ch.a
	if c.dryRun {
		c.metrics.actions.WithLabelValues(a.Verb, w.kind, "true").Inc()
		c.log.Info("dry-run: would "+a.Verb, "object", w.key(), "from", a.From, "to", a.To, "reason", a.Reason)
		return a, nil
	}
	body, err := w.buildPatch(ch.spec, ch.annos)
	if err != nil {
		return nil, fmt.Errorf("building patch, %w", err)
	}
	if err := w.patch(ctx, c.client, w, body); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			c.log.Debug("changed under us; next pass retries", "object", w.key(), "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("patching, %w", err)
	}
	c.metrics.actions.WithLabelValues(a.Verb, w.kind, "false").Inc()
	c.log.Info(a.Verb, "object", w.key(), "from", a.From, "to", a.To, "reason", a.Reason)
	c.recorder.Eventf(w.obj, corev1.EventTypeNormal, a.Verb, "%s: %d -> %d (%s)", a.Verb, a.From, a.To, a.Reason)
	return a, nil
}

func (c *Controller) warn(w *workload, reason, msg string) {
	// Once per object version: a broken annotation seen every pass must
	// not turn an idle pass into an event write.
	if _, seen := c.warned.LoadOrStore(string(w.obj.GetUID())+"/"+w.obj.GetResourceVersion(), true); seen {
		return
	}
	c.metrics.invalid.WithLabelValues(w.kind).Inc()
	c.log.Warn("not acting on object", "object", w.key(), "reason", reason, "err", msg)
	if !c.dryRun {
		c.recorder.Event(w.obj, corev1.EventTypeWarning, reason, msg+"; the downscaler leaves this object alone until it is fixed")
	}
}
