//go:build integration

package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/removedapi"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// TestUpgradeRefusedByLiveRemovedAPI (L30): a live object of a kind
// served only by an API version the target release removes stops the
// upgrade, and the status says which; once the object is gone the scan
// lets the upgrade through. The API server (1.33) does not serve
// storagemigration.k8s.io (alpha, off by default), so a CRD stands in for
// v1alpha1 StorageVersionMigration, which k8s.io/api marks as removed in
// 1.36.
func TestUpgradeRefusedByLiveRemovedAPI(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	gvk := schema.GroupVersionKind{Group: "storagemigration.k8s.io", Version: "v1alpha1", Kind: "StorageVersionMigration"}
	rm, ok := removedapi.RemovedBy(removedapi.Version{Major: 1, Minor: 36})[gvk]
	if !ok || rm.Removed != (removedapi.Version{Major: 1, Minor: 36}) {
		t.Fatalf("k8s.io/api no longer says %s is removed in 1.36 (%+v): pick another stand-in", gvk, rm)
	}
	for _, ref := range [][2]string{{apply.InventoryNamespace, apply.InventoryName}, {lifecycle.StatusNamespace, lifecycle.StatusName}} {
		if err := env.Client.CoreV1().ConfigMaps(ref[0]).Delete(ctx, ref[1], metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{
			"name":        "storageversionmigrations.storagemigration.k8s.io",
			"annotations": map[string]any{"api-approved.kubernetes.io": "unapproved, test stand-in"},
		},
		"spec": map[string]any{
			"group": gvk.Group, "scope": "Cluster",
			"names": map[string]any{"plural": "storageversionmigrations", "kind": gvk.Kind, "listKind": gvk.Kind + "List"},
			"versions": []any{map[string]any{
				"name": gvk.Version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	if _, err := env.Dynamic.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Dynamic.Resource(crdGVR).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	gvr := gvk.GroupVersion().WithResource("storageversionmigrations")
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	obj.SetName("migrate-secrets")
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := env.Dynamic.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), nil
	}, "the stand-in CRD to serve")

	dir := t.TempDir()
	w := &world{t: t, env: env, dir: dir}
	w.write("clusters/test.yaml", strings.Replace(channelCluster, `kubernetesVersion: "1.33"`, `kubernetesVersion: "1.36"`, 1))
	w.write("manifests/release/release.yaml", releaseYAML("one"))
	c, err := lifecycle.New(lifecycle.Options{
		FleetDir: dir, Interval: time.Second, HealthTimeout: time.Minute, PollEvery: 200 * time.Millisecond, Log: quiet,
		Connector: lifecycle.RESTConnector{Config: func(*fleet.Cluster) (*rest.Config, error) { return env.RESTConfig(), nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !errors.Is(r.Err, lifecycle.ErrRemovedAPIs) {
		t.Fatalf("pass: %+v, want the upgrade refused over removed APIs", r)
	}
	live, err := lifecycle.ReadStatus(ctx, env.Client)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"upgrade from 1.33 to 1.36 refused", "storagemigration.k8s.io/v1alpha1 StorageVersionMigration (removed in 1.36)", "migrate-secrets"} {
		if !strings.Contains(live.Status.LastError, want) {
			t.Errorf("status lastError %q lacks %q", live.Status.LastError, want)
		}
	}
	// The inventory was deleted above: a refused upgrade applies nothing.
	if _, err := env.Client.CoreV1().ConfigMaps(apply.InventoryNamespace).Get(ctx, apply.InventoryName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused upgrade applied the manifests (inventory: %v)", err)
	}

	// Without the object, nothing stops the upgrade (no provider here:
	// the pass applies and reconciles).
	if err := env.Dynamic.Resource(gvr).Delete(ctx, "migrate-secrets", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c2, _ := lifecycle.New(lifecycle.Options{
		FleetDir: dir, Interval: time.Second, HealthTimeout: time.Minute, PollEvery: 200 * time.Millisecond, Log: quiet,
		Connector: lifecycle.RESTConnector{Config: func(*fleet.Cluster) (*rest.Config, error) { return env.RESTConfig(), nil }},
	})
	res, err = c2.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; r.Err != nil || r.Status.Phase != lifecycle.PhaseReconciled {
		t.Fatalf("pass without the object: %+v, want Reconciled", r)
	}
}
