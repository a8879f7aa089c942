package interruption

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
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

// L19: the notice is acknowledged once acted on (cordoned, drain started),
// once; a dry run acknowledges nothing, so the queue keeps the message.
func TestAcknowledgedAfterActing(t *testing.T) {
	h, fp, cs, id := setup(t, false)
	if _, err := fp.Interrupt(id, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if err := h.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h.wg.Wait()
	if n := fp.Acks(id); n != 1 {
		t.Errorf("acknowledgements = %d, want 1", n)
	}
	patched := false
	for _, a := range cs.Actions() {
		patched = patched || a.GetVerb() == "patch"
	}
	if !patched {
		t.Error("acknowledged without cordoning the node")
	}

	dry, dfp, _, did := setup(t, true)
	if _, err := dfp.Interrupt(did, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := dry.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dfp.Acks(did); n != 0 {
		t.Errorf("dry run acknowledged %d times, want 0", n)
	}
}

// A cordon that fails is neither acknowledged nor forgotten: the next poll
// cordons and acknowledges.
func TestFailedCordonRetriedBeforeAck(t *testing.T) {
	h, fp, cs, id := setup(t, false)
	n, err := fp.Interrupt(id, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	node, err := cs.CoreV1().Nodes().Get(ctx, n.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A stale resourceVersion on the first read makes the patch fail.
	cs.PrependReactor("patch", "nodes", func(action k8stesting.Action) (bool, runtime.Object, error) {
		cs.ReactionChain = cs.ReactionChain[1:]
		return true, nil, apierrors.NewConflict(corev1.Resource("nodes"), node.Name, errors.New("stale"))
	})
	if err := h.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fp.Acks(id); got != 0 {
		t.Fatalf("acknowledged %d times after a failed cordon", got)
	}
	if err := h.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	if got := fp.Acks(id); got != 1 {
		t.Errorf("acknowledgements after the retry = %d, want 1", got)
	}
	node, _ = cs.CoreV1().Nodes().Get(ctx, n.NodeName, metav1.GetOptions{})
	if !node.Spec.Unschedulable {
		t.Error("node not cordoned by the retry")
	}
}

// An acknowledgement that fails is retried on the next poll without acting
// again.
func TestFailedAckRetriedWithoutActingTwice(t *testing.T) {
	h, fp, cs, id := setup(t, false)
	if _, err := fp.Interrupt(id, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fp.FailAck = errors.New("throttled")
	if err := h.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	patches := func() int {
		n := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "patch" {
				n++
			}
		}
		return n
	}
	before := patches()
	if err := h.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	if got := fp.Acks(id); got != 1 {
		t.Errorf("acknowledgements = %d, want 1 (the retry)", got)
	}
	if patches() != before {
		t.Errorf("the ack retry acted again: %d patches, then %d", before, patches())
	}
}
