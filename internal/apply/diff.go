package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/render"
)

// DiffResult summarizes a Diff.
type DiffResult struct {
	// Changed lists objects apply would create or change.
	Changed []string
	// Pruned lists objects apply would prune.
	Pruned []string
	// Deleted lists objects deletions.yaml would delete.
	Deleted []string
	// Failed lists objects the dry-run rejected.
	Failed []ObjectError
}

// Diff writes a unified diff between the live objects and what apply would
// make of them (a server-side dry-run apply), plus the objects apply would
// prune or delete. It changes nothing.
func (a *Applier) Diff(ctx context.Context, res *render.Result, w io.Writer) (*DiffResult, error) {
	out := &DiffResult{}
	inv, err := a.readInventory(ctx, res.Cluster.ID)
	if err != nil {
		return nil, err
	}
	objs := a.prepare(res)
	crds, namespaces, rest := split(objs)
	pendingNS := map[string]bool{}
	for _, group := range [][]object{crds, namespaces, rest} {
		for _, o := range group {
			if err := a.diffOne(ctx, o.u, pendingNS, w, out); err != nil {
				out.Failed = append(out.Failed, ObjectError{Object: refOf(o.u).String(), Err: err})
				fmt.Fprintf(w, "# %s: dry-run failed: %v\n", refOf(o.u), err)
			}
		}
	}
	if inv != nil {
		current := map[string]bool{}
		for _, o := range objs {
			current[refOf(o.u).key()] = true
		}
		for _, r := range inv.stale(current) {
			if live := a.get(ctx, r); live != nil && ownedBy(live, res.Cluster.ID) {
				out.Pruned = append(out.Pruned, r.String())
				fmt.Fprintf(w, "# prune %s\n", r)
			}
		}
	}
	for _, d := range append(append([]render.Deletion{}, res.Deletions.Before...), res.Deletions.After...) {
		if a.get(ctx, ref(d)) != nil {
			out.Deleted = append(out.Deleted, ref(d).String())
			fmt.Fprintf(w, "# delete %s (deletions.yaml)\n", ref(d))
		}
	}
	return out, nil
}

func (a *Applier) get(ctx context.Context, r ref) *unstructured.Unstructured {
	ri, _, err := a.resource(ctx, r.APIVersion, r.Kind, r.Namespace)
	if err != nil {
		return nil
	}
	u, err := ri.Get(ctx, r.Name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
}

// diffOne diffs one object. Objects whose namespace or CRD apply would
// create first cannot be dry-run yet; they are shown as new.
func (a *Applier) diffOne(ctx context.Context, u *unstructured.Unstructured, pendingNS map[string]bool, w io.Writer, out *DiffResult) error {
	r := refOf(u)
	ri, namespaced, err := a.resource(ctx, u.GetAPIVersion(), u.GetKind(), u.GetNamespace())
	if err != nil {
		out.Changed = append(out.Changed, r.String())
		return writeDiff(w, r, nil, u)
	}
	if namespaced && u.GetNamespace() == "" {
		u.SetNamespace(metav1.NamespaceDefault)
	}
	live, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		live = nil
	}
	if namespaced && pendingNS[u.GetNamespace()] {
		out.Changed = append(out.Changed, r.String())
		return writeDiff(w, r, nil, u)
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return fmt.Errorf("encoding, %w", err)
	}
	force := true
	after, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager: FieldManager, Force: &force, DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return err
	}
	if u.GetKind() == "Namespace" && live == nil {
		pendingNS[u.GetName()] = true
	}
	if live != nil && !changed(live, after) {
		return nil
	}
	out.Changed = append(out.Changed, r.String())
	return writeDiff(w, r, live, after)
}

// changed compares two versions of an object without the fields the
// server changes on every write.
func changed(before, after *unstructured.Unstructured) bool {
	return !reflect.DeepEqual(clean(before), clean(after))
}

func clean(u *unstructured.Unstructured) map[string]any {
	if u == nil {
		return nil
	}
	c := u.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	delete(c.Object, "status")
	return c.Object
}

func writeDiff(w io.Writer, r ref, before, after *unstructured.Unstructured) error {
	a, err := toYAML(clean(before))
	if err != nil {
		return err
	}
	b, err := toYAML(clean(after))
	if err != nil {
		return err
	}
	from := "live/" + r.String()
	if before == nil {
		from = "/dev/null"
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: from, ToFile: "bosun/" + r.String(), Context: 3,
	})
	if err != nil {
		return fmt.Errorf("diffing %s, %w", r, err)
	}
	_, err = io.WriteString(w, text)
	return err
}

func toYAML(m map[string]any) (string, error) {
	if m == nil {
		return "", nil
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding, %w", err)
	}
	return string(b), nil
}
