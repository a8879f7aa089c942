package localcloud

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
)

// fakeRegistry records nodes instead of creating them.
type fakeRegistry struct {
	mu    sync.Mutex
	nodes map[string]*corev1.Node
	fail  error
}

func newFakeRegistry() *fakeRegistry { return &fakeRegistry{nodes: map[string]*corev1.Node{}} }

func (f *fakeRegistry) Register(_ context.Context, cluster string, n *corev1.Node) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.nodes[cluster+"/"+n.Name] = n
	return nil
}

func (f *fakeRegistry) Deregister(_ context.Context, cluster, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	delete(f.nodes, cluster+"/"+name)
	return nil
}

func (f *fakeRegistry) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.nodes)
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func testCluster() *fleet.Cluster {
	return &fleet.Cluster{ID: "c1", Region: "eu-central-1", NodePools: []fleet.NodePool{
		{Name: "spot", Role: "worker", ApplicationGroup: "app", Lifecycle: "spot",
			InstanceTypes: []string{"m5.xlarge", "m6i.xlarge"}, Zones: []string{"eu-central-1a", "eu-central-1b"},
			MinSize: 0, MaxSize: 10, Priority: 20,
			Taints: []fleet.Taint{{Key: "dedicated", Value: "app", Effect: "NoSchedule"}}},
		{Name: "od", Role: "worker", ApplicationGroup: "app", Lifecycle: "on-demand",
			InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"eu-central-1a", "eu-central-1b"},
			MinSize: 1, MaxSize: 10, Priority: 10},
	}}
}

func newTestCloud(t *testing.T, cfg Config) (*Cloud, *clocktesting.FakeClock, *fakeRegistry) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	reg := newFakeRegistry()
	if cfg.BootDelay == 0 {
		cfg.BootDelay = 40 * time.Second
	}
	c := New(cfg, clk, reg)
	if err := c.AddCluster(testCluster()); err != nil {
		t.Fatal(err)
	}
	return c, clk, reg
}

func instances(t *testing.T, c *Cloud, id string) []provider.Instance {
	t.Helper()
	in, err := c.Instances(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func states(ins []provider.Instance) map[provider.InstanceState]int {
	out := map[provider.InstanceState]int{}
	for _, in := range ins {
		out[in.State]++
	}
	return out
}

func reconcile(t *testing.T, c *Cloud) {
	t.Helper()
	if err := c.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGroupsStartAtMinSizeAndBootAfterDelay(t *testing.T) {
	c, clk, reg := newTestCloud(t, Config{})
	ctx := context.Background()
	groups, _ := c.NodeGroups(ctx)
	if len(groups) != 2 || groups[0].ID != "c1/od" || groups[0].TargetSize != 1 {
		t.Fatalf("groups %+v", groups)
	}
	reconcile(t, c)
	if got := states(instances(t, c, "c1/od")); got[provider.Pending] != 1 {
		t.Fatalf("states %v, want 1 pending", got)
	}
	clk.Step(39 * time.Second)
	reconcile(t, c)
	if reg.count() != 0 {
		t.Fatal("node registered before the boot delay")
	}
	clk.Step(time.Second)
	reconcile(t, c)
	ins := instances(t, c, "c1/od")
	if ins[0].State != provider.Running || reg.count() != 1 {
		t.Fatalf("after boot: %+v, %d nodes", ins, reg.count())
	}
}

func TestNodeLabelsCapacityAndReservation(t *testing.T) {
	c, clk, reg := newTestCloud(t, Config{})
	ctx := context.Background()
	if err := c.SetTargetSize(ctx, "c1/spot", 1); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	clk.Step(time.Minute)
	reconcile(t, c)
	var node *corev1.Node
	for k, n := range reg.nodes {
		if strings.HasPrefix(k, "c1/spot-") {
			node = n
		}
	}
	if node == nil {
		t.Fatalf("no spot node among %v", reg.nodes)
	}
	want := map[string]string{
		LabelInstanceType: "m5.xlarge", LabelRegion: "eu-central-1", LabelCapacityType: "spot",
		LabelEKSCapacityType: "SPOT", fleet.LabelPool: "spot", fleet.LabelLifecycle: "spot",
	}
	for k, v := range want {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	if z := node.Labels[LabelZone]; z != "eu-central-1a" && z != "eu-central-1b" {
		t.Errorf("zone label %q", z)
	}
	if !strings.HasPrefix(node.Spec.ProviderID, "local:///eu-central-1") || len(node.Spec.Taints) != 1 {
		t.Errorf("spec %+v", node.Spec)
	}
	// m5.xlarge: 4 vCPU, 16 GiB. L35: 60+10+5+5 = 80m CPU and
	// 255 + 11*110 + 100 = 1565 MiB memory reserved.
	if got := node.Status.Capacity.Cpu().String(); got != "4" {
		t.Errorf("capacity cpu %s", got)
	}
	if got := node.Status.Allocatable.Cpu().MilliValue(); got != 3920 {
		t.Errorf("allocatable cpu %dm, want 3920m", got)
	}
	if got := node.Status.Allocatable.Memory().Value() >> 20; got != 16*1024-1565 {
		t.Errorf("allocatable memory %d MiB, want %d", got, 16*1024-1565)
	}
}

func TestReservationFormula(t *testing.T) {
	for _, c := range []struct {
		vcpu    int
		cpuMill int64
	}{{1, 60}, {2, 70}, {4, 80}, {8, 90}, {96, 310}} {
		if got, mem := Reservation(c.vcpu); got != c.cpuMill || mem != 1565 {
			t.Errorf("Reservation(%d) = %dm, %dMi; want %dm, 1565Mi", c.vcpu, got, mem, c.cpuMill)
		}
	}
}

func TestZonesAreBalanced(t *testing.T) {
	c, _, _ := newTestCloud(t, Config{})
	if err := c.SetTargetSize(context.Background(), "c1/spot", 4); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	perZone := map[string]int{}
	for _, in := range instances(t, c, "c1/spot") {
		perZone[in.Zone]++
	}
	if perZone["eu-central-1a"] != 2 || perZone["eu-central-1b"] != 2 {
		t.Errorf("per zone %v, want 2/2", perZone)
	}
}

// L11: a launch beyond the market's capacity fails at once with the error
// class AWS uses, and the group reports it instead of waiting silently.
func TestInsufficientCapacityIsReported(t *testing.T) {
	c, clk, _ := newTestCloud(t, Config{LaunchRetry: 10 * time.Second})
	ctx := context.Background()
	if err := c.SetCapacity(OfferingKey{Lifecycle: provider.Spot}, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTargetSize(ctx, "c1/spot", 2); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	ins := instances(t, c, "c1/spot")
	if len(ins) != 1 || ins[0].State != provider.Failed || ins[0].ErrorClass != provider.InsufficientCapacity {
		t.Fatalf("instances %+v, want one failed launch with InsufficientInstanceCapacity", ins)
	}
	offs, _ := c.Offerings(ctx)
	for _, o := range offs {
		if o.Lifecycle == provider.Spot && o.Available {
			t.Errorf("spot offering %+v reported available", o)
		}
		if o.Lifecycle == provider.OnDemand && !o.Available {
			t.Errorf("on-demand offering %+v reported unavailable", o)
		}
	}
	// Within the retry interval nothing new is tried.
	clk.Step(5 * time.Second)
	reconcile(t, c)
	if got := instances(t, c, "c1/spot"); len(got) != 1 || got[0].ID != ins[0].ID {
		t.Fatalf("retried too early: %+v", got)
	}
	// Capacity returns: the group launches without waiting for the retry.
	if err := c.SetCapacity(OfferingKey{Lifecycle: provider.Spot}, 0, true); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	if got := states(instances(t, c, "c1/spot")); got[provider.Pending] != 2 || got[provider.Failed] != 0 {
		t.Fatalf("after capacity returned: %v", got)
	}
}

func TestCapacityLimitFallsBackToOtherTypes(t *testing.T) {
	c, _, _ := newTestCloud(t, Config{})
	if err := c.SetCapacity(OfferingKey{InstanceType: "m5.xlarge", Lifecycle: provider.Spot}, 1, false); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTargetSize(context.Background(), "c1/spot", 3); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	types := map[string]int{}
	for _, in := range instances(t, c, "c1/spot") {
		types[in.InstanceType]++
	}
	if types["m5.xlarge"] != 1 || types["m6i.xlarge"] != 2 {
		t.Errorf("types %v, want 1 m5.xlarge (the limit) and 2 m6i.xlarge", types)
	}
}

func TestQuotaExceeded(t *testing.T) {
	c, _, _ := newTestCloud(t, Config{VCPUQuota: map[provider.Lifecycle]int{provider.OnDemand: 4}})
	if err := c.SetTargetSize(context.Background(), "c1/od", 2); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	st := states(instances(t, c, "c1/od"))
	if st[provider.Pending] != 1 || st[provider.Failed] != 1 {
		t.Fatalf("states %v", st)
	}
	for _, in := range instances(t, c, "c1/od") {
		if in.State == provider.Failed && in.ErrorClass != provider.QuotaExceeded {
			t.Errorf("error class %s, want VcpuLimitExceeded", in.ErrorClass)
		}
	}
}

// L19/L20: an interruption notice comes first, the replacement is launched
// at once, and the instance and its node go away when the notice runs out.
func TestInterruptionNoticeThenTermination(t *testing.T) {
	c, clk, reg := newTestCloud(t, Config{NoticePeriod: 2 * time.Minute})
	ctx := context.Background()
	if err := c.SetTargetSize(ctx, "c1/spot", 1); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	clk.Step(time.Minute)
	reconcile(t, c)
	victim := instances(t, c, "c1/spot")[0]
	n, err := c.Interrupt(victim.NodeName, "requested")
	if err != nil {
		t.Fatal(err)
	}
	if !n.TerminationTime.Equal(clk.Now().Add(2 * time.Minute)) {
		t.Errorf("termination %s, want notice + 2m", n.TerminationTime)
	}
	notices, _ := c.Interruptions(ctx, t0)
	if len(notices) != 1 || notices[0].NodeName != victim.NodeName {
		t.Fatalf("notices %+v", notices)
	}
	reconcile(t, c)
	if got := states(instances(t, c, "c1/spot")); got[provider.Pending] != 1 || got[provider.Running] != 1 {
		t.Fatalf("want the interrupted one running and a replacement pending, got %v", got)
	}
	if _, ok := reg.nodes["c1/"+victim.NodeName]; !ok {
		t.Fatal("node removed before the notice ran out")
	}
	clk.Step(2 * time.Minute)
	reconcile(t, c)
	if _, ok := reg.nodes["c1/"+victim.NodeName]; ok {
		t.Fatal("node still there after termination time")
	}
	for _, in := range instances(t, c, "c1/spot") {
		if in.ID == victim.ID {
			t.Fatalf("interrupted instance still listed: %+v", in)
		}
	}
}

func TestShrinkingSpotCapacityReclaimsNewestFirst(t *testing.T) {
	c, clk, _ := newTestCloud(t, Config{})
	ctx := context.Background()
	if err := c.SetTargetSize(ctx, "c1/spot", 1); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	clk.Step(time.Minute)
	if err := c.SetTargetSize(ctx, "c1/spot", 3); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	oldest := instances(t, c, "c1/spot")[0]
	if err := c.SetCapacity(OfferingKey{Lifecycle: provider.Spot}, 1, false); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	notices, _ := c.Interruptions(ctx, t0)
	if len(notices) != 2 {
		t.Fatalf("%d notices, want 2 (3 running, limit 1)", len(notices))
	}
	for _, n := range notices {
		if n.InstanceID == oldest.ID || n.Reason != "capacity reclaimed" {
			t.Errorf("notice %+v: the oldest instance must be kept, reason capacity reclaimed", n)
		}
	}
}

func TestSetTargetSizeAndDeleteBounds(t *testing.T) {
	c, clk, reg := newTestCloud(t, Config{})
	ctx := context.Background()
	if err := c.SetTargetSize(ctx, "c1/od", 11); !errors.Is(err, provider.ErrOutOfRange) {
		t.Errorf("size above max: %v", err)
	}
	if err := c.SetTargetSize(ctx, "nope", 1); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("unknown group: %v", err)
	}
	if err := c.SetTargetSize(ctx, "c1/od", 3); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	clk.Step(time.Minute)
	reconcile(t, c)
	ins := instances(t, c, "c1/od")
	if err := c.DeleteInstances(ctx, "c1/od", []string{ins[0].ID, ins[1].ID, ins[2].ID}); !errors.Is(err, provider.ErrOutOfRange) {
		t.Fatalf("deleting below min: %v", err)
	}
	if err := c.DeleteInstances(ctx, "c1/od", []string{ins[0].ID, "i-gone"}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	g, _ := c.NodeGroup(ctx, "c1/od")
	if g.TargetSize != 2 || len(instances(t, c, "c1/od")) != 2 || reg.count() != 2 {
		t.Fatalf("target %d, %d instances, %d nodes; want 2 each", g.TargetSize, len(instances(t, c, "c1/od")), reg.count())
	}
	// Idempotent: deleting the same instance again changes nothing.
	if err := c.DeleteInstances(ctx, "c1/od", []string{ins[0].ID}); err != nil {
		t.Fatal(err)
	}
	if g, _ := c.NodeGroup(ctx, "c1/od"); g.TargetSize != 2 {
		t.Errorf("target %d after repeated delete", g.TargetSize)
	}
	// Lowering the target terminates the newest.
	if err := c.SetTargetSize(ctx, "c1/od", 1); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	if got := len(instances(t, c, "c1/od")); got != 1 {
		t.Errorf("%d instances after scaling to 1", got)
	}
}

func TestRegistryFailureIsRetried(t *testing.T) {
	c, clk, reg := newTestCloud(t, Config{})
	reconcile(t, c)
	clk.Step(time.Minute)
	reg.fail = errors.New("api down")
	if err := c.Reconcile(context.Background()); err == nil {
		t.Fatal("registry error swallowed")
	}
	if got := instances(t, c, "c1/od")[0].State; got != provider.Pending {
		t.Fatalf("state %s after failed registration, want pending", got)
	}
	reg.fail = nil
	reconcile(t, c)
	if got := instances(t, c, "c1/od")[0].State; got != provider.Running {
		t.Fatalf("state %s after retry", got)
	}
}

func TestPricesSpotBelowOnDemand(t *testing.T) {
	c, _, _ := newTestCloud(t, Config{})
	offs, err := c.Offerings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	od := map[string]float64{}
	for _, o := range offs {
		if o.Lifecycle == provider.OnDemand {
			od[o.InstanceType+o.Zone] = o.PricePerHour
		}
	}
	if len(offs) != 8 {
		t.Errorf("%d offerings, want 2 types x 2 zones x 2 lifecycles", len(offs))
	}
	for _, o := range offs {
		if o.PricePerHour <= 0 {
			t.Errorf("offering %+v has no price", o)
		}
		if o.Lifecycle == provider.Spot {
			r := o.PricePerHour / od[o.InstanceType+o.Zone]
			if r < 0.25 || r > 0.45 {
				t.Errorf("spot/on-demand = %.2f for %s, want 0.25-0.45", r, o.InstanceType)
			}
		}
	}
}

func TestAddClusterRejectsBadPools(t *testing.T) {
	c := New(Config{}, clocktesting.NewFakeClock(t0), newFakeRegistry())
	cases := map[string]fleet.NodePool{
		"unknown type":  {Name: "p", Lifecycle: "spot", InstanceTypes: []string{"z9.huge"}, Zones: []string{"a"}, MaxSize: 1},
		"bad lifecycle": {Name: "p", Lifecycle: "reserved", InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MaxSize: 1},
		"min above max": {Name: "p", Lifecycle: "spot", InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MinSize: 3, MaxSize: 1},
		"no zones":      {Name: "p", Lifecycle: "spot", InstanceTypes: []string{"m5.large"}, MaxSize: 1},
	}
	for name, pool := range cases {
		t.Run(name, func(t *testing.T) {
			err := c.AddCluster(&fleet.Cluster{ID: "x", NodePools: []fleet.NodePool{pool}})
			if err == nil || !strings.Contains(err.Error(), "cluster x, node pool p") {
				t.Fatalf("err = %v", err)
			}
			if gs, _ := c.NodeGroups(context.Background()); len(gs) != 0 {
				t.Errorf("a rejected pool created groups: %v", gs)
			}
		})
	}
}

func TestBootstrapRegistersMinimumAtOnce(t *testing.T) {
	c, _, reg := newTestCloud(t, Config{BootDelay: time.Hour})
	if err := c.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	if reg.count() != 1 {
		t.Fatalf("%d nodes after Bootstrap, want the on-demand group's minimum of 1", reg.count())
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	c, clk, _ := newTestCloud(t, Config{})
	ctx := context.Background()
	if err := c.SetTargetSize(ctx, "c1/spot", 2); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCapacity(OfferingKey{Zone: "eu-central-1b"}, 5, false); err != nil {
		t.Fatal(err)
	}
	reconcile(t, c)
	clk.Step(time.Minute)
	reconcile(t, c)
	data, err := c.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	restarted, _, _ := newTestCloud(t, Config{})
	if err := restarted.LoadState(data); err != nil {
		t.Fatal(err)
	}
	before, after := instances(t, c, "c1/spot"), instances(t, restarted, "c1/spot")
	if len(after) != 2 || after[0].ID != before[0].ID || after[0].State != provider.Running {
		t.Fatalf("instances after restart %+v, want %+v", after, before)
	}
	if len(restarted.Limits()) != 1 {
		t.Errorf("limits lost: %v", restarted.Limits())
	}
	// New launches must not reuse instance IDs.
	if err := restarted.SetTargetSize(ctx, "c1/spot", 3); err != nil {
		t.Fatal(err)
	}
	reconcile(t, restarted)
	ids := map[string]bool{}
	for _, in := range instances(t, restarted, "c1/spot") {
		if ids[in.ID] {
			t.Fatalf("instance ID %s reused after restart", in.ID)
		}
		ids[in.ID] = true
	}
	if err := restarted.LoadState([]byte("{broken")); err == nil {
		t.Error("corrupt state accepted")
	}
}
