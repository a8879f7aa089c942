// Package janitor deletes temporary resources after their time is up (L52),
// with kube-janitor's annotations (janitor/ttl, janitor/expires) and a CEL
// rules file for resources without annotations.
//
// It watches only the resources it is configured for (no listing of every
// API type, kube-janitor's memory and API-load complaint), reads them from
// informer caches, announces each deletion with an Event NotifyBefore ahead,
// and deletes with background propagation under a per-pass cap and a rate
// limit. Excluded namespaces are never touched, and an object whose TTL
// cannot be parsed gets a warning Event and is never deleted.
package janitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agentcmd"
)

// DefaultResources are watched when none are configured: the kinds people
// create by hand for a while and forget. Secrets are left out on purpose:
// watching them means reading every secret in the cluster; add them (and
// the RBAC) only where that is acceptable.
var DefaultResources = []string{
	"deployments", "statefulsets", "daemonsets", "services", "ingresses", "configmaps",
	"persistentvolumeclaims", "jobs", "cronjobs", "horizontalpodautoscalers", "serviceaccounts",
}

// Options configure the janitor.
type Options struct {
	// Resources are plural resource names to watch (default
	// DefaultResources plus those named by rules).
	Resources []string
	// ExcludeResources are never watched, even if Resources or a rule
	// names them.
	ExcludeResources []string
	// ClusterScoped allows cluster-scoped resources such as namespaces;
	// without it they are refused.
	ClusterScoped bool
	// IncludeNamespaces, when set, limits the janitor to these namespaces.
	IncludeNamespaces []string
	// ExcludeNamespaces are never touched.
	ExcludeNamespaces []string
	// Rules apply to objects without janitor annotations; first match wins.
	Rules []Rule
	// NotifyBefore is how long before deletion the DeleteScheduled event is
	// sent; 0 sends none. An object is deleted only after its notice is
	// NotifyBefore old, even if the agent was down when it should have
	// been sent.
	NotifyBefore time.Duration
	// MaxDeletionsPerPass caps deletions in one pass (0 = 100).
	MaxDeletionsPerPass int
	// DeletionsPerSecond is a rate limit across passes (0 = 1).
	DeletionsPerSecond float64
}

// Validate checks the options that the flags cannot: counts and rates are
// not negative.
func (o Options) Validate() error {
	if o.MaxDeletionsPerPass < 0 {
		return fmt.Errorf("--janitor-max-deletions %d: expected 0 (default 100) or more", o.MaxDeletionsPerPass)
	}
	if o.DeletionsPerSecond < 0 {
		return fmt.Errorf("--janitor-deletions-per-second %g: expected 0 (default 1) or more", o.DeletionsPerSecond)
	}
	if o.NotifyBefore < 0 {
		return fmt.Errorf("--janitor-notify-before %s: expected 0 (no notice) or more", o.NotifyBefore)
	}
	return nil
}

// WatchesPods reports whether the janitor caches every pod (a rule needs
// pvcIsNotMounted), in the agent's shared informer factory.
func (o Options) WatchesPods() bool {
	for _, r := range o.Rules {
		if r.needsPVCContext {
			return true
		}
	}
	return false
}

// Controller is the janitor.
type Controller struct {
	clock    clock.PassiveClock
	dynamic  dynamic.Interface
	recorder record.EventRecorder
	metrics  *Metrics
	opts     Options
	log      *slog.Logger
	// dryRun: log and count what would be deleted, delete nothing.
	dryRun bool
	// namespace limits the janitor to one namespace ("" = all).
	namespace string
	limiter   *rate.Limiter
	warned    sync.Map // uid/resourceVersion already warned about

	dynFactory  dynamicinformer.DynamicSharedInformerFactory
	metaFactory metadatainformer.SharedInformerFactory
	resources   []watched
	pods        corelisters.PodLister // only when a rule needs PVC facts
}

// watched is one resource the janitor watches: in full when a rule looks
// at it, else metadata only (annotations are all a TTL needs, and a
// metadata cache is a fraction of a full one).
type watched struct {
	name   string
	gvr    schema.GroupVersionResource
	gvk    schema.GroupVersionKind
	full   bool
	lister cache.GenericLister
}

// object is what both caches hold: *unstructured.Unstructured (full) or
// *metav1.PartialObjectMetadata.
type object interface {
	metav1.Object
	runtime.Object
}

// Name is the janitor's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerJanitor

// New resolves the resources through discovery (once, at start), and
// registers informers for them: metadata-only or full ones of its own
// (Start starts them), pods in the shared factory when a rule needs them.
// Deps.Client, Dynamic, Metadata and Factory are required.
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldClient, controller.FieldDynamic, controller.FieldMetadata, controller.FieldFactory); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	deps = deps.WithDefaults()
	if opts.MaxDeletionsPerPass == 0 {
		opts.MaxDeletionsPerPass = 100
	}
	if opts.DeletionsPerSecond == 0 {
		opts.DeletionsPerSecond = 1
	}
	client, factory := deps.Client, deps.Factory
	c := &Controller{
		clock: deps.Clock, dynamic: deps.Dynamic, recorder: deps.Recorder, metrics: NewMetrics(deps.Registry), opts: opts,
		log:         deps.Logger,
		dryRun:      deps.DryRun,
		namespace:   deps.Namespace,
		limiter:     rate.NewLimiter(rate.Limit(opts.DeletionsPerSecond), opts.MaxDeletionsPerPass),
		dynFactory:  dynamicinformer.NewFilteredDynamicSharedInformerFactory(deps.Dynamic, 0, deps.Namespace, nil),
		metaFactory: metadatainformer.NewFilteredSharedInformerFactory(deps.Metadata, 0, deps.Namespace, nil),
	}
	groups, err := restmapper.GetAPIGroupResources(client.Discovery())
	if err != nil {
		return nil, fmt.Errorf("discovering API resources, %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	names := opts.Resources
	if len(names) == 0 {
		names = DefaultResources
	}
	seen := map[string]bool{}
	excluded := map[string]bool{}
	for _, r := range opts.ExcludeResources {
		excluded[strings.ToLower(strings.TrimSpace(r))] = true
	}
	full := map[string]bool{}
	for _, r := range opts.Rules {
		for res := range r.Resources {
			full[res] = true
			if res != "*" {
				names = append(names, res)
			}
		}
	}
	if opts.WatchesPods() {
		c.pods = factory.Core().V1().Pods().Lister()
		factory.Core().V1().Pods().Informer()
	}
	for _, name := range names {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] || excluded[name] {
			continue
		}
		seen[name] = true
		w, err := c.watch(mapper, name, full[name] || full["*"])
		if err != nil {
			return nil, err
		}
		c.resources = append(c.resources, w)
	}
	return c, nil
}

func (c *Controller) watch(mapper meta.RESTMapper, name string, full bool) (watched, error) {
	gvr, err := mapper.ResourceFor(schema.GroupVersionResource{Resource: name})
	if err != nil {
		return watched{}, fmt.Errorf("resource %q: %w", name, err)
	}
	gvk, err := mapper.KindFor(gvr)
	if err != nil {
		return watched{}, fmt.Errorf("resource %q: %w", name, err)
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return watched{}, fmt.Errorf("resource %q: %w", name, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameRoot {
		if !c.opts.ClusterScoped {
			return watched{}, fmt.Errorf("resource %q is cluster-scoped; allow it with --janitor-cluster-scoped", name)
		}
		if c.namespace != "" {
			return watched{}, fmt.Errorf("resource %q is cluster-scoped and cannot be watched in one namespace (--namespace)", name)
		}
	}
	w := watched{name: gvr.Resource, gvr: gvr, gvk: gvk, full: full}
	if full {
		inf := c.dynFactory.ForResource(gvr)
		inf.Informer()
		w.lister = inf.Lister()
	} else {
		inf := c.metaFactory.ForResource(gvr)
		inf.Informer()
		w.lister = inf.Lister()
	}
	return w, nil
}

// Start starts the janitor's informers for as long as run lasts and
// reports whether they synced before sync ended.
func (c *Controller) Start(run, sync context.Context) bool {
	c.dynFactory.Start(run.Done())
	c.metaFactory.Start(run.Done())
	for _, ok := range c.dynFactory.WaitForCacheSync(sync.Done()) {
		if !ok {
			return false
		}
	}
	for _, ok := range c.metaFactory.WaitForCacheSync(sync.Done()) {
		if !ok {
			return false
		}
	}
	return true
}

// Name identifies the controller.
func (c *Controller) Name() string { return Name }

// candidate is an object with an expiry.
type candidate struct {
	res     watched
	obj     object
	expires time.Time
	why     string
}

// Pass runs one pass and returns what it did (or would do in dry-run).
func (c *Controller) Pass(ctx context.Context) ([]string, error) {
	start := time.Now()
	defer func() { c.metrics.passSeconds.Observe(time.Since(start).Seconds()) }()
	now := c.clock.Now()
	mounted, err := c.mountedClaims()
	if err != nil {
		return nil, err
	}
	var cands []candidate
	for _, w := range c.resources {
		objs, err := w.lister.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing %s, %w", w.name, err)
		}
		for _, o := range objs {
			u, ok := o.(object)
			if !ok || !c.inScope(w, u) {
				continue
			}
			if cand, ok := c.evaluate(w, u, mounted); ok {
				cands = append(cands, cand)
			}
		}
	}
	// Longest-expired first, so caps delay the newest, not the oldest.
	sort.Slice(cands, func(i, j int) bool { return cands[i].expires.Before(cands[j].expires) })
	var actions []string
	var errs []error
	deleted := 0
	for _, cand := range cands {
		a, _, err := c.act(ctx, now, cand, &deleted)
		if err != nil {
			errs = append(errs, err)
		}
		if a != "" {
			actions = append(actions, a)
		}
	}
	return actions, errors.Join(errs...)
}

// inScope applies the namespace filters; namespaces themselves are matched
// by name.
func (c *Controller) inScope(w watched, u object) bool {
	ns := u.GetNamespace()
	if w.gvr.Resource == "namespaces" && w.gvr.Group == "" {
		ns = u.GetName()
	}
	if u.GetDeletionTimestamp() != nil {
		return false
	}
	for _, ex := range c.opts.ExcludeNamespaces {
		if ns == ex {
			return false
		}
	}
	if len(c.opts.IncludeNamespaces) == 0 || ns == "" {
		return true
	}
	for _, in := range c.opts.IncludeNamespaces {
		if ns == in {
			return true
		}
	}
	return false
}

// evaluate finds the object's expiry: its annotations first, else the
// first matching rule.
func (c *Controller) evaluate(w watched, u object, mounted map[string]bool) (candidate, bool) {
	created := u.GetCreationTimestamp().Time
	at, set, err := expiry(u.GetAnnotations(), created)
	if err != nil {
		c.warn(w, u, err.Error())
		return candidate{}, false
	}
	if set {
		return candidate{res: w, obj: u, expires: at, why: "annotation"}, true
	}
	if _, ok := u.GetAnnotations()[AnnotationTTL]; ok {
		return candidate{}, false // ttl: forever
	}
	full, isFull := u.(*unstructured.Unstructured)
	for _, r := range c.opts.Rules {
		if !isFull || !r.applies(w.name) {
			continue
		}
		facts := map[string]any{}
		if w.name == "persistentvolumeclaims" && mounted != nil {
			facts["pvcIsNotMounted"] = !mounted[u.GetNamespace()+"/"+u.GetName()]
		}
		ok, err := r.Matches(full.Object, w.name, facts)
		if err != nil {
			c.log.Debug("rule did not evaluate", "object", key(w, u), "err", err)
			continue
		}
		if ok {
			if r.TTL == Forever {
				return candidate{}, false
			}
			return candidate{res: w, obj: u, expires: created.Add(r.TTL), why: "rule " + r.ID}, true
		}
	}
	return candidate{}, false
}

// act notifies or deletes one candidate as its time requires.
func (c *Controller) act(ctx context.Context, now time.Time, cand candidate, deleted *int) (string, bool, error) {
	u := cand.obj
	k := key(cand.res, u)
	if now.Before(cand.expires.Add(-c.opts.NotifyBefore)) {
		return "", false, nil
	}
	notified, hasNotice := noticeTime(u)
	if c.dryRun && !hasNotice && !now.Before(cand.expires) {
		// A preview assumes the notice went out on time.
		notified, hasNotice = cand.expires.Add(-c.opts.NotifyBefore), true
	}
	if c.opts.NotifyBefore > 0 && !hasNotice {
		return c.notify(ctx, now, cand)
	}
	if now.Before(cand.expires) {
		return "", false, nil
	}
	if c.opts.NotifyBefore > 0 && now.Before(notified.Add(c.opts.NotifyBefore)) {
		return "", false, nil // the notice has not had its full time yet
	}
	if *deleted >= c.opts.MaxDeletionsPerPass || !c.limiter.AllowN(c.clock.Now(), 1) {
		c.metrics.deferred.WithLabelValues(cand.res.name).Inc()
		c.log.Info("deletion deferred by the cap or rate limit", "object", k)
		return "", false, nil
	}
	*deleted++
	msg := fmt.Sprintf("delete %s (%s, expired %s)", k, cand.why, cand.expires.UTC().Format(time.RFC3339))
	if c.dryRun {
		c.metrics.deletions.WithLabelValues(cand.res.name, "true").Inc()
		c.log.Info("dry-run: would delete", "object", k, "reason", cand.why)
		return msg, true, nil
	}
	uid := u.GetUID()
	policy := metav1.DeletePropagationBackground
	err := c.dynamic.Resource(cand.res.gvr).Namespace(u.GetNamespace()).Delete(ctx, u.GetName(),
		metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Already gone (the cache lags) or re-created under the same name
		// (the UID precondition failed): nothing was deleted.
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("deleting %s, %w", k, err)
	}
	c.metrics.deletions.WithLabelValues(cand.res.name, "false").Inc()
	c.log.Info("deleted", "object", k, "reason", cand.why)
	c.recorder.Eventf(ref(cand.res, u), corev1.EventTypeNormal, "Deleted", "Deleted by the janitor (%s, expired %s)", cand.why, cand.expires.UTC().Format(time.RFC3339))
	return msg, true, nil
}

func (c *Controller) notify(ctx context.Context, now time.Time, cand candidate) (string, bool, error) {
	u := cand.obj
	k := key(cand.res, u)
	deleteAt := cand.expires
	if earliest := now.Add(c.opts.NotifyBefore); earliest.After(deleteAt) {
		deleteAt = earliest
	}
	msg := fmt.Sprintf("notify %s: deletion at %s (%s)", k, deleteAt.UTC().Format(time.RFC3339), cand.why)
	if c.dryRun {
		c.metrics.notifications.WithLabelValues(cand.res.name, "true").Inc()
		return msg, false, nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationNotifiedAt, now.UTC().Format(time.RFC3339))
	_, err := c.dynamic.Resource(cand.res.gvr).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("annotating %s, %w", k, err)
	}
	c.metrics.notifications.WithLabelValues(cand.res.name, "false").Inc()
	c.recorder.Eventf(ref(cand.res, u), corev1.EventTypeWarning, "DeleteScheduled", "The janitor will delete this object at %s (%s)", deleteAt.UTC().Format(time.RFC3339), cand.why)
	return msg, false, nil
}

// noticeTime reads the notified-at annotation; a value that does not parse
// counts as no notice, so a fresh one is sent (the janitor owns it).
func noticeTime(u object) (time.Time, bool) {
	v, ok := u.GetAnnotations()[AnnotationNotifiedAt]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// mountedClaims returns "namespace/claim" for every PVC some pod mounts,
// or nil when no rule needs it.
func (c *Controller) mountedClaims() (map[string]bool, error) {
	if c.pods == nil {
		return nil, nil
	}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing pods, %w", err)
	}
	out := map[string]bool{}
	for _, p := range pods {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				out[p.Namespace+"/"+v.PersistentVolumeClaim.ClaimName] = true
			}
		}
	}
	return out, nil
}

func (c *Controller) warn(w watched, u object, msg string) {
	// Once per object version: a broken TTL seen every pass must not turn
	// an idle pass into an event write.
	if _, seen := c.warned.LoadOrStore(string(u.GetUID())+"/"+u.GetResourceVersion(), true); seen {
		return
	}
	c.metrics.invalid.Inc()
	c.log.Warn("not acting on object", "object", key(w, u), "err", msg)
	if !c.dryRun {
		c.recorder.Event(ref(w, u), corev1.EventTypeWarning, "InvalidTTL", msg+"; the janitor will never delete this object until it is fixed")
	}
}

// ref names the object for events; a metadata-only object does not carry
// its own kind.
func ref(w watched, u object) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		APIVersion: w.gvk.GroupVersion().String(), Kind: w.gvk.Kind,
		Namespace: u.GetNamespace(), Name: u.GetName(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion(),
	}
}

func key(w watched, u object) string {
	if u.GetNamespace() == "" {
		return w.name + " " + u.GetName()
	}
	return w.name + " " + u.GetNamespace() + "/" + u.GetName()
}
