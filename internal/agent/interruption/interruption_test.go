package interruption

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
)

func setup(t *testing.T, dryRun bool) (*Controller, *fake.Provider, *kfake.Clientset, string) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	fp := fake.New([]provider.NodeGroup{{ID: "c1/spot", Cluster: "c1", Lifecycle: provider.Spot, InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MaxSize: 2}}, nil, clk.Now)
	if err := fp.SetTargetSize(context.Background(), "c1/spot", 1); err != nil {
		t.Fatal(err)
	}
	ins, _ := fp.Instances(context.Background(), "c1/spot")
	cs := kfake.NewSimpleClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ins[0].NodeName}})
	h, err := New(controller.Deps{Provider: fp, Client: cs, Cluster: "c1", Clock: clk, DryRun: dryRun, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h, fp, cs, ins[0].ID
}

func TestPollCordonsAndTaintsOnce(t *testing.T) {
	h, fp, cs, id := setup(t, false)
	n, err := fp.Interrupt(id, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	node, err := cs.CoreV1().Nodes().Get(ctx, n.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !node.Spec.Unschedulable || len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != TaintKey {
		t.Fatalf("node spec %+v: want cordoned with the interruption taint", node.Spec)
	}
	if node.Annotations[AnnotationTermination] != n.TerminationTime.UTC().Format(time.RFC3339) {
		t.Errorf("termination annotation %q", node.Annotations[AnnotationTermination])
	}
	patches := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "patch" {
			patches++
		}
	}
	if err := h.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	again := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "patch" {
			again++
		}
	}
	if again != patches {
		t.Errorf("a notice seen again was handled again (%d patches, then %d)", patches, again)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	h, fp, cs, id := setup(t, true)
	if _, err := fp.Interrupt(id, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := h.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("dry-run made a %s", a.GetVerb())
		}
	}
}

func TestOtherClustersNoticesAreIgnored(t *testing.T) {
	h, fp, cs, id := setup(t, false)
	h.deps.Cluster = "other"
	if _, err := fp.Interrupt(id, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := h.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(cs.Actions()) != 0 {
		t.Errorf("acted on another cluster's notice: %v", cs.Actions())
	}
}
