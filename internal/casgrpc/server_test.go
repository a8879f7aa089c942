package casgrpc_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/casgrpc"
	pb "github.com/bosun-platform/bosun/internal/casgrpc/externalgrpcpb"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func fakeGroups() []provider.NodeGroup {
	return []provider.NodeGroup{
		{ID: "c1/spot", Cluster: "c1", Pool: "spot", Lifecycle: provider.Spot,
			InstanceTypes: []string{"m5.xlarge", "m6i.xlarge"}, Zones: []string{"eu-central-1a", "eu-central-1b"},
			MinSize: 0, MaxSize: 5, Priority: 20},
		{ID: "c1/od", Cluster: "c1", Pool: "od", Lifecycle: provider.OnDemand,
			InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"eu-central-1a"},
			MinSize: 1, MaxSize: 5, TargetSize: 1, Priority: 10},
		{ID: "c2/spot", Cluster: "c2", Pool: "spot", Lifecycle: provider.Spot,
			InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"eu-central-1a"},
			MinSize: 0, MaxSize: 5, Priority: 20},
	}
}

func fakeOfferings() []provider.Offering {
	return []provider.Offering{
		{InstanceType: "m5.xlarge", Zone: "eu-central-1a", Lifecycle: provider.Spot, PricePerHour: 0.08},
		{InstanceType: "m5.xlarge", Zone: "eu-central-1a", Lifecycle: provider.OnDemand, PricePerHour: 0.23},
	}
}

// newFake returns the fake provider with c1/od at its minimum of one
// running instance.
func newFake(t *testing.T) *fake.Provider {
	t.Helper()
	p := fake.New(fakeGroups(), fakeOfferings(), func() time.Time { return t0 })
	if err := p.SetTargetSize(context.Background(), "c1/od", 1); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve starts the server for cluster c1 on loopback and returns a client.
func serve(t *testing.T, p provider.Provider) pb.CloudProviderClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr, done, err := casgrpc.Serve(ctx, p, "127.0.0.1:0", casgrpc.Options{Cluster: "c1", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return pb.NewCloudProviderClient(conn)
}

func call(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
}

func targetSize(t *testing.T, c pb.CloudProviderClient, id string) int32 {
	t.Helper()
	resp, err := c.NodeGroupTargetSize(call(t), &pb.NodeGroupTargetSizeRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetTargetSize()
}

func nodes(t *testing.T, c pb.CloudProviderClient, id string) []*pb.Instance {
	t.Helper()
	resp, err := c.NodeGroupNodes(call(t), &pb.NodeGroupNodesRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetInstances()
}

func states(ins []*pb.Instance) map[pb.InstanceStatus_InstanceState]int {
	out := map[pb.InstanceStatus_InstanceState]int{}
	for _, in := range ins {
		out[in.GetStatus().GetInstanceState()]++
	}
	return out
}

func groupFor(t *testing.T, c pb.CloudProviderClient, providerID string) string {
	t.Helper()
	resp, err := c.NodeGroupForNode(call(t), &pb.NodeGroupForNodeRequest{Node: &pb.ExternalGrpcNode{ProviderID: providerID, Name: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetNodeGroup().GetId()
}

func TestServiceNameMatchesClusterAutoscaler(t *testing.T) {
	// The method path is what cluster-autoscaler dials; it must not drift.
	if got, want := pb.CloudProvider_NodeGroupIncreaseSize_FullMethodName, "/clusterautoscaler.cloudprovider.v1.externalgrpc.CloudProvider/NodeGroupIncreaseSize"; got != want {
		t.Fatalf("method %q, want %q", got, want)
	}
}

func TestNodeGroupsIncreaseSizeRoundTrip(t *testing.T) {
	p := newFake(t)
	c := serve(t, p)

	resp, err := c.NodeGroups(call(t), &pb.NodeGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range resp.GetNodeGroups() {
		ids = append(ids, g.GetId())
		if g.GetId() == "c1/spot" && (g.GetMinSize() != 0 || g.GetMaxSize() != 5 || g.GetDebug() == "") {
			t.Errorf("c1/spot: %v", g)
		}
	}
	if strings.Join(ids, ",") != "c1/od,c1/spot" {
		t.Fatalf("groups %v, want only cluster c1's", ids)
	}

	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 2}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 2 {
		t.Fatalf("target size %d, want 2", got)
	}
	ins := nodes(t, c, "c1/spot")
	if len(ins) != 2 || states(ins)[pb.InstanceStatus_instanceRunning] != 2 {
		t.Fatalf("instances %v, want 2 running", ins)
	}
	for _, in := range ins {
		if !strings.HasPrefix(in.GetId(), "fake:///") || in.GetStatus().GetErrorInfo() != nil {
			t.Errorf("instance %v: want its provider ID and no error", in)
		}
		if g := groupFor(t, c, in.GetId()); g != "c1/spot" {
			t.Errorf("NodeGroupForNode(%s) = %q, want c1/spot", in.GetId(), g)
		}
	}
	if g := groupFor(t, c, "aws:///eu-central-1a/i-unknown"); g != "" {
		t.Errorf("unknown node in group %q, want none", g)
	}
	if g := groupFor(t, c, ""); g != "" {
		t.Errorf("node without provider ID in group %q, want none", g)
	}
}

func TestOtherClustersAreInvisible(t *testing.T) {
	p := newFake(t)
	if err := p.SetTargetSize(context.Background(), "c2/spot", 1); err != nil {
		t.Fatal(err)
	}
	ins, _ := p.Instances(context.Background(), "c2/spot")
	c := serve(t, p)
	if g := groupFor(t, c, ins[0].ProviderID); g != "" {
		t.Errorf("c2's node in group %q, want none", g)
	}
	_, err := c.NodeGroupTargetSize(call(t), &pb.NodeGroupTargetSizeRequest{Id: "c2/spot"})
	wantCode(t, err, codes.NotFound)
	_, err = c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c2/spot", Delta: 1})
	wantCode(t, err, codes.NotFound)
}

func TestIncreaseSizeErrors(t *testing.T) {
	p := newFake(t)
	c := serve(t, p)
	_, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 6})
	wantCode(t, err, codes.OutOfRange)
	if !strings.Contains(err.Error(), "max size 5") {
		t.Errorf("error %q does not name the max size", err)
	}
	_, err = c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/od", Delta: 5}) // 1+5 > 5
	wantCode(t, err, codes.OutOfRange)
	_, err = c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 0})
	wantCode(t, err, codes.InvalidArgument)
	_, err = c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/nope", Delta: 1})
	wantCode(t, err, codes.NotFound)
	if got := targetSize(t, c, "c1/spot"); got != 0 {
		t.Errorf("target size %d after failed increases, want 0", got)
	}
	// A transient provider failure is Unavailable: worth retrying.
	c = serve(t, throttled{p})
	_, err = c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 1})
	wantCode(t, err, codes.Unavailable)
}

// throttled is a provider whose SetTargetSize fails transiently.
type throttled struct{ *fake.Provider }

func (throttled) SetTargetSize(context.Context, string, int) error {
	return errors.New("rate exceeded")
}

func TestDeleteNodes(t *testing.T) {
	p := newFake(t)
	c := serve(t, p)
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 3}); err != nil {
		t.Fatal(err)
	}
	ins := nodes(t, c, "c1/spot")
	victim := ins[1].GetId()

	// A node of another group is refused and nothing is deleted.
	od := nodes(t, c, "c1/od")
	_, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: []*pb.ExternalGrpcNode{
		{ProviderID: victim}, {ProviderID: od[0].GetId(), Name: "od-node"},
	}})
	wantCode(t, err, codes.InvalidArgument)
	if got := len(nodes(t, c, "c1/spot")); got != 3 {
		t.Fatalf("%d instances after a refused delete, want 3", got)
	}

	if _, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: []*pb.ExternalGrpcNode{{ProviderID: victim, Name: "x"}}}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 2 {
		t.Errorf("target size %d after deleting one of 3, want 2", got)
	}
	for _, in := range nodes(t, c, "c1/spot") {
		if in.GetId() == victim {
			t.Errorf("deleted instance %s still listed", victim)
		}
	}

	// c1/od is at its minimum of 1: deleting its node is refused.
	_, err = c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/od", Nodes: []*pb.ExternalGrpcNode{{ProviderID: od[0].GetId()}}})
	wantCode(t, err, codes.FailedPrecondition)
	if got := len(nodes(t, c, "c1/od")); got != 1 {
		t.Errorf("%d on-demand instances after a refused delete, want 1", got)
	}
}

func TestInsufficientCapacityIsOutOfResources(t *testing.T) {
	p := newFake(t)
	for _, z := range []string{"eu-central-1a", "eu-central-1b"} {
		for _, it := range []string{"m5.xlarge", "m6i.xlarge"} {
			p.Unavailable[fake.OfferingKey(it, z, provider.Spot)] = true
		}
	}
	c := serve(t, p)
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 3}); err != nil {
		t.Fatal(err)
	}
	ins := nodes(t, c, "c1/spot")
	if len(ins) != 3 {
		t.Fatalf("instances %v, want 3 (one failed attempt, two placeholders) to match the target size", ins)
	}
	var ids []*pb.ExternalGrpcNode
	for _, in := range ins {
		st := in.GetStatus()
		e := st.GetErrorInfo()
		if st.GetInstanceState() != pb.InstanceStatus_instanceCreating || e.GetErrorCode() != "InsufficientInstanceCapacity" ||
			e.GetInstanceErrorClass() != casgrpc.ErrorClassOutOfResources || e.GetErrorMessage() == "" {
			t.Errorf("instance %v: want creating with an out-of-resources InsufficientInstanceCapacity error", in)
		}
		ids = append(ids, &pb.ExternalGrpcNode{ProviderID: in.GetId()})
	}
	// cluster-autoscaler deletes the failed instances: the request is
	// cancelled, so the group stops retrying and the fallback group can
	// take over.
	if _, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: ids}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 0 {
		t.Errorf("target size %d after deleting the failed instances, want 0", got)
	}
	if got := nodes(t, c, "c1/spot"); len(got) != 0 {
		t.Errorf("instances %v after cancelling, want none", got)
	}
}

func TestDecreaseTargetSize(t *testing.T) {
	p := newFake(t)
	p.Unavailable[fake.OfferingKey("m5.xlarge", "eu-central-1a", provider.OnDemand)] = true
	c := serve(t, p)
	// c1/od runs 1 instance; ask for 3 more, which cannot launch.
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/od", Delta: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := c.NodeGroupDecreaseTargetSize(call(t), &pb.NodeGroupDecreaseTargetSizeRequest{Id: "c1/od", Delta: 1})
	wantCode(t, err, codes.InvalidArgument)
	_, err = c.NodeGroupDecreaseTargetSize(call(t), &pb.NodeGroupDecreaseTargetSizeRequest{Id: "c1/od", Delta: -4})
	wantCode(t, err, codes.FailedPrecondition) // would delete the running node
	if _, err := c.NodeGroupDecreaseTargetSize(call(t), &pb.NodeGroupDecreaseTargetSizeRequest{Id: "c1/od", Delta: -3}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/od"); got != 1 {
		t.Errorf("target size %d, want 1", got)
	}
	ins := nodes(t, c, "c1/od")
	if len(ins) != 1 || ins[0].GetStatus().GetInstanceState() != pb.InstanceStatus_instanceRunning || ins[0].GetStatus().GetErrorInfo() != nil {
		t.Errorf("instances %v, want the running one only (old failures hidden)", ins)
	}
}

func TestPricing(t *testing.T) {
	p := newFake(t)
	c := serve(t, p)
	od := nodes(t, c, "c1/od")
	start := t0
	end := t0.Add(2 * time.Hour)

	// By instance (provider ID), with the current generation's timestamps.
	resp, err := c.PricingNodePrice(call(t), &pb.PricingNodePriceRequest{
		Node:           &pb.ExternalGrpcNode{ProviderID: od[0].GetId()},
		StartTimestamp: timestamppb.New(start), EndTimestamp: timestamppb.New(end),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetPrice(), 0.46; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("on-demand price %v, want %v", got, want)
	}
	// By labels (a template node), with the legacy generation's times.
	resp, err = c.PricingNodePrice(call(t), &pb.PricingNodePriceRequest{
		Node: &pb.ExternalGrpcNode{Labels: map[string]string{
			"node.kubernetes.io/instance-type": "m5.xlarge", "topology.kubernetes.io/zone": "eu-central-1a",
			"karpenter.sh/capacity-type": "spot",
		}},
		StartTime: &metav1.Time{Time: start}, EndTime: &metav1.Time{Time: end},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetPrice(), 0.16; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("spot price %v, want %v", got, want)
	}
	_, err = c.PricingNodePrice(call(t), &pb.PricingNodePriceRequest{Node: &pb.ExternalGrpcNode{ProviderID: "aws:///x/i-1"}})
	wantCode(t, err, codes.NotFound)

	_, err = c.PricingPodPrice(call(t), &pb.PricingPodPriceRequest{})
	wantCode(t, err, codes.Unimplemented)
	_, err = c.NodeGroupGetOptions(call(t), &pb.NodeGroupAutoscalingOptionsRequest{Id: "c1/od"})
	wantCode(t, err, codes.Unimplemented)
}

func TestNoOpsAndGPUs(t *testing.T) {
	c := serve(t, newFake(t))
	if _, err := c.Refresh(call(t), &pb.RefreshRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cleanup(call(t), &pb.CleanupRequest{}); err != nil {
		t.Fatal(err)
	}
	l, err := c.GPULabel(call(t), &pb.GPULabelRequest{})
	if err != nil || l.GetLabel() != "" {
		t.Fatalf("GPULabel %v, %v", l, err)
	}
	g, err := c.GetAvailableGPUTypes(call(t), &pb.GetAvailableGPUTypesRequest{})
	if err != nil || len(g.GetGpuTypes()) != 0 {
		t.Fatalf("GetAvailableGPUTypes %v, %v", g, err)
	}
}

func TestPriorityExpanderConfig(t *testing.T) {
	groups := append(fakeGroups(), provider.NodeGroup{ID: "c1/spot.big", Cluster: "c1", Priority: 20})
	got := casgrpc.PriorityExpanderPriorities(groups[:2])
	want := "20:\n  - '^c1/spot$'\n10:\n  - '^c1/od$'\n"
	if got != want {
		t.Errorf("priorities:\n%s\nwant:\n%s", got, want)
	}
	cm := casgrpc.PriorityExpanderConfigMap("kube-system", []provider.NodeGroup{groups[0], groups[3]})
	if cm.Name != "cluster-autoscaler-priority-expander" || cm.Namespace != "kube-system" {
		t.Errorf("config map %s/%s", cm.Namespace, cm.Name)
	}
	if got, want := cm.Data["priorities"], "20:\n  - '^c1/spot$'\n  - '^c1/spot\\.big$'\n"; got != want {
		t.Errorf("priorities:\n%s\nwant:\n%s", got, want)
	}
}

func TestDeleteNodesRetryOfGoneNode(t *testing.T) {
	p := newFake(t)
	c := serve(t, p)
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 2}); err != nil {
		t.Fatal(err)
	}
	victim := nodes(t, c, "c1/spot")[0].GetId()
	node := &pb.ExternalGrpcNode{ProviderID: victim, Name: "n1", Annotations: map[string]string{"bosun.dev/node-group": "c1/spot"}}
	for i := 0; i < 2; i++ {
		if _, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: []*pb.ExternalGrpcNode{node}}); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	if got := targetSize(t, c, "c1/spot"); got != 1 {
		t.Errorf("target size %d after deleting one node twice, want 1", got)
	}
	// Without the group's annotation, an unknown node is not the group's.
	_, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: []*pb.ExternalGrpcNode{{ProviderID: victim}}})
	wantCode(t, err, codes.InvalidArgument)
}
