package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/clock"
)

// FieldManager is the server-side apply field manager of restores.
const FieldManager = "bosun-restore"

// listPage bounds one list request.
const listPage = 250

// Cluster is how a backup reaches a cluster.
type Cluster struct {
	// ID is the fleet cluster ID.
	ID string
	// Client reads and applies objects.
	Client dynamic.Interface
	// Mapper resolves resource names and kinds.
	Mapper meta.RESTMapper
}

// CreateOptions configure Create.
type CreateOptions struct {
	// Resources besides secrets, as resource[.group].
	Resources []string
	// Recipients are age public keys (age1...); at least one.
	Recipients []string
	// Clock stamps the backup (default real time).
	Clock clock.PassiveClock
}

// Create exports the cluster's Secrets and the chosen resources, encrypts
// them to the recipients and writes the backup to store, manifest last.
// Service-account token Secrets are left out: they belong to a service
// account of this cluster and are re-issued in a new one.
func Create(ctx context.Context, cl Cluster, store Store, opts CreateOptions) (Manifest, error) {
	if len(opts.Recipients) == 0 {
		return Manifest{}, errors.New("no recipients: list age public keys under backup.recipients in fleet.yaml")
	}
	recipients := make([]age.Recipient, 0, len(opts.Recipients))
	for i, r := range opts.Recipients {
		rc, err := age.ParseX25519Recipient(r)
		if err != nil {
			return Manifest{}, fmt.Errorf("recipient %d %q: expected an age public key (age1...): %w", i, r, err)
		}
		recipients = append(recipients, rc)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	resources := append([]string{"secrets"}, opts.Resources...)
	resources = dedupe(resources)
	var objects []Object
	for _, res := range resources {
		got, err := export(ctx, cl, res)
		if err != nil {
			return Manifest{}, err
		}
		objects = append(objects, got...)
	}
	sealed, refs, err := seal(objects, recipients)
	if err != nil {
		return Manifest{}, err
	}
	created := opts.Clock.Now().UTC().Truncate(time.Second)
	m := Manifest{
		Format: FormatVersion, Cluster: cl.ID, ID: created.Format(idLayout), Created: created,
		Resources: resources, Recipients: append([]string(nil), opts.Recipients...), Objects: refs,
		ArchiveSize: len(sealed),
	}
	m.ArchiveSHA256 = sha256Hex(sealed)
	if err := store.Put(ctx, m.Dir()+"/"+ArchiveFile, sealed); err != nil {
		return Manifest{}, err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if err := store.Put(ctx, m.Dir()+"/"+ManifestFile, data); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		x = strings.TrimSpace(x)
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// resolve turns resource[.group] into the preferred version's resource.
func resolve(mapper meta.RESTMapper, res string) (schema.GroupVersionResource, string, error) {
	gr := schema.ParseGroupResource(res)
	gvr, err := mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return gvr, "", fmt.Errorf("resource %q: not served by the cluster (expected resource[.group], e.g. configmaps or deployments.apps): %w", res, err)
	}
	kind, err := mapper.KindFor(gvr)
	if err != nil {
		return gvr, "", fmt.Errorf("resource %q: %w", res, err)
	}
	return gvr, kind.Kind, nil
}

func export(ctx context.Context, cl Cluster, res string) ([]Object, error) {
	gvr, kind, err := resolve(cl.Mapper, res)
	if err != nil {
		return nil, err
	}
	var out []Object
	opts := metav1.ListOptions{Limit: listPage}
	for {
		list, err := cl.Client.Resource(gvr).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", res, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			if gvr.Resource == "secrets" && gvr.Group == "" {
				if t, _, _ := unstructured.NestedString(u.Object, "type"); t == string(corev1.SecretTypeServiceAccountToken) {
					continue
				}
			}
			c := Clean(u)
			c.SetAPIVersion(gvr.GroupVersion().String())
			c.SetKind(kind)
			out = append(out, Object{
				Ref: ObjectRef{Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource, Kind: kind,
					Namespace: u.GetNamespace(), Name: u.GetName()},
				Object: c,
			})
		}
		if list.GetContinue() == "" {
			return out, nil
		}
		opts.Continue = list.GetContinue()
	}
}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Force overwrites objects changed after the backup was taken.
	Force bool
	// DryRun asks the API server to validate without persisting.
	DryRun bool
	// Out receives one line per object (optional).
	Out io.Writer
}

// RestoreResult says what a restore did, object by object.
type RestoreResult struct {
	Applied []ObjectRef
	// Skipped are objects changed in the cluster after the backup was
	// taken, left alone without Force.
	Skipped []ObjectRef
	// Failed maps an object to its error.
	Failed map[string]error
}

// Err is nil when every object was applied or deliberately skipped.
func (r RestoreResult) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	keys := make([]string, 0, len(r.Failed))
	for k := range r.Failed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errs := make([]error, 0, len(keys))
	for _, k := range keys {
		errs = append(errs, fmt.Errorf("%s: %w", k, r.Failed[k]))
	}
	return fmt.Errorf("%d object(s) not restored: %w", len(keys), errors.Join(errs...))
}

// Restore applies the backup's objects to the cluster with server-side
// apply (field manager bosun-restore), creating missing namespaces
// first. An object that exists and was written after the backup was
// taken is newer than the backup and is skipped unless opts.Force.
func Restore(ctx context.Context, cl Cluster, m Manifest, objects []Object, opts RestoreOptions) RestoreResult {
	res := RestoreResult{Failed: map[string]error{}}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	var dryRun []string
	if opts.DryRun {
		dryRun = []string{metav1.DryRunAll}
	}
	namespaces := map[string]bool{}
	for _, o := range objects {
		if ns := o.Ref.Namespace; ns != "" && !namespaces[ns] {
			namespaces[ns] = true
			if err := ensureNamespace(ctx, cl.Client, ns, dryRun); err != nil {
				res.Failed["namespace "+ns] = err
			}
		}
	}
	for _, o := range objects {
		rc := cl.Client.Resource(o.Ref.GVR()).Namespace(o.Ref.Namespace)
		live, err := rc.Get(ctx, o.Ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			res.Failed[o.Ref.String()] = err
			continue
		case !opts.Force:
			if changed := lastChange(live); changed.After(m.Created) {
				res.Skipped = append(res.Skipped, o.Ref)
				fmt.Fprintf(out, "skipped %s: changed at %s, after the backup (%s); --force overwrites\n",
					o.Ref, changed.Format(time.RFC3339), m.Created.Format(time.RFC3339))
				continue
			}
		}
		if _, err := rc.Apply(ctx, o.Ref.Name, o.Object, metav1.ApplyOptions{FieldManager: FieldManager, Force: true, DryRun: dryRun}); err != nil {
			res.Failed[o.Ref.String()] = err
			fmt.Fprintf(out, "failed  %s: %v\n", o.Ref, err)
			continue
		}
		res.Applied = append(res.Applied, o.Ref)
		fmt.Fprintf(out, "applied %s\n", o.Ref)
	}
	return res
}

var namespaceGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

func ensureNamespace(ctx context.Context, c dynamic.Interface, ns string, dryRun []string) error {
	_, err := c.Resource(namespaceGVR).Get(ctx, ns, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(ns)
	_, err = c.Resource(namespaceGVR).Create(ctx, u, metav1.CreateOptions{DryRun: dryRun})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Difference is an object that is not in the cluster as it is in the
// backup.
type Difference struct {
	Ref    ObjectRef
	Reason string
}

func (d Difference) String() string { return d.Ref.String() + ": " + d.Reason }

// Compare reads every backed-up object from the cluster and reports those
// missing or different. An object matches when everything the backup has
// besides metadata and status (data, spec, ...) is in the live object
// with equal values, and its labels and annotations are there; fields the
// API server adds by defaulting do not count.
func Compare(ctx context.Context, c dynamic.Interface, objects []Object) []Difference {
	var out []Difference
	for _, o := range objects {
		live, err := c.Resource(o.Ref.GVR()).Namespace(o.Ref.Namespace).Get(ctx, o.Ref.Name, metav1.GetOptions{})
		if err != nil {
			reason := err.Error()
			if apierrors.IsNotFound(err) {
				reason = "missing"
			}
			out = append(out, Difference{Ref: o.Ref, Reason: reason})
			continue
		}
		for k, want := range o.Object.Object {
			if k == "metadata" || k == "status" || k == "apiVersion" || k == "kind" {
				continue
			}
			if !contains(live.Object[k], want) {
				out = append(out, Difference{Ref: o.Ref, Reason: k + " differs"})
			}
		}
		for k, v := range o.Object.GetLabels() {
			if live.GetLabels()[k] != v {
				out = append(out, Difference{Ref: o.Ref, Reason: "label " + k + " differs"})
			}
		}
		for k, v := range o.Object.GetAnnotations() {
			if live.GetAnnotations()[k] != v {
				out = append(out, Difference{Ref: o.Ref, Reason: "annotation " + k + " differs"})
			}
		}
	}
	return out
}

// contains says whether got has everything want has: maps by key
// (extra keys in got are defaults), lists element by element with equal
// length, scalars equal.
func contains(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !contains(g[k], wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !contains(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(normalizeNumber(got), normalizeNumber(want))
}

// normalizeNumber makes int64 and float64 forms of one JSON number equal.
func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int:
		return float64(n)
	}
	return v
}

// NewCluster builds the clients of a cluster from its client config; the
// resource mapper reads the cluster's discovery documents once, lazily.
func NewCluster(id string, cfg *rest.Config) (Cluster, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return Cluster{}, fmt.Errorf("cluster %s: %w", id, err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return Cluster{}, fmt.Errorf("cluster %s: %w", id, err)
	}
	return Cluster{ID: id, Client: dyn, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}, nil
}

// ReadIdentities reads age identities (AGE-SECRET-KEY-1...) from a file,
// one per line, # comments allowed.
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the identity file the user named
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: expected age identities (AGE-SECRET-KEY-1...): %w", path, err)
	}
	return ids, nil
}
