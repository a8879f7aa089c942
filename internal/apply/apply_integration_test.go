//go:build integration

package apply

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

const clusterFile = `id: c1
environment: test
provider: local
region: local
kubernetesVersion: "1.33"
`

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.bosun.dev
spec:
  group: example.bosun.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

// renderFiles renders cluster c1 of a fleet made of files plus the cluster.
func renderFiles(t *testing.T, files map[string]string) *render.Result {
	t.Helper()
	fsys := fstest.MapFS{"clusters/c1.yaml": {Data: []byte(clusterFile)}}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	f, err := fleet.LoadFS(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func baseFiles(value string) map[string]string {
	return map[string]string{
		"manifests/crds/widgets.yaml": crd,
		// The Widget comes before its namespace and CRD in file order;
		// apply must still order CRDs, then namespaces, then the rest.
		"manifests/app/a-widget.yaml": "apiVersion: example.bosun.dev/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: bosun-apply\nspec:\n  size: 3\n",
		"manifests/app/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: bosun-apply
data:
  value: "` + value + `"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  namespace: bosun-apply
data: {a: b}
`,
		"manifests/ns/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bosun-apply\n",
	}
}

func newApplier(t *testing.T, out *bytes.Buffer) *Applier {
	t.Helper()
	a, err := New(testenv.Get(t).RESTConfig(), out)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func configMap(t *testing.T, name string) (*corev1.ConfigMap, error) {
	t.Helper()
	return testenv.Get(t).Client.CoreV1().ConfigMaps("bosun-apply").Get(context.Background(), name, metav1.GetOptions{})
}

// TestApplyLifecycle walks one cluster through apply, change, dry-run,
// diff, prune, deletions and failures. The steps share the API server's
// inventory, so they run in order.
func TestApplyLifecycle(t *testing.T) {
	ctx := context.Background()
	env := testenv.Get(t)
	var log bytes.Buffer
	a := newApplier(t, &log)

	resetInventory(t)
	// 0. A dry-run on an empty cluster creates nothing, not even the
	// namespace or CRD the other objects need, and fails nothing.
	res, err := a.Apply(ctx, renderFiles(t, baseFiles("one")), Options{DryRun: true})
	if err != nil || len(res.Failed) != 0 || res.Created != 5 {
		t.Fatalf("dry-run on an empty cluster: %+v, %v\n%s", res, err, log.String())
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, "bosun-apply", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run created the namespace: %v", err)
	}
	log.Reset()

	// 1. First apply: everything created, CRD established, labels and inventory set.
	res, err = a.Apply(ctx, renderFiles(t, baseFiles("one")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Created != 5 {
		t.Errorf("created %d, want 5\n%s", res.Created, log.String())
	}
	cm, err := configMap(t, "settings")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[LabelManagedBy] != "bosun" || cm.Labels[LabelCluster] != "c1" || cm.Annotations[AnnotationComponent] != "app" {
		t.Errorf("ownership labels: %v %v", cm.Labels, cm.Annotations)
	}
	managed := false
	for _, mf := range cm.ManagedFields {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			managed = true
		}
	}
	if !managed {
		t.Errorf("no server-side apply entry for manager %q: %+v", FieldManager, cm.ManagedFields)
	}
	widgets := schema.GroupVersionResource{Group: "example.bosun.dev", Version: "v1", Resource: "widgets"}
	if _, err := env.Dynamic.Resource(widgets).Namespace("bosun-apply").Get(ctx, "w", metav1.GetOptions{}); err != nil {
		t.Errorf("widget: %v", err)
	}
	if !strings.Contains(log.String(), "component app: 3 created") {
		t.Errorf("no progress line per component:\n%s", log.String())
	}

	// 2. Re-apply unchanged: nothing changes.
	res, err = a.Apply(ctx, renderFiles(t, baseFiles("one")), Options{})
	if err != nil || res.Unchanged != 5 || res.Configured+res.Created != 0 {
		t.Fatalf("re-apply: %+v, %v", res, err)
	}

	// 3. Dry-run of a change changes nothing but reports it.
	res, err = a.Apply(ctx, renderFiles(t, baseFiles("two")), Options{DryRun: true})
	if err != nil || res.Configured != 1 {
		t.Fatalf("dry-run: %+v, %v", res, err)
	}
	if cm, _ := configMap(t, "settings"); cm.Data["value"] != "one" {
		t.Errorf("dry-run changed the object: %v", cm.Data)
	}

	// 4. Diff shows the change, and nothing when there is none.
	var diff bytes.Buffer
	d, err := a.Diff(ctx, renderFiles(t, baseFiles("two")), &diff)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Changed) != 1 || !strings.Contains(diff.String(), `-  value: one`) || !strings.Contains(diff.String(), `+  value: two`) {
		t.Errorf("diff: %+v\n%s", d, diff.String())
	}
	diff.Reset()
	if d, err := a.Diff(ctx, renderFiles(t, baseFiles("one")), &diff); err != nil || len(d.Changed)+len(d.Pruned) != 0 {
		t.Errorf("diff of the applied state: %+v %v\n%s", d, err, diff.String())
	}

	// 5. Change and re-apply.
	if res, err = a.Apply(ctx, renderFiles(t, baseFiles("two")), Options{}); err != nil || res.Configured != 1 {
		t.Fatalf("change: %+v, %v", res, err)
	}
	if cm, _ := configMap(t, "settings"); cm.Data["value"] != "two" {
		t.Errorf("change not applied: %v", cm.Data)
	}

	// 6. A removed manifest is pruned; an object Bosun did not create is
	// never pruned, even when its name was in the inventory.
	if _, err := env.Client.CoreV1().ConfigMaps("bosun-apply").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "bosun-apply"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	files := baseFiles("two")
	files["manifests/app/config.yaml"] = strings.SplitN(files["manifests/app/config.yaml"], "---", 2)[0]
	files["manifests/app/adopted.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: adopted\n  namespace: bosun-apply\n"
	if res, err = a.Apply(ctx, renderFiles(t, files), Options{DryRun: true}); err != nil || len(res.Pruned) != 1 {
		t.Fatalf("dry-run prune: %+v, %v", res, err)
	}
	if _, err := configMap(t, "extra"); err != nil {
		t.Fatalf("a dry-run pruned for real: %v", err)
	}
	res, err = a.Apply(ctx, renderFiles(t, files), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 1 || res.Pruned[0] != "ConfigMap/bosun-apply/extra" {
		t.Errorf("pruned %v, want [ConfigMap/bosun-apply/extra]", res.Pruned)
	}
	if _, err := configMap(t, "extra"); !apierrors.IsNotFound(err) {
		t.Errorf("extra: want pruned, got %v", err)
	}
	// Someone takes "adopted" over: it loses Bosun's label.
	adopted, _ := configMap(t, "adopted")
	delete(adopted.Labels, LabelManagedBy)
	if _, err := env.Client.CoreV1().ConfigMaps("bosun-apply").Update(ctx, adopted, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	delete(files, "manifests/app/adopted.yaml")
	var pruneDiff bytes.Buffer
	if d, err := a.Diff(ctx, renderFiles(t, files), &pruneDiff); err != nil || len(d.Pruned) != 0 {
		t.Errorf("diff must not list an adopted object for pruning: %+v %v", d, err)
	}
	log.Reset()
	res, err = a.Apply(ctx, renderFiles(t, files), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := configMap(t, "adopted"); err != nil {
		t.Errorf("adopted object was pruned: %v\n%s", err, log.String())
	}
	if _, err := configMap(t, "foreign"); err != nil {
		t.Errorf("foreign object was touched: %v", err)
	}
	if len(res.Pruned) != 0 || !strings.Contains(log.String(), "not pruning ConfigMap/bosun-apply/adopted") {
		t.Errorf("pruned %v; want nothing and a note about adopted:\n%s", res.Pruned, log.String())
	}

	// 7. deletions.yaml deletes objects, even ones Bosun did not create.
	files["manifests/deletions.yaml"] = "before:\n  - {apiVersion: v1, kind: ConfigMap, namespace: bosun-apply, name: foreign}\nafter:\n  - {apiVersion: v1, kind: ConfigMap, namespace: bosun-apply, name: never-existed}\n"
	if res, err = a.Apply(ctx, renderFiles(t, files), Options{}); err != nil || len(res.Deleted) != 1 {
		t.Fatalf("deletions: %+v, %v", res, err)
	}
	if _, err := configMap(t, "foreign"); !apierrors.IsNotFound(err) {
		t.Errorf("foreign: want deleted, got %v", err)
	}

	// 8. A failed object is reported by kind/namespace/name with the API's
	// message, and the rest is still applied.
	files["manifests/app/bad.yaml"] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  namespace: bosun-apply\nspec:\n  ports: [{port: 0}]\n"
	files["manifests/app/later.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: later\n  namespace: bosun-apply\n"
	res, err = a.Apply(ctx, renderFiles(t, files), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Object != "Service/bosun-apply/bad" || !strings.Contains(res.Err().Error(), "Service/bosun-apply/bad: ") {
		t.Errorf("failed: %+v", res.Failed)
	}
	if _, err := configMap(t, "later"); err != nil {
		t.Errorf("objects after a failure were not applied: %v", err)
	}

	// 9. The inventory belongs to c1; applying another cluster here is refused.
	other := renderFiles(t, files)
	other.Cluster.ID = "c2"
	if _, err := a.Apply(ctx, other, Options{}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("applying c2 over c1's inventory: %v", err)
	}
}

func resetInventory(t *testing.T) {
	t.Helper()
	err := testenv.Get(t).Client.CoreV1().ConfigMaps(InventoryNamespace).Delete(context.Background(), InventoryName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// renderExampleCluster renders one cluster of the example fleet.
func renderExampleCluster(t *testing.T, cluster string) *render.Result {
	t.Helper()
	f, err := fleet.Load("../../examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(context.Background(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The example fleet's manifests are valid for a real API server: every
// object of local-staging applies, and a second apply changes nothing.
func TestApplyExampleFleet(t *testing.T) {
	resetInventory(t)
	t.Cleanup(func() { resetInventory(t) })
	res := renderExampleCluster(t, "local-staging")
	var log bytes.Buffer
	a := newApplier(t, &log)
	out, err := a.Apply(context.Background(), res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Err(); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if out.Created != len(res.Objects) {
		t.Errorf("created %d of %d objects\n%s", out.Created, len(res.Objects), log.String())
	}
	var diff bytes.Buffer
	d, err := a.Diff(context.Background(), res, &diff)
	if err != nil || len(d.Changed)+len(d.Pruned)+len(d.Failed) != 0 {
		t.Errorf("diff after apply: %+v %v\n%s", d, err, diff.String())
	}
}

// The example fleet's agent runs the overprovisioner under the fleet's own
// RBAC (service account kube-system/bosun-agent), reads the rendered
// ConfigMap, makes the pause Deployments of both targets (the untainted
// pools and the dedicated checkout-api pool, L06), and its pause pods pass
// the restricted Pod Security admission of the namespace they live in.
func TestExampleFleetOverprovisioner(t *testing.T) {
	resetInventory(t)
	t.Cleanup(func() { resetInventory(t) })
	env := testenv.Get(t)
	ctx := context.Background()
	res := renderExampleCluster(t, "local-staging")
	var log bytes.Buffer
	out, err := newApplier(t, &log).Apply(ctx, res, Options{})
	if err != nil || out.Err() != nil {
		t.Fatalf("%v %v\n%s", err, out.Err(), log.String())
	}
	for _, p := range res.Cluster.NodePools {
		var taints []corev1.Taint
		for _, tt := range p.Taints {
			taints = append(taints, corev1.Taint{Key: tt.Key, Value: tt.Value, Effect: corev1.TaintEffect(tt.Effect)})
		}
		env.CreateNode(t, controlplane.NodeSpec{Name: "example-" + p.Name, Labels: p.NodeLabels(), Taints: taints})
	}
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kube-system:bosun-agent"}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "overprovisioning"
	c, err := overprovisioner.New(controller.Deps{Client: cs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		overprovisioner.Options{Namespace: ns, ConfigMap: "overprovisioning"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pass(ctx); err != nil {
		t.Fatalf("the overprovisioner under the example fleet's RBAC: %v", err)
	}
	t.Cleanup(func() {
		for _, target := range []string{"cluster", "pool-checkout-api"} {
			_ = env.Client.AppsV1().Deployments(ns).Delete(context.Background(), agentapi.DeploymentName(target), metav1.DeleteOptions{})
		}
	})
	// Admission wants the namespace's default service account, which this
	// control plane (no controller manager) does not make.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, target := range []string{"cluster", "pool-checkout-api"} {
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, agentapi.DeploymentName(target), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("target %s: %v", target, err)
		}
		// The ReplicaSet would create exactly this pod; a dry-run runs the
		// namespace's Pod Security admission on it.
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: d.Name + "-", Namespace: ns, Labels: d.Spec.Template.Labels},
			Spec: d.Spec.Template.Spec}
		if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("target %s: pause pod refused: %v", target, err)
		}
	}
	// The namespace does enforce the restricted profile: the test can fail.
	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}}}}
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, plain, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a pod without a security context: %v; want it refused by the namespace's restricted Pod Security", err)
	}
}
