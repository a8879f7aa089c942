package console

import (
	"context"
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/provider"
)

func node(name, cpu, mem string, labels map[string]string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
		}},
	}
}

func pod(ns, name, nodeName, cpu, mem string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
			Name: "main",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
			}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.10f, want %.10f", what, got, want)
	}
}

// The worked example of docs/cost.md (L38, L51): a node of unknown
// instance type with 2 cores and 4 GiB costs 2 x 0.0316 + 4 x 0.0042 =
// 0.08 USD/h, so its unit prices are exactly the defaults.
func TestComputeCostWorkedExample(t *testing.T) {
	n := node("n1", "2", "4Gi", nil)
	// web requests 1 core and 2 GiB but uses 0.25 core and 1 GiB.
	web := pod("shop", "web", "n1", "1", "2Gi", map[string]string{"team": "shop", "app": "web"})
	// batch requests 0.5 core and 1 GiB but uses 1 core and 0.5 GiB.
	batch := pod("data", "batch", "n1", "500m", "1Gi", map[string]string{"owner": "data", "application": "etl"})
	// A pending pod (no node) and a finished one hold no capacity.
	pending := pod("shop", "pending", "", "1", "1Gi", nil)
	done := pod("shop", "done", "n1", "1", "1Gi", nil)
	done.Status.Phase = corev1.PodSucceeded
	usage := UsageByContainer{
		"shop/web/main":   {CPU: 0.25, MemGiB: 1},
		"data/batch/main": {CPU: 1, MemGiB: 0.5},
	}
	r := CostOptions{}.ComputeCost([]ClusterCostInput{{Cluster: "a", Nodes: []*corev1.Node{n}, Pods: []*corev1.Pod{web, batch, pending, done}, Usage: usage}})

	if len(r.Nodes) != 1 {
		t.Fatalf("nodes = %d, want 1", len(r.Nodes))
	}
	nc := r.Nodes[0]
	near(t, "node price", nc.HourlyUSD, 0.08)
	near(t, "CPU unit price", nc.CPUHourly, 0.0316)
	near(t, "memory unit price", nc.MemGiBHourly, 0.0042)
	if nc.PriceSource != PriceDefault || nc.Lifecycle != LifecycleOnDemand {
		t.Errorf("source, lifecycle = %s, %s; want %s, %s", nc.PriceSource, nc.Lifecycle, PriceDefault, LifecycleOnDemand)
	}
	if len(r.Pods) != 2 {
		t.Fatalf("allocated pods = %d, want 2 (pending and finished pods hold nothing)", len(r.Pods))
	}
	byPod := map[string]PodCost{}
	for _, p := range r.Pods {
		byPod[p.Pod] = p
	}
	// web: max(1, 0.25) x 0.0316 + max(2, 1) x 0.0042 = 0.0400;
	// slack: 0.75 x 0.0316 + 1 x 0.0042 = 0.0279.
	near(t, "web cost", byPod["web"].HourlyUSD, 0.04)
	near(t, "web slack", byPod["web"].SlackUSD, 0.0279)
	// batch: max(0.5, 1) x 0.0316 + max(1, 0.5) x 0.0042 = 0.0358;
	// slack: memory only, 0.5 x 0.0042 = 0.0021.
	near(t, "batch cost", byPod["batch"].HourlyUSD, 0.0358)
	near(t, "batch slack", byPod["batch"].SlackUSD, 0.0021)
	// idle: 0.08 - 0.04 - 0.0358 = 0.0042.
	near(t, "node idle", r.Nodes[0].IdleUSD, 0.0042)
	c := r.Clusters[0]
	near(t, "cluster allocated", c.AllocatedUSD, 0.0758)
	near(t, "cluster idle", c.IdleUSD, 0.0042)
	near(t, "cluster slack", c.SlackUSD, 0.03)
	if !c.UsageKnown {
		t.Error("usage known = false, want true")
	}
	if len(r.ByTeam) != 2 || r.ByTeam[0].Key != "shop" || r.ByTeam[1].Key != "data" {
		t.Errorf("by team = %+v, want shop then data (team label, then owner)", r.ByTeam)
	}
	if len(r.ByApp) != 2 || r.ByApp[0].Key != "web" || r.ByApp[1].Key != "etl" {
		t.Errorf("by app = %+v, want web then etl", r.ByApp)
	}
	if len(r.ByNamespace) != 2 || r.ByNamespace[0].Cluster != "a" || r.ByNamespace[0].Key != "shop" {
		t.Errorf("by namespace = %+v", r.ByNamespace)
	}
}

// Without the metrics API, requests stand in for usage: cost is the
// request and slack is zero.
func TestComputeCostWithoutUsage(t *testing.T) {
	r := CostOptions{}.ComputeCost([]ClusterCostInput{{Cluster: "a",
		Nodes: []*corev1.Node{node("n1", "2", "4Gi", nil)},
		Pods:  []*corev1.Pod{pod("shop", "web", "n1", "1", "2Gi", nil)}}})
	near(t, "cost", r.Pods[0].HourlyUSD, 0.04)
	near(t, "slack", r.Pods[0].SlackUSD, 0)
	if r.Clusters[0].UsageKnown {
		t.Error("usage known = true, want false")
	}
	if r.Pods[0].Team != "(none)" {
		t.Errorf("team = %q, want (none)", r.Pods[0].Team)
	}
}

// L53: spot savings against the on-demand price of the same nodes; L36:
// negotiated or reserved prices from the override file.
func TestComputeCostSpotSavingsAndOverrides(t *testing.T) {
	spot := node("spot-1", "4", "16Gi", map[string]string{
		corev1.LabelInstanceTypeStable: "m5.xlarge", "karpenter.sh/capacity-type": "spot", corev1.LabelTopologyRegion: "us-east-1"})
	eksSpot := node("spot-2", "4", "16Gi", map[string]string{
		corev1.LabelInstanceTypeStable: "m5.xlarge", "eks.amazonaws.com/capacityType": "SPOT"})
	od := node("od-1", "4", "16Gi", map[string]string{
		corev1.LabelInstanceTypeStable: "m5.xlarge", "node.kubernetes.io/lifecycle": "normal"})
	reserved := node("res-1", "2", "8Gi", map[string]string{corev1.LabelInstanceTypeStable: "m5.large"})
	opts := CostOptions{Overrides: []PriceOverrideEntry{
		{InstanceType: "m5.large", HourlyUSD: 0.5, Note: "any lifecycle"},
		{InstanceType: "m5.large", Lifecycle: "on-demand", HourlyUSD: 0.06, Note: "3-year reserved"},
	}}
	r := opts.ComputeCost([]ClusterCostInput{{Cluster: "a", Nodes: []*corev1.Node{spot, eksSpot, od, reserved}}})
	got := map[string]NodeCost{}
	for _, n := range r.Nodes {
		got[n.Node] = n
	}
	// m5.xlarge lists at 0.192 USD/h in us-east-1; spot is estimated at
	// 35% of that (default discount 65%): 0.0672.
	near(t, "spot price", got["spot-1"].HourlyUSD, 0.0672)
	near(t, "EKS spot price", got["spot-2"].HourlyUSD, 0.0672)
	near(t, "on-demand price", got["od-1"].HourlyUSD, 0.192)
	near(t, "reserved price", got["res-1"].HourlyUSD, 0.06)
	if got["res-1"].PriceSource != PriceOverride || got["res-1"].PriceNote != "3-year reserved" {
		t.Errorf("reserved node source = %s (%s), want the exact-lifecycle override", got["res-1"].PriceSource, got["res-1"].PriceNote)
	}
	if got["spot-1"].PriceSource != PriceSpot || got["od-1"].PriceSource != PriceCatalog {
		t.Errorf("sources = %s, %s; want %s, %s", got["spot-1"].PriceSource, got["od-1"].PriceSource, PriceSpot, PriceCatalog)
	}
	c := r.Clusters[0]
	if c.SpotNodes != 2 || c.OnDemandNodes != 2 || c.OverrideNodes != 1 {
		t.Errorf("spot, on-demand, override nodes = %d, %d, %d; want 2, 2, 1", c.SpotNodes, c.OnDemandNodes, c.OverrideNodes)
	}
	// Savings: 2 x (0.192 - 0.0672) = 0.2496 USD/h, 65% of 0.384.
	near(t, "spot savings", c.SpotSavingsUSD, 0.2496)
	near(t, "spot savings %", c.SpotSavingsPct, 65)
	near(t, "fleet spot savings %", r.Total.SpotSavingsPct, 65)
	// Idle equals price on nodes without pods.
	near(t, "cluster idle", c.IdleUSD, 0.0672*2+0.192+0.06)
}

func TestNormalizeLifecycle(t *testing.T) {
	for in, want := range map[string]string{
		"spot": LifecycleSpot, "SPOT": LifecycleSpot, "Ec2Spot": LifecycleSpot,
		"on-demand": LifecycleOnDemand, "ON_DEMAND": LifecycleOnDemand, "normal": LifecycleOnDemand, "weird": "",
	} {
		if got := normalizeLifecycle(in); got != want {
			t.Errorf("normalizeLifecycle(%q) = %q, want %q", in, got, want)
		}
	}
}

// The provider's offering prices win over the catalogue and the spot
// discount: the node's own zone when offered, else the mean over zones.
func TestPriceNodeFromProviderOfferings(t *testing.T) {
	opts := CostOptions{Offerings: []provider.Offering{
		{InstanceType: "m5.xlarge", Zone: "eu-1a", Lifecycle: provider.Spot, PricePerHour: 0.05},
		{InstanceType: "m5.xlarge", Zone: "eu-1b", Lifecycle: provider.Spot, PricePerHour: 0.07},
		{InstanceType: "m5.xlarge", Zone: "eu-1a", Lifecycle: provider.OnDemand, PricePerHour: 0.20},
	}}.withDefaults()
	spotA := node("a", "4", "16Gi", map[string]string{corev1.LabelInstanceTypeStable: "m5.xlarge", "karpenter.sh/capacity-type": "spot", corev1.LabelTopologyZone: "eu-1a"})
	spotNoZone := node("b", "4", "16Gi", map[string]string{corev1.LabelInstanceTypeStable: "m5.xlarge", "karpenter.sh/capacity-type": "spot"})
	other := node("c", "2", "8Gi", map[string]string{corev1.LabelInstanceTypeStable: "m5.large", "karpenter.sh/capacity-type": "spot"})

	p := opts.PriceNode(spotA)
	near(t, "spot in its zone", p.HourlyUSD, 0.05)
	near(t, "on-demand equivalent", p.OnDemandUSD, 0.20)
	if p.Source != PriceProvider {
		t.Errorf("source = %s, want %s", p.Source, PriceProvider)
	}
	near(t, "spot without a zone (mean of zones)", opts.PriceNode(spotNoZone).HourlyUSD, 0.06)
	// m5.large is not offered: catalogue (0.096) less the default discount.
	q := opts.PriceNode(other)
	near(t, "unoffered type", q.HourlyUSD, 0.096*0.35)
	if q.Source != PriceSpot {
		t.Errorf("source = %s, want %s", q.Source, PriceSpot)
	}
}

type stubPrices struct{ offerings []provider.Offering }

func (s stubPrices) Offerings(context.Context) ([]provider.Offering, error) { return s.offerings, nil }

func TestConsoleReadsProviderPrices(t *testing.T) {
	src := fakeCluster(t, "a", node("n1", "4", "16Gi", map[string]string{corev1.LabelInstanceTypeStable: "m5.xlarge"}))
	c, err := New(Options{Clusters: []ClusterSource{src}, Clock: clocktesting.NewFakeClock(t0),
		Prices: stubPrices{[]provider.Offering{{InstanceType: "m5.xlarge", Zone: "z", Lifecycle: provider.OnDemand, PricePerHour: 0.3}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep := c.Cost()
		if len(rep.Nodes) == 1 && rep.Nodes[0].PriceSource == PriceProvider {
			near(t, "node price", rep.Nodes[0].HourlyUSD, 0.3)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider price never used: %+v", rep.Nodes)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
