package backupschedule

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
