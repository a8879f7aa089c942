// Package apply brings a cluster to its rendered manifests with server-side
// apply (field manager "bosun"): CRDs first (waiting until established),
// then namespaces, then everything else; objects Bosun applied before and no
// longer renders are pruned, tracked by labels and an inventory; deletions
// from deletions.yaml are honoured. Diff shows what Apply would change, by
// server-side dry-run. Implements L01 and L02.
package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/bosun-platform/bosun/internal/render"
)

// Labels and names Bosun uses to track what it applied.
const (
	// FieldManager is the server-side apply field manager.
	FieldManager = "bosun"
	// LabelManagedBy is set to "bosun" on every applied object.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelCluster is set to the cluster ID on every applied object.
	LabelCluster = "bosun.dev/cluster"
	// AnnotationComponent names the component an object came from.
	AnnotationComponent = "bosun.dev/component"
	// InventoryNamespace and InventoryName locate the inventory ConfigMap.
	InventoryNamespace = "kube-system"
	// InventoryName is the name of the inventory ConfigMap.
	InventoryName = "bosun-inventory"
)

// Applier applies rendered clusters to one API server.
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	out    io.Writer
	// pendingKinds are kinds whose CRDs a dry-run would create: objects of
	// those kinds cannot be dry-run yet and count as created.
	pendingKinds map[schema.GroupKind]bool
	// CRDTimeout bounds the wait for CRDs to become established.
	CRDTimeout time.Duration
}

// New returns an Applier for the API server of cfg; progress goes to out.
func New(cfg *rest.Config, out io.Writer) (*Applier, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building dynamic client, %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building discovery client, %w", err)
	}
	if out == nil {
		out = io.Discard
	}
	return &Applier{
		dyn:        dyn,
		mapper:     restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		out:        out,
		CRDTimeout: time.Minute,
	}, nil
}

// Options tune one Apply.
type Options struct {
	// DryRun sends every change as a server-side dry-run and changes nothing.
	DryRun bool
}

// ObjectError is one object that failed, with the API's message.
type ObjectError struct {
	// Object is kind/namespace/name.
	Object string
	// Err is the API's error.
	Err error
}

// Result summarizes one Apply.
type Result struct {
	// Created, Configured and Unchanged count applied objects by outcome.
	Created, Configured, Unchanged int
	// Pruned lists objects deleted because they are no longer rendered.
	Pruned []string
	// Deleted lists objects deleted by deletions.yaml.
	Deleted []string
	// Failed lists objects that could not be applied, pruned or deleted.
	Failed []ObjectError
}

// Err returns an error naming every failed object, or nil.
func (r *Result) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	msgs := make([]string, len(r.Failed))
	for i, f := range r.Failed {
		msgs[i] = fmt.Sprintf("%s: %v", f.Object, f.Err)
	}
	return fmt.Errorf("%d object(s) failed:\n  %s", len(r.Failed), strings.Join(msgs, "\n  "))
}

// ref identifies an object across versions of its API.
type ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// String formats the reference as Kind/namespace/name.
func (r ref) String() string {
	if r.Namespace != "" {
		return fmt.Sprintf("%s/%s/%s", r.Kind, r.Namespace, r.Name)
	}
	return fmt.Sprintf("%s/%s", r.Kind, r.Name)
}

// key ignores the API version: moving an object to a new version is not
// a removal.
func (r ref) key() string {
	gv, _ := schema.ParseGroupVersion(r.APIVersion)
	return fmt.Sprintf("%s/%s/%s/%s", gv.Group, r.Kind, r.Namespace, r.Name)
}

func refOf(u *unstructured.Unstructured) ref {
	return ref{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Apply brings the cluster to res. Objects that fail are reported in the
// result and the rest still applied; the returned error is for failures
// that stop the whole run (no API server, a foreign inventory).
func (a *Applier) Apply(ctx context.Context, res *render.Result, opts Options) (*Result, error) {
	out := &Result{}
	inv, err := a.readInventory(ctx, res.Cluster.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range res.Deletions.Before {
		a.deleteOne(ctx, ref(d), opts.DryRun, "delete (before)", out)
	}
	objs := a.prepare(res)
	crds, namespaces, rest := split(objs)
	a.pendingKinds = map[schema.GroupKind]bool{}
	for _, c := range crds {
		group, _, _ := unstructured.NestedString(c.u.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(c.u.Object, "spec", "names", "kind")
		a.pendingKinds[schema.GroupKind{Group: group, Kind: kind}] = true
	}
	a.applyAll(ctx, crds, opts, out)
	if len(crds) > 0 && !opts.DryRun {
		a.waitEstablished(ctx, crds, out)
	}
	a.mapper.Reset()
	a.applyAll(ctx, namespaces, opts, out)
	a.applyAll(ctx, rest, opts, out)
	a.prune(ctx, res.Cluster.ID, inv, objs, opts.DryRun, out)
	for _, d := range res.Deletions.After {
		a.deleteOne(ctx, ref(d), opts.DryRun, "delete (after)", out)
	}
	if !opts.DryRun {
		if err := a.writeInventory(ctx, res, objs); err != nil {
			return out, err
		}
	}
	verb := "applied"
	if opts.DryRun {
		verb = "dry-run"
	}
	fmt.Fprintf(a.out, "%s %s version %s: %d created, %d configured, %d unchanged, %d pruned, %d deleted, %d failed\n",
		verb, res.Cluster.ID, res.Version, out.Created, out.Configured, out.Unchanged, len(out.Pruned), len(out.Deleted), len(out.Failed))
	return out, nil
}

type object struct {
	component string
	u         *unstructured.Unstructured
}

// prepare labels copies of the rendered objects with Bosun's ownership.
func (a *Applier) prepare(res *render.Result) []object {
	objs := make([]object, 0, len(res.Objects))
	for _, o := range res.Objects {
		u := o.Object.DeepCopy()
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelManagedBy] = FieldManager
		labels[LabelCluster] = res.Cluster.ID
		u.SetLabels(labels)
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationComponent] = o.Component
		u.SetAnnotations(ann)
		objs = append(objs, object{component: o.Component, u: u})
	}
	return objs
}

func split(objs []object) (crds, namespaces, rest []object) {
	for _, o := range objs {
		switch o.u.GetKind() {
		case "CustomResourceDefinition":
			crds = append(crds, o)
		case "Namespace":
			namespaces = append(namespaces, o)
		default:
			rest = append(rest, o)
		}
	}
	return crds, namespaces, rest
}

// applyAll applies objs in order and prints one progress line per component.
func (a *Applier) applyAll(ctx context.Context, objs []object, opts Options, out *Result) {
	type tally struct{ created, configured, unchanged, failed int }
	var order []string
	counts := map[string]*tally{}
	for _, o := range objs {
		t, ok := counts[o.component]
		if !ok {
			t = &tally{}
			counts[o.component] = t
			order = append(order, o.component)
		}
		outcome, err := a.applyOne(ctx, o.u, opts.DryRun)
		switch {
		case err != nil:
			t.failed++
			out.Failed = append(out.Failed, ObjectError{Object: refOf(o.u).String(), Err: err})
			fmt.Fprintf(a.out, "  %s: %s failed: %v\n", o.component, refOf(o.u), err)
		case outcome == "created":
			t.created++
			out.Created++
		case outcome == "configured":
			t.configured++
			out.Configured++
		default:
			t.unchanged++
			out.Unchanged++
		}
	}
	for _, c := range order {
		t := counts[c]
		fmt.Fprintf(a.out, "component %s: %d created, %d configured, %d unchanged, %d failed\n", c, t.created, t.configured, t.unchanged, t.failed)
	}
}

func (a *Applier) resource(ctx context.Context, apiVersion, kind, namespace string) (dynamic.ResourceInterface, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, false, fmt.Errorf("apiVersion %q, %w", apiVersion, err)
	}
	m, err := a.mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: kind}, gv.Version)
	if err != nil {
		return nil, false, fmt.Errorf("no API for %s %s (a missing CRD?), %w", apiVersion, kind, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if namespace == "" {
			namespace = metav1.NamespaceDefault
		}
		return a.dyn.Resource(m.Resource).Namespace(namespace), true, nil
	}
	return a.dyn.Resource(m.Resource), false, nil
}

// applyOne server-side applies u and says whether it was created,
// configured or unchanged.
func (a *Applier) applyOne(ctx context.Context, u *unstructured.Unstructured, dryRun bool) (string, error) {
	ri, namespaced, err := a.resource(ctx, u.GetAPIVersion(), u.GetKind(), u.GetNamespace())
	if err != nil {
		if dryRun && a.pendingKinds[u.GroupVersionKind().GroupKind()] {
			return "created", nil
		}
		return "", err
	}
	if namespaced && u.GetNamespace() == "" {
		u.SetNamespace(metav1.NamespaceDefault)
	}
	before, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return "", fmt.Errorf("encoding, %w", err)
	}
	force := true
	po := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		po.DryRun = []string{metav1.DryRunAll}
	}
	after, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, po)
	if dryRun && namespaceMissing(err) {
		// A namespace this run would create first; the object would be new.
		return "created", nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case before == nil:
		return "created", nil
	case before.GetResourceVersion() != after.GetResourceVersion() || (dryRun && changed(before, after)):
		return "configured", nil
	default:
		return "unchanged", nil
	}
}

// waitEstablished waits until every applied CRD reports Established.
func (a *Applier) waitEstablished(ctx context.Context, crds []object, out *Result) {
	ri := a.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	deadline := time.Now().Add(a.CRDTimeout)
	for _, c := range crds {
		for {
			u, err := ri.Get(ctx, c.u.GetName(), metav1.GetOptions{})
			if err == nil && established(u) {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				out.Failed = append(out.Failed, ObjectError{Object: refOf(c.u).String(), Err: fmt.Errorf("not established after %s", a.CRDTimeout)})
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// deleteOne deletes r if it exists.
func (a *Applier) deleteOne(ctx context.Context, r ref, dryRun bool, what string, out *Result) bool {
	ri, _, err := a.resource(ctx, r.APIVersion, r.Kind, r.Namespace)
	if err != nil {
		if meta.IsNoMatchError(err) || strings.Contains(err.Error(), "no matches for kind") {
			return false
		}
		out.Failed = append(out.Failed, ObjectError{Object: r.String(), Err: err})
		return false
	}
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err = ri.Delete(ctx, r.Name, opts)
	switch {
	case apierrors.IsNotFound(err):
		return false
	case err != nil:
		out.Failed = append(out.Failed, ObjectError{Object: r.String(), Err: err})
		fmt.Fprintf(a.out, "  %s %s failed: %v\n", what, r, err)
		return false
	}
	if what != "prune" {
		out.Deleted = append(out.Deleted, r.String())
	}
	fmt.Fprintf(a.out, "  %s %s\n", what, r)
	return true
}

// prune deletes what the previous apply recorded and this render lacks,
// but only objects that still carry Bosun's labels for this cluster:
// Bosun never deletes what it did not create.
func (a *Applier) prune(ctx context.Context, cluster string, inv *inventory, objs []object, dryRun bool, out *Result) {
	if inv == nil {
		return
	}
	current := map[string]bool{}
	for _, o := range objs {
		r := refOf(o.u)
		current[r.key()] = true
	}
	for _, r := range inv.stale(current) {
		ri, _, err := a.resource(ctx, r.APIVersion, r.Kind, r.Namespace)
		if err != nil {
			continue // the API is gone, and with it the object
		}
		live, err := ri.Get(ctx, r.Name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		if !ownedBy(live, cluster) {
			fmt.Fprintf(a.out, "  not pruning %s: it lacks %s=%s and %s=%s\n", r, LabelManagedBy, FieldManager, LabelCluster, cluster)
			continue
		}
		if a.deleteOne(ctx, r, dryRun, "prune", out) {
			out.Pruned = append(out.Pruned, r.String())
		}
	}
}

func namespaceMissing(err error) bool {
	if !apierrors.IsNotFound(err) {
		return false
	}
	var status apierrors.APIStatus
	if se, ok := err.(apierrors.APIStatus); ok {
		status = se
	}
	return status != nil && status.Status().Details != nil && status.Status().Details.Kind == "namespaces"
}

func ownedBy(u *unstructured.Unstructured, cluster string) bool {
	l := u.GetLabels()
	return l[LabelManagedBy] == FieldManager && l[LabelCluster] == cluster
}

func sortRefs(refs []ref) {
	sort.Slice(refs, func(i, j int) bool { return refs[i].key() < refs[j].key() })
}
