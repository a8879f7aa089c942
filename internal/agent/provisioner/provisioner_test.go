package provisioner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// template is a node of 4 CPUs / 16 GiB (allocatable 3920m / 14.5 GiB)
// carrying the group's labels and taints.
func template(g provider.NodeGroup) ([]*corev1.Node, error) {
	var out []*corev1.Node
	for _, z := range g.Zones {
		labels := map[string]string{"topology.kubernetes.io/zone": z, "karpenter.sh/capacity-type": string(g.Lifecycle)}
		for k, v := range g.Labels {
			labels[k] = v
		}
		out = append(out, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "template-" + g.ID, Labels: labels},
			Spec:       corev1.NodeSpec{Taints: g.Taints},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("3920m"), corev1.ResourceMemory: resource.MustParse("14848Mi"), corev1.ResourcePods: resource.MustParse("110"),
			}},
		})
	}
	return out, nil
}

func group(id string, lc provider.Lifecycle, prio int) provider.NodeGroup {
	return provider.NodeGroup{ID: id, Cluster: "c1", Pool: id, Lifecycle: lc, Priority: prio,
		InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"a", "b"}, MaxSize: 10,
		Labels: map[string]string{"pool": id}}
}

var seq int

func pendingPod(cpu, mem string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	seq++
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", seq), Namespace: "default", UID: types.UID(fmt.Sprint("uid-", seq))},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req}}}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", LastTransitionTime: metav1.NewTime(t0),
		}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func pods(n int, cpu, mem string, mutate ...func(*corev1.Pod)) []*corev1.Pod {
	var out []*corev1.Pod
	for i := 0; i < n; i++ {
		out = append(out, pendingPod(cpu, mem, mutate...))
	}
	return out
}

func newTest(t *testing.T, groups ...provider.NodeGroup) (*Provisioner, *fake.Provider, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	fp := fake.New(groups, nil, clk.Now)
	p, err := NewProvisioner(controller.Deps{Provider: fp, Cluster: "c1", Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, Options{Templates: template})
	if err != nil {
		t.Fatal(err)
	}
	return p, fp, clk
}

// spotOut takes every spot offering of group's m5.xlarge in zones a and b
// out of capacity.
func spotOut(fp *fake.Provider) {
	for _, z := range []string{"a", "b"} {
		fp.Unavailable[fake.OfferingKey("m5.xlarge", z, provider.Spot)] = true
	}
}

func target(t *testing.T, fp *fake.Provider, id string) int {
	t.Helper()
	g, err := fp.NodeGroup(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g.TargetSize
}

func TestScaleUpPrefersSpotThenPriority(t *testing.T) {
	p, fp, _ := newTest(t,
		group("od", provider.OnDemand, 50),
		group("spot-low", provider.Spot, 10),
		group("spot-high", provider.Spot, 40),
	)
	// 6 pods of 1 CPU: 3 fit a 3920m node, so 2 nodes.
	ds, err := p.Reconcile(context.Background(), pods(6, "1", "1Gi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Group != "spot-high" || ds[0].To != 2 || ds[0].Pods != 6 || ds[0].Fallback {
		t.Fatalf("decisions %+v, want spot-high to 2 nodes for 6 pods", ds)
	}
	if target(t, fp, "spot-high") != 2 || target(t, fp, "od") != 0 {
		t.Errorf("targets spot-high %d, od %d", target(t, fp, "spot-high"), target(t, fp, "od"))
	}
}

func TestPodsAlreadyRequestedAreNotAskedTwice(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 10))
	ps := pods(3, "1", "1Gi")
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	clk.Step(10 * time.Second)
	ds, err := p.Reconcile(context.Background(), ps, nil)
	if err != nil || len(ds) != 0 {
		t.Fatalf("second pass decided %+v (%v) while the node is on its way", ds, err)
	}
	if target(t, fp, "spot") != 1 {
		t.Errorf("target %d, want 1", target(t, fp, "spot"))
	}
}

// Capacity on its way is counted for the pods it was asked for first: new
// pods arriving while it boots get capacity of their own.
func TestNewPodsDoNotTakeCapacityAskedForOthers(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 10))
	first := pods(3, "1", "1Gi")
	if _, err := p.Reconcile(context.Background(), first, nil); err != nil {
		t.Fatal(err)
	}
	ins, _ := fp.Instances(context.Background(), "spot")
	fp.SetState("spot", ins[0].ID, provider.Pending)
	clk.Step(time.Second)
	ds, err := p.Reconcile(context.Background(), append(first, pods(3, "1", "1Gi")...), nil)
	if err != nil || len(ds) != 1 || target(t, fp, "spot") != 2 {
		t.Fatalf("decisions %+v (%v), target %d: want one more node for the 3 new pods", ds, err, target(t, fp, "spot"))
	}
}

// Nodes are not reserved for the pods they were asked for: when every
// instance asked for has registered and the scheduler has tried a pod
// again and still not placed it (others took the nodes), it is asked for
// again after the settle time, not after the provision timeout; a pod the
// scheduler has not retried yet is not.
func TestPodsLeftPendingAfterTheirNodesRegisteredAreAskedAgain(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 10))
	ps := pods(3, "1", "1Gi")
	for _, pod := range ps {
		pod.ResourceVersion = "1"
	}
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	ins, _ := fp.Instances(context.Background(), "spot")
	fp.SetState("spot", ins[0].ID, provider.Pending)
	clk.Step(time.Second)
	if ds, err := p.Reconcile(context.Background(), ps, nil); err != nil || len(ds) != 0 {
		t.Fatalf("decided %+v (%v) while the node boots", ds, err)
	}
	fp.SetState("spot", ins[0].ID, provider.Running)
	clk.Step(time.Second)
	if ds, _ := p.Reconcile(context.Background(), ps, nil); len(ds) != 0 {
		t.Fatalf("decided %+v before the scheduler tried the pods again", ds)
	}
	// Meanwhile the group boots for a later request: that does not hold
	// the first one.
	clk.Step(launchLag + time.Second)
	later := pods(3, "1", "1Gi")
	if ds, _ := p.Reconcile(context.Background(), append(ps, later...), nil); len(ds) != 1 || ds[0].Pods != 3 {
		t.Fatalf("decisions %+v for later pods", ds)
	}
	ins, _ = fp.Instances(context.Background(), "spot")
	fp.SetState("spot", ins[len(ins)-1].ID, provider.Pending)
	ps[0].ResourceVersion = "2" // the scheduler tried it again: no room
	if ds, _ := p.Reconcile(context.Background(), append(ps, later...), nil); len(ds) != 0 {
		t.Fatalf("decided %+v before the settle time (the new node may not be Ready)", ds)
	}
	clk.Step(settleTime)
	ds, err := p.Reconcile(context.Background(), append(ps, later...), nil)
	if err != nil || len(ds) != 1 || ds[0].Pods != 1 || target(t, fp, "spot") != 3 {
		t.Fatalf("decisions %+v (%v), target %d: want the retried pod asked for again", ds, err, target(t, fp, "spot"))
	}
	// The latency is observed once per pod: 6 pods, 7 requests.
	var m dto.Metric
	if err := p.Metrics.Latency.WithLabelValues().(prometheus.Metric).Write(&m); err != nil || m.GetHistogram().GetSampleCount() != 6 {
		t.Errorf("observations %d (%v), want 6", m.GetHistogram().GetSampleCount(), err)
	}
}

// L11/L21: when spot reports insufficient capacity, the next pass moves the
// pods to on-demand at once; no provision timeout is waited for.
func TestFallbackToOnDemandOnCapacityError(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 40), group("od", provider.OnDemand, 10))
	spotOut(fp)
	ps := pods(2, "1", "1Gi")
	ds, err := p.Reconcile(context.Background(), ps, nil)
	if err != nil || len(ds) != 1 || ds[0].Group != "spot" {
		t.Fatalf("first pass %+v, %v: spot is tried first", ds, err)
	}
	clk.Step(time.Second)
	ds, err = p.Reconcile(context.Background(), ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Group != "od" || !ds[0].Fallback {
		t.Fatalf("second pass %+v, want a fallback to od", ds)
	}
	if target(t, fp, "spot") != 0 {
		t.Errorf("the failed spot request was not given back: target %d", target(t, fp, "spot"))
	}
	if got := testCounter(p.Metrics.Fallbacks.WithLabelValues("spot", "InsufficientInstanceCapacity")); got != 1 {
		t.Errorf("fallback counter %v, want 1", got)
	}
	// While the TTL runs, spot is skipped without being tried.
	clk.Step(time.Minute)
	more := pods(1, "1", "1Gi")
	ds, _ = p.Reconcile(context.Background(), more, nil)
	if len(ds) != 1 || ds[0].Group != "od" {
		t.Fatalf("within the TTL: %+v, want od", ds)
	}
	// After the TTL, spot is tried again.
	delete(fp.Unavailable, fake.OfferingKey("m5.xlarge", "a", provider.Spot))
	clk.Step(3 * time.Minute)
	ds, _ = p.Reconcile(context.Background(), pods(1, "1", "1Gi"), nil)
	if len(ds) != 1 || ds[0].Group != "spot" {
		t.Fatalf("after the TTL: %+v, want spot again", ds)
	}
}

// L11, L22: once an instance of a marked offering launched after the mark
// runs (here the reaper's spot replacement), spot is tried again before
// the TTL ends, and new pods stop landing on the on-demand fallback.
func TestRunningInstanceEndsTheUnavailableMarkEarly(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 40), group("od", provider.OnDemand, 10))
	spotOut(fp)
	ps := pods(2, "1", "1Gi")
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	if ds, _ := p.Reconcile(context.Background(), ps, nil); len(ds) != 1 || ds[0].Group != "od" {
		t.Fatalf("second pass %+v, want a fallback to od", ds)
	}
	// Spot is back in zone a only; a pending pod still goes to od while
	// nothing proves it.
	delete(fp.Unavailable, fake.OfferingKey("m5.xlarge", "a", provider.Spot))
	clk.Step(10 * time.Second)
	if ds, _ := p.Reconcile(context.Background(), pods(1, "1", "1Gi"), nil); len(ds) != 1 || ds[0].Group != "od" {
		t.Fatalf("before any spot instance runs: %+v, want od", ds)
	}
	// Someone else launches spot (the reaper's replacement); it runs.
	if err := fp.SetTargetSize(context.Background(), "spot", 1); err != nil {
		t.Fatal(err)
	}
	ins, _ := fp.Instances(context.Background(), "spot")
	running := 0
	for _, in := range ins {
		if in.State == provider.Running {
			running++
		}
	}
	if running != 1 {
		t.Fatalf("spot instances %+v, want one running", ins)
	}
	clk.Step(time.Second)
	if ds, _ := p.Reconcile(context.Background(), pods(1, "1", "1Gi"), nil); len(ds) != 1 || ds[0].Group != "spot" || ds[0].Fallback {
		t.Fatalf("after a spot instance runs, within the TTL: %+v, want spot", ds)
	}
	// Zone b was not proven: its spot offering stays marked.
	if got := p.unavailable.count(); got != 1 {
		t.Errorf("unavailable offerings %d, want 1 (spot in zone b)", got)
	}
}

func TestProvisionTimeoutCatchesSilentFailures(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 40), group("od", provider.OnDemand, 10))
	ps := pods(1, "1", "1Gi")
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	// The fake's instances run at once; make the launch hang as pending.
	ins, _ := fp.Instances(context.Background(), "spot")
	if len(ins) != 1 {
		t.Fatalf("instances %+v", ins)
	}
	fp.SetState("spot", ins[0].ID, provider.Pending)
	clk.Step(6 * time.Minute)
	ds, err := p.Reconcile(context.Background(), ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Group != "od" || !ds[0].Fallback {
		t.Fatalf("after the provision timeout %+v, want od", ds)
	}
}

func TestPlacementRespectsSelectorsTaintsAndSize(t *testing.T) {
	dedicated := group("dedicated", provider.OnDemand, 50)
	dedicated.Taints = []corev1.Taint{{Key: "dedicated", Value: "api", Effect: corev1.TaintEffectNoSchedule}}
	p, _, _ := newTest(t, dedicated, group("spot", provider.Spot, 10))
	tolerates := func(pod *corev1.Pod) {
		pod.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "api", Effect: corev1.TaintEffectNoSchedule}}
		pod.Spec.NodeSelector = map[string]string{"pool": "dedicated"}
	}
	ds, err := p.Reconcile(context.Background(), append(pods(2, "500m", "1Gi", tolerates), pods(1, "500m", "1Gi")...), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, d := range ds {
		got[d.Group] = d.Pods
	}
	if got["dedicated"] != 2 || got["spot"] != 1 {
		t.Fatalf("decisions %+v: tolerating pods to the tainted pool, the other to spot", ds)
	}
	// Too big for any template: no decision at all.
	if ds, _ := p.Reconcile(context.Background(), pods(1, "8", "1Gi"), nil); len(ds) != 0 {
		t.Errorf("a pod larger than every node triggered %+v", ds)
	}
	// Zone constraint: a pod pinned to a zone no group has.
	zoned := func(pod *corev1.Pod) { pod.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "z"} }
	if ds, _ := p.Reconcile(context.Background(), pods(1, "100m", "1Gi", zoned), nil); len(ds) != 0 {
		t.Errorf("a pod for zone z triggered %+v", ds)
	}
}

func TestPriorityCutoffAndDaemonSetOverhead(t *testing.T) {
	p, _, _ := newTest(t, group("spot", provider.Spot, 10))
	low := func(pod *corev1.Pod) { v := int32(-11); pod.Spec.Priority = &v }
	if ds, _ := p.Reconcile(context.Background(), pods(1, "1", "1Gi", low), nil); len(ds) != 0 {
		t.Errorf("priority -11 pod triggered %+v", ds)
	}
	pause := func(pod *corev1.Pod) { v := int32(-10); pod.Spec.Priority = &v }
	if ds, _ := p.Reconcile(context.Background(), pods(1, "1", "1Gi", pause), nil); len(ds) != 1 {
		t.Errorf("priority -10 (overprovisioning) pod did not trigger a scale-up: %+v", ds)
	}
	// A 1-CPU DaemonSet leaves 2920m per node: three 1-CPU pods need two nodes.
	ds := []*corev1.PodTemplateSpec{{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "d", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}}}}
	got, err := p.Reconcile(context.Background(), pods(3, "1", "1Gi"), ds)
	if err != nil || len(got) != 1 || got[0].To-got[0].From != 2 {
		t.Fatalf("with DaemonSet overhead %+v, %v: want 2 new nodes", got, err)
	}
}

func TestLeastWasteWithinATier(t *testing.T) {
	small := group("small", provider.Spot, 10)
	big := group("big", provider.Spot, 10)
	big.Labels = map[string]string{"pool": "big", "size": "big"}
	clk := clocktesting.NewFakeClock(t0)
	fp := fake.New([]provider.NodeGroup{small, big}, nil, clk.Now)
	templates := func(g provider.NodeGroup) ([]*corev1.Node, error) {
		nodes, _ := template(g)
		if g.ID == "big" {
			for _, n := range nodes {
				n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("15890m")
				n.Status.Allocatable[corev1.ResourceMemory] = resource.MustParse("62Gi")
			}
		}
		return nodes, nil
	}
	p, err := NewProvisioner(controller.Deps{Provider: fp, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, Options{Templates: templates})
	if err != nil {
		t.Fatal(err)
	}
	// One 3-CPU pod fills a small node well and wastes most of a big one.
	ds, err := p.Reconcile(context.Background(), pods(1, "3", "12Gi"), nil)
	if err != nil || len(ds) != 1 || ds[0].Group != "small" {
		t.Fatalf("decisions %+v, %v: want the least-waste group small", ds, err)
	}
}

func TestMaxSizeIsNeverExceeded(t *testing.T) {
	g := group("spot", provider.Spot, 10)
	g.MaxSize = 1
	p, fp, _ := newTest(t, g, group("od", provider.OnDemand, 5))
	ds, err := p.Reconcile(context.Background(), pods(6, "1", "1Gi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if target(t, fp, "spot") != 1 || target(t, fp, "od") != 1 || len(ds) != 2 {
		t.Fatalf("decisions %+v: spot capped at max 1 (3 pods), the rest to od", ds)
	}
}

func histogramCount(t *testing.T, p *Provisioner) uint64 {
	t.Helper()
	var m dto.Metric
	if err := p.Metrics.Latency.WithLabelValues().(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// A pod that arrives while capacity boots and fits what the earlier pods
// leave is decided at once (observed then), and is not asked for in the
// window between that node registering and the scheduler placing it; if
// other pods take the node after all, it is asked for after the settle
// time and counted as released (capacity-taken).
func TestPodCountedOnBootingCapacityWaitsForIt(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 10))
	first := pods(2, "1", "1Gi") // one node of 3 slots
	if _, err := p.Reconcile(context.Background(), first, nil); err != nil {
		t.Fatal(err)
	}
	ins, _ := fp.Instances(context.Background(), "spot")
	fp.SetState("spot", ins[0].ID, provider.Pending)
	clk.Step(time.Second)
	late := pendingPod("1", "1Gi", func(p *corev1.Pod) { p.ResourceVersion = "1" })
	all := append(append([]*corev1.Pod(nil), first...), late)
	if ds, err := p.Reconcile(context.Background(), all, nil); err != nil || len(ds) != 0 {
		t.Fatalf("decided %+v (%v): the late pod fits the booting node", ds, err)
	}
	if n := histogramCount(t, p); n != 3 {
		t.Errorf("%d latency observations, want 3: the counted pod is decided", n)
	}
	// The node registers; the scheduler has not placed the pods yet.
	fp.SetState("spot", ins[0].ID, provider.Running)
	clk.Step(time.Second)
	if ds, _ := p.Reconcile(context.Background(), all, nil); len(ds) != 0 {
		t.Fatalf("decided %+v before the scheduler had the new node", ds)
	}
	// Other pods took the node; the scheduler retried the late pod.
	late.ResourceVersion = "2"
	clk.Step(settleTime)
	ds, err := p.Reconcile(context.Background(), []*corev1.Pod{late}, nil)
	if err != nil || len(ds) != 1 || ds[0].Pods != 1 || target(t, fp, "spot") != 2 {
		t.Fatalf("decisions %+v (%v), target %d: want the late pod asked for", ds, err, target(t, fp, "spot"))
	}
	if got := testCounter(p.Metrics.Released.WithLabelValues(releaseTaken)); got != 1 {
		t.Errorf("released (capacity-taken) %v, want 1", got)
	}
	if n := histogramCount(t, p); n != 3 {
		t.Errorf("%d latency observations, want 3 (asking again is not a new wait)", n)
	}
}

// A booting instance that goes away before it registers (deleted,
// interrupted) frees its pods at the next pass: the scheduler sees no new
// node and would not retry them, so waiting to settle would mean the
// provision timeout.
func TestPodsOfALostInstanceAreAskedForAgain(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 10))
	ps := pods(3, "1", "1Gi")
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	ins, _ := fp.Instances(context.Background(), "spot")
	fp.SetState("spot", ins[0].ID, provider.Pending)
	clk.Step(time.Second)
	if ds, _ := p.Reconcile(context.Background(), ps, nil); len(ds) != 0 {
		t.Fatalf("decided %+v while the node boots", ds)
	}
	if err := fp.DeleteInstances(context.Background(), "spot", []string{ins[0].ID}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	ds, err := p.Reconcile(context.Background(), ps, nil)
	if err != nil || len(ds) != 1 || ds[0].Pods != 3 || target(t, fp, "spot") != 1 {
		t.Fatalf("decisions %+v (%v), target %d: want the 3 pods asked for again", ds, err, target(t, fp, "spot"))
	}
	if got := testCounter(p.Metrics.Released.WithLabelValues(releaseLost)); got != 3 {
		t.Errorf("released (instance-lost) %v, want 3", got)
	}
}

// An instance that goes away before any pass saw it booting is noticed
// once the launch lag has passed without an instance launched for the
// request; one that booted and registered between two passes is not.
func TestPodsOfAnInstanceGoneBeforeItWasSeenAreAskedForAgain(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 10))
	ps := pods(3, "1", "1Gi")
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	ins, _ := fp.Instances(context.Background(), "spot")
	if err := fp.DeleteInstances(context.Background(), "spot", []string{ins[0].ID}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	if ds, _ := p.Reconcile(context.Background(), ps, nil); len(ds) != 0 {
		t.Fatalf("decided %+v within the launch lag", ds)
	}
	clk.Step(launchLag)
	ds, err := p.Reconcile(context.Background(), ps, nil)
	if err != nil || len(ds) != 1 || ds[0].Pods != 3 {
		t.Fatalf("decisions %+v (%v): want the 3 pods asked for again", ds, err)
	}
	if got := testCounter(p.Metrics.Released.WithLabelValues(releaseLost)); got != 3 {
		t.Errorf("released (instance-lost) %v, want 3", got)
	}
	// This time the instance registers between two passes: the pods wait
	// for the scheduler (settle), they are not lost.
	clk.Step(launchLag + time.Second)
	if ds, _ := p.Reconcile(context.Background(), ps, nil); len(ds) != 0 {
		t.Fatalf("decided %+v for pods whose node registered", ds)
	}
	if got := testCounter(p.Metrics.Released.WithLabelValues(releaseLost)); got != 3 {
		t.Errorf("released (instance-lost) %v, want still 3", got)
	}
}
