package backupschedule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/backup"
)

func options(to string) Options {
	return Options{Every: 24 * time.Hour, To: to, Recipients: []string{pub}, Keep: 2,
		StatusNamespace: DefaultStatusNamespace, StatusConfigMap: DefaultStatusConfigMap}
}

// In dry-run a due backup is reported and nothing is written: no store
// opened, no status ConfigMap.
func TestDryRunWritesNothing(t *testing.T) {
	client := fake.NewClientset()
	opened := false
	o := options("s3://bucket/prefix")
	o.OpenStore = func(context.Context, string) (backup.Store, error) { opened = true; return nil, nil }
	c, err := New(controller.Deps{Client: client, Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), Cluster: "c1",
		Clock: clocktesting.NewFakeClock(t0), DryRun: true}, o)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0] != "back up cluster c1 to s3://bucket/prefix" {
		t.Fatalf("changes %q", changes)
	}
	if opened {
		t.Error("dry-run opened the store")
	}
	if cms, _ := client.CoreV1().ConfigMaps(DefaultStatusNamespace).List(context.Background(), metav1.ListOptions{}); len(cms.Items) != 0 {
		t.Errorf("dry-run wrote %d ConfigMaps", len(cms.Items))
	}
}

// A pass before the backup is due does nothing; the status decides,
// whatever the agent remembers (it remembers nothing).
func TestNotDueDoesNothing(t *testing.T) {
	s := Status{LastSuccessID: "x", LastSuccessTime: t0, LastAttemptTime: t0}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: DefaultStatusNamespace, Name: DefaultStatusConfigMap}, Data: s.data()}
	o := options(t.TempDir())
	o.OpenStore = func(context.Context, string) (backup.Store, error) {
		t.Fatal("opened the store before a backup was due")
		return nil, nil
	}
	c, err := New(controller.Deps{Client: fake.NewClientset(cm), Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), Cluster: "c1",
		Clock: clocktesting.NewFakeClock(t0.Add(23 * time.Hour))}, o)
	if err != nil {
		t.Fatal(err)
	}
	if changes, err := c.Pass(context.Background()); err != nil || len(changes) != 0 {
		t.Fatalf("changes %q, %v", changes, err)
	}
}

// New refuses to run without the cluster ID the backups are stored under.
func TestNewNeedsCluster(t *testing.T) {
	_, err := New(controller.Deps{Client: fake.NewClientset(), Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())}, options("/tmp/x"))
	if err == nil || !strings.Contains(err.Error(), "--cluster") {
		t.Fatalf("got %v", err)
	}
}

// failingStore fails the first Put of a manifest: a backup killed after
// its archive was written and before its manifest.
type failingStore struct {
	backup.DirStore
	failed bool
}

func (f *failingStore) Put(ctx context.Context, name string, data []byte) error {
	if strings.HasSuffix(name, "/"+backup.ManifestFile) && !f.failed {
		f.failed = true
		return errors.New("killed")
	}
	return f.DirStore.Put(ctx, name, data)
}

// L29: a backup cut short before its manifest is recorded as a failure
// and leaves no backup a restore could pick (no manifest), the retry comes
// RetryAfter later and prunes the orphaned archive; a backup in the store
// that the status does not know (the agent killed before it wrote the
// status) is recorded, not taken again.
func TestInterruptedBackupAndLostStatus(t *testing.T) {
	ctx := context.Background()
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	client := fake.NewClientset()
	client.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "secrets", Kind: "Secret", Namespaced: true, Verbs: metav1.Verbs{"list"}}},
	}}
	secret := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "db", "namespace": "shop"}, "data": map[string]any{"password": "aHVudGVyMg=="}}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{secrets: "SecretList"}, secret)
	dir := t.TempDir()
	store := &failingStore{DirStore: backup.DirStore{Dir: dir}}
	o := options(dir)
	o.OpenStore = func(context.Context, string) (backup.Store, error) { return store, nil }
	clk := clocktesting.NewFakeClock(t0)
	c, err := New(controller.Deps{Client: client, Dynamic: dyn, Cluster: "c1", Clock: clk}, o)
	if err != nil {
		t.Fatal(err)
	}
	status := func() Status {
		t.Helper()
		cm, err := client.CoreV1().ConfigMaps(DefaultStatusNamespace).Get(ctx, DefaultStatusConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := statusFrom(cm)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	if _, err := c.Pass(ctx); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("interrupted backup: %v", err)
	}
	if s := status(); s.Failures != 1 || !strings.Contains(s.LastError, "killed") || !s.NextDue.Equal(t0.Add(RetryAfter)) {
		t.Fatalf("status after the interrupted backup: %+v", s)
	}
	if ms, err := backup.List(ctx, store, "c1"); err != nil || len(ms) != 0 {
		t.Fatalf("listed %d backups after an interrupted one (%v)", len(ms), err)
	}
	orphan := filepath.Join(dir, "c1", t0.Format("20060102T150405Z"), backup.ArchiveFile)
	if _, err := os.Stat(orphan); err != nil {
		t.Fatalf("the interrupted backup's archive: %v", err)
	}

	clk.Step(RetryAfter - time.Second)
	if changes, err := c.Pass(ctx); err != nil || len(changes) != 0 {
		t.Fatalf("retried early: %q %v", changes, err)
	}
	clk.Step(time.Second)
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	s := status()
	if s.Failures != 0 || s.LastError != "" || !s.LastSuccessTime.Equal(t0.Add(RetryAfter)) || !s.NextDue.Equal(t0.Add(RetryAfter+24*time.Hour)) {
		t.Fatalf("status after the retry: %+v", s)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the orphaned archive is still there: %v", err)
	}

	// The status is lost (an agent killed after the manifest, before the
	// status): the backup in the store counts.
	if err := client.CoreV1().ConfigMaps(DefaultStatusNamespace).Delete(ctx, DefaultStatusConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Hour)
	changes, err := c.Pass(ctx)
	if err != nil || len(changes) != 1 || !strings.HasPrefix(changes[0], "recorded backup "+s.LastSuccessID) {
		t.Fatalf("changes %q, %v; expected the backup in the store recorded", changes, err)
	}
	if ms, _ := backup.List(ctx, store, "c1"); len(ms) != 1 {
		t.Fatalf("%d backups; expected still 1", len(ms))
	}
	if got := status(); got.LastSuccessID != s.LastSuccessID || !got.NextDue.Equal(s.NextDue) {
		t.Fatalf("recovered status %+v; expected %s due %s", got, s.LastSuccessID, s.NextDue)
	}
}
