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
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Options configure the controller.
type Options struct {
	Defaults Defaults
	// DryRun logs and counts what would change and writes nothing (no
	// patches, no events).
	DryRun bool
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// Workers bounds the writes in flight during a pass (default 8).
	Workers int
	// CRDs are the optional kinds (Argo Rollouts, KEDA ScaledObjects)
	// found by DiscoverCRDKinds; nil means none.
	CRDs *CRDKinds
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
	metrics  *Metrics
	log      *slog.Logger
	warned   sync.Map // uid/resourceVersion already warned about

	namespaces   corelisters.NamespaceLister
	deployments  appslisters.DeploymentLister
	statefulSets appslisters.StatefulSetLister
	cronJobs     batchlisters.CronJobLister
	jobs         batchlisters.JobLister
	hpas         autoscalinglisters.HorizontalPodAutoscalerLister
	informers    []cache.SharedIndexInformer
}

// NewController registers the informers it needs with factory; the caller
// starts the factory and waits for sync before calling Reconcile.
func NewController(clk clock.PassiveClock, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, metrics *Metrics, opts Options) *Controller {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Controller{
		clock: clk, client: client, recorder: recorder, opts: opts, metrics: metrics,
		log:          opts.Logger.With("controller", "downscaler"),
		namespaces:   factory.Core().V1().Namespaces().Lister(),
		deployments:  factory.Apps().V1().Deployments().Lister(),
		statefulSets: factory.Apps().V1().StatefulSets().Lister(),
		cronJobs:     factory.Batch().V1().CronJobs().Lister(),
		jobs:         factory.Batch().V1().Jobs().Lister(),
		hpas:         factory.Autoscaling().V2().HorizontalPodAutoscalers().Lister(),
	}
	// Listers register informers lazily; touch each so the factory starts it.
	c.informers = []cache.SharedIndexInformer{
		factory.Core().V1().Namespaces().Informer(),
		factory.Apps().V1().Deployments().Informer(),
		factory.Apps().V1().StatefulSets().Informer(),
		factory.Batch().V1().CronJobs().Informer(),
		factory.Batch().V1().Jobs().Informer(),
		factory.Autoscaling().V2().HorizontalPodAutoscalers().Informer(),
	}
	return c
}

// OnAnnotationChange calls f whenever an object's annotations change (an
// annotation edited by a user, say force-uptime), so the agent can run a
// pass at once instead of at the next interval. Status churn does not call
// f: it changes nothing the downscaler decides on.
func (c *Controller) OnAnnotationChange(f func()) error {
	for _, inf := range c.informers {
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(oldObj, newObj any) {
				o, ok1 := oldObj.(metav1.Object)
				n, ok2 := newObj.(metav1.Object)
				if ok1 && ok2 && !maps.Equal(o.GetAnnotations(), n.GetAnnotations()) {
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

// Name identifies the controller in flags, logs and metrics.
func (c *Controller) Name() string { return "downscaler" }

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
// reported together; one bad object does not stop the pass.
func (c *Controller) Reconcile(ctx context.Context) ([]Action, error) {
	start := time.Now()
	now := c.clock.Now()
	all, err := c.workloads()
	if err != nil {
		return nil, err
	}
	tally := newTally()
	for _, w := range all {
		tally.add(w)
	}
	// A bounded pool decides and writes: a first downtime pass may patch
	// thousands of objects, and each write waits on the API server.
	var (
		mu      sync.Mutex
		actions []Action
		errs    []error
		wg      sync.WaitGroup
	)
	work := make(chan workload)
	for i := 0; i < c.opts.workers(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range work {
				a, err := c.reconcileOne(ctx, now, w)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", w.key(), err))
				}
				if a != nil {
					actions = append(actions, *a)
				}
				mu.Unlock()
			}
		}()
	}
	for _, w := range all {
		if ctx.Err() != nil {
			break
		}
		work <- w
	}
	close(work)
	wg.Wait()
	c.metrics.observePass(tally, time.Since(start))
	sort.Slice(actions, func(i, j int) bool { return actions[i].Object < actions[j].Object })
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return actions, errors.Join(errs...)
}

// workloads lists every supported object from the caches.
func (c *Controller) workloads() ([]workload, error) {
	var out []workload
	deps, err := c.deployments.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing deployments, %w", err)
	}
	for _, d := range deps {
		out = append(out, fromDeployment(d))
	}
	sts, err := c.statefulSets.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing statefulsets, %w", err)
	}
	for _, s := range sts {
		out = append(out, fromStatefulSet(s))
	}
	cjs, err := c.cronJobs.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing cronjobs, %w", err)
	}
	for _, cj := range cjs {
		out = append(out, fromCronJob(cj))
	}
	jobs, err := c.jobs.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing jobs, %w", err)
	}
	for _, j := range jobs {
		if metav1.GetControllerOf(j) != nil {
			continue // a CronJob's run: suspending the CronJob is enough
		}
		if j.Status.CompletionTime != nil {
			continue // finished: nothing to suspend
		}
		out = append(out, fromJob(j))
	}
	hpas, err := c.hpas.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing hpas, %w", err)
	}
	for _, h := range hpas {
		if owner := metav1.GetControllerOf(h); owner != nil && owner.Kind == "ScaledObject" {
			continue // KEDA's own HPA: the ScaledObject is paused instead
		}
		out = append(out, fromHPA(h))
	}
	crds, err := c.opts.CRDs.list()
	if err != nil {
		return nil, err
	}
	return append(out, crds...), nil
}

// layers returns the annotation maps that apply to w, most specific first.
// An HPA inherits its scale target's annotations, so annotating a
// Deployment also holds its HPA down.
func (c *Controller) layers(w workload) []map[string]string {
	layers := []map[string]string{w.obj.GetAnnotations()}
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
		if d, err := c.deployments.Deployments(ns).Get(name); err == nil {
			return d.Annotations, true
		}
	case "StatefulSet":
		if s, err := c.statefulSets.StatefulSets(ns).Get(name); err == nil {
			return s.Annotations, true
		}
	case "Rollout":
		return c.opts.CRDs.rolloutAnnotations(ns, name)
	}
	return nil, false
}

func (c *Controller) reconcileOne(ctx context.Context, now time.Time, w workload) (*Action, error) {
	layers := c.layers(w)
	d, err := Decide(c.opts.Defaults, Input{
		Now: now, Created: w.obj.GetCreationTimestamp().Time,
		Name: w.obj.GetName(), Namespace: w.obj.GetNamespace(), Labels: w.obj.GetLabels(),
		Layers: layers,
	})
	if err != nil {
		// Never act on a value that could not be parsed.
		c.warn(w, "InvalidAnnotation", err.Error())
		return nil, nil
	}
	orig, hasOrig, err := w.originalReplicas()
	if err != nil {
		c.warn(w, "InvalidAnnotation", err.Error())
		return nil, nil
	}
	target := max(d.DowntimeReplicas, w.floor)
	switch {
	case d.Intent == Down && !hasOrig && w.replicas > target:
		return c.scaleDown(ctx, w, target, d.Reason)
	case d.Intent == Down && hasOrig && w.replicas != target:
		// Scaled by hand during downtime: someone needs it; leave it alone
		// until uptime, when the annotation is dropped without restoring.
		c.log.Debug("left alone: scaled by hand during downtime", "object", w.key(), "replicas", w.replicas)
	case d.Intent == Up && hasOrig:
		return c.restore(ctx, w, orig, target, d.Reason)
	case d.Intent != Down && !hasOrig && !d.Excluded && w.kind != "CronJob" && w.kind != "Job" && w.kind != "ScaledObject":
		// L33: only a workload the downscaler leaves up can be pre-scaled.
		return c.prescale(ctx, now, w, layers)
	}
	return nil, nil
}

func (c *Controller) scaleDown(ctx context.Context, w workload, target int32, reason string) (*Action, error) {
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
	return c.write(ctx, w, a, spec, annos)
}

func (c *Controller) restore(ctx context.Context, w workload, orig, target int32, reason string) (*Action, error) {
	annos := map[string]*string{AnnotationOriginalReplicas: nil}
	if w.replicas != target {
		// Changed by hand during downtime: keep the hand-set value.
		a := &Action{Object: w.key(), Verb: "RestoreSkipped", From: w.replicas, To: w.replicas,
			Reason: fmt.Sprintf("replicas changed by hand during downtime (original %d); keeping %d", orig, w.replicas)}
		if _, isHPA := w.obj.(*autoscalingv2.HorizontalPodAutoscaler); isHPA {
			annos[AnnotationOriginalMaxReplicas] = nil
		}
		return c.write(ctx, w, a, nil, annos)
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
				return nil, nil
			}
			spec["maxReplicas"] = int32(n)
		}
	}
	return c.write(ctx, w, a, spec, annos)
}

// write applies one patch (or only logs it in dry-run) and records an
// event. A conflict means the cache was stale; the next pass retries.
func (c *Controller) write(ctx context.Context, w workload, a *Action, spec map[string]any, annos map[string]*string) (*Action, error) {
	if c.opts.DryRun {
		c.metrics.actions.WithLabelValues(a.Verb, w.kind, "true").Inc()
		c.log.Info("dry-run: would "+a.Verb, "object", w.key(), "from", a.From, "to", a.To, "reason", a.Reason)
		return a, nil
	}
	body, err := w.buildPatch(spec, annos)
	if err != nil {
		return nil, fmt.Errorf("building patch, %w", err)
	}
	if err := w.patch(ctx, c.client, body); err != nil {
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

func (c *Controller) warn(w workload, reason, msg string) {
	// Once per object version: a broken annotation seen every pass must
	// not turn an idle pass into an event write.
	if _, seen := c.warned.LoadOrStore(string(w.obj.GetUID())+"/"+w.obj.GetResourceVersion(), true); seen {
		return
	}
	c.metrics.invalid.WithLabelValues(w.kind).Inc()
	c.log.Warn("not acting on object", "object", w.key(), "reason", reason, "err", msg)
	if !c.opts.DryRun {
		c.recorder.Event(w.obj, corev1.EventTypeWarning, reason, msg+"; the downscaler leaves this object alone until it is fixed")
	}
}
