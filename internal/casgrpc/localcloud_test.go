package casgrpc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/casgrpc"
	pb "github.com/bosun-platform/bosun/internal/casgrpc/externalgrpcpb"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local"
)

// registry records the Nodes the local cloud registers.
type registry struct {
	mu    sync.Mutex
	nodes map[string]*corev1.Node
}

func (r *registry) Register(_ context.Context, cluster string, n *corev1.Node) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[cluster+"/"+n.Name] = n
	return nil
}

func (r *registry) Deregister(_ context.Context, cluster, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodes, cluster+"/"+name)
	return nil
}

func (r *registry) byProviderID(id string) *corev1.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.nodes {
		if n.Spec.ProviderID == id {
			return n
		}
	}
	return nil
}

const bootDelay = 40 * time.Second

func newCloud(t *testing.T) (*localcloud.Cloud, *clocktesting.FakeClock, *registry) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	reg := &registry{nodes: map[string]*corev1.Node{}}
	c := localcloud.New(localcloud.Config{BootDelay: bootDelay, LaunchRetry: 10 * time.Second}, clk, reg)
	for _, cl := range []*fleet.Cluster{
		{ID: "c1", Region: "eu-central-1", NodePools: []fleet.NodePool{
			{Name: "spot", Role: "worker", ApplicationGroup: "app", Lifecycle: "spot",
				InstanceTypes: []string{"m5.xlarge", "m6i.xlarge"}, Zones: []string{"eu-central-1a", "eu-central-1b"},
				MinSize: 0, MaxSize: 10, Priority: 20, Labels: map[string]string{"team": "shop"},
				Taints: []fleet.Taint{{Key: "dedicated", Value: "app", Effect: "NoSchedule"}}},
			{Name: "od", Role: "worker", ApplicationGroup: "app", Lifecycle: "on-demand",
				InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"eu-central-1a"},
				MinSize: 0, MaxSize: 10, Priority: 10},
		}},
		{ID: "c2", Region: "eu-central-1", NodePools: []fleet.NodePool{
			{Name: "spot", Role: "worker", Lifecycle: "spot", InstanceTypes: []string{"m5.xlarge"},
				Zones: []string{"eu-central-1a"}, MinSize: 1, MaxSize: 3},
		}},
	} {
		if err := c.AddCluster(cl); err != nil {
			t.Fatal(err)
		}
	}
	return c, clk, reg
}

func reconcile(t *testing.T, c *localcloud.Cloud) {
	t.Helper()
	if err := c.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLocalCloudScaleUpBootAndFindNode(t *testing.T) {
	cloud, clk, reg := newCloud(t)
	c := serve(t, cloud)

	resp, err := c.NodeGroups(call(t), &pb.NodeGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetNodeGroups()) != 2 {
		t.Fatalf("groups %v, want c1's two", resp.GetNodeGroups())
	}
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 2}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 2 {
		t.Fatalf("target size %d, want 2", got)
	}
	// Not launched yet: two placeholders, no error.
	ins := nodes(t, c, "c1/spot")
	if len(ins) != 2 || states(ins)[pb.InstanceStatus_instanceCreating] != 2 || ins[0].GetStatus().GetErrorInfo() != nil {
		t.Fatalf("before launch: %v, want 2 creating without error", ins)
	}
	reconcile(t, cloud)
	ins = nodes(t, c, "c1/spot")
	if states(ins)[pb.InstanceStatus_instanceCreating] != 2 {
		t.Fatalf("booting: %v, want 2 creating", ins)
	}
	clk.Step(bootDelay)
	reconcile(t, cloud)
	ins = nodes(t, c, "c1/spot")
	if states(ins)[pb.InstanceStatus_instanceRunning] != 2 {
		t.Fatalf("booted: %v, want 2 running", ins)
	}
	for _, in := range ins {
		n := reg.byProviderID(in.GetId())
		if n == nil {
			t.Fatalf("no registered Node has provider ID %s", in.GetId())
		}
		fr, err := c.NodeGroupForNode(call(t), &pb.NodeGroupForNodeRequest{Node: &pb.ExternalGrpcNode{
			ProviderID: n.Spec.ProviderID, Name: n.Name, Labels: n.Labels, Annotations: n.Annotations,
		}})
		if err != nil {
			t.Fatal(err)
		}
		if fr.GetNodeGroup().GetId() != "c1/spot" || fr.GetNodeGroup().GetMaxSize() != 10 {
			t.Errorf("node %s in group %v, want c1/spot", n.Name, fr.GetNodeGroup())
		}
	}

	// Scale down one node the way cluster-autoscaler does.
	victim := ins[0].GetId()
	if _, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: []*pb.ExternalGrpcNode{{ProviderID: victim}}}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 1 {
		t.Errorf("target size %d, want 1", got)
	}
	ins = nodes(t, c, "c1/spot")
	if s := states(ins); s[pb.InstanceStatus_instanceDeleting] != 1 || s[pb.InstanceStatus_instanceRunning] != 1 {
		t.Errorf("after delete: %v, want 1 deleting and 1 running", ins)
	}
	reconcile(t, cloud)
	if reg.byProviderID(victim) != nil {
		t.Error("deleted node still registered")
	}
	if got := len(nodes(t, c, "c1/spot")); got != 1 {
		t.Errorf("%d instances, want 1", got)
	}
}

func TestLocalCloudICEBacksOffAndCancels(t *testing.T) {
	cloud, _, _ := newCloud(t)
	if err := cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, 0, false); err != nil {
		t.Fatal(err)
	}
	c := serve(t, cloud)
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 2}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, cloud)
	ins := nodes(t, c, "c1/spot")
	if len(ins) != 2 {
		t.Fatalf("instances %v, want a failed attempt and a placeholder", ins)
	}
	var del []*pb.ExternalGrpcNode
	for _, in := range ins {
		e := in.GetStatus().GetErrorInfo()
		if in.GetStatus().GetInstanceState() != pb.InstanceStatus_instanceCreating ||
			e.GetErrorCode() != string(provider.InsufficientCapacity) || e.GetInstanceErrorClass() != casgrpc.ErrorClassOutOfResources {
			t.Errorf("instance %v: want creating, InsufficientInstanceCapacity, out of resources", in)
		}
		del = append(del, &pb.ExternalGrpcNode{ProviderID: in.GetId()})
	}
	if _, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: del}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 0 {
		t.Errorf("target size %d after cancelling, want 0", got)
	}
	// The fallback group still launches.
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/od", Delta: 2}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, cloud)
	if s := states(nodes(t, c, "c1/od")); s[pb.InstanceStatus_instanceCreating] != 2 {
		t.Errorf("on-demand: %v, want 2 creating", s)
	}
	if got := nodes(t, c, "c1/od"); got[0].GetStatus().GetErrorInfo() != nil {
		t.Errorf("on-demand instance %v has an error", got[0])
	}
}

func TestLocalCloudTemplateNodeMatchesRealNode(t *testing.T) {
	cloud, clk, reg := newCloud(t)
	c := serve(t, cloud)
	resp, err := c.NodeGroupTemplateNodeInfo(call(t), &pb.NodeGroupTemplateNodeInfoRequest{Id: "c1/spot"})
	if err != nil {
		t.Fatal(err)
	}
	// The newer generation reads the bytes, the older one the message.
	var tmpl corev1.Node
	if err := tmpl.Unmarshal(resp.GetNodeBytes()); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(&tmpl, resp.GetNodeInfo()) {
		t.Fatal("nodeBytes and nodeInfo differ")
	}

	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 1}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, cloud)
	clk.Step(bootDelay)
	reconcile(t, cloud)
	real := reg.byProviderID(nodes(t, c, "c1/spot")[0].GetId())
	if real == nil {
		t.Fatal("no node registered")
	}
	for k, v := range real.Labels {
		if k == "kubernetes.io/hostname" {
			continue
		}
		if tmpl.Labels[k] != v {
			t.Errorf("template label %s=%q, real node has %q", k, tmpl.Labels[k], v)
		}
	}
	if tmpl.Labels["team"] != "shop" || tmpl.Labels[localcloud.LabelRegion] != "eu-central-1" || tmpl.Labels[localcloud.LabelCapacityType] != "spot" {
		t.Errorf("template labels %v", tmpl.Labels)
	}
	if !equality.Semantic.DeepEqual(tmpl.Spec.Taints, real.Spec.Taints) || len(tmpl.Spec.Taints) != 1 {
		t.Errorf("template taints %v, real %v", tmpl.Spec.Taints, real.Spec.Taints)
	}
	if !equality.Semantic.DeepEqual(tmpl.Status.Capacity, real.Status.Capacity) ||
		!equality.Semantic.DeepEqual(tmpl.Status.Allocatable, real.Status.Allocatable) {
		t.Errorf("template capacity %v / allocatable %v, real %v / %v",
			tmpl.Status.Capacity, tmpl.Status.Allocatable, real.Status.Capacity, real.Status.Allocatable)
	}
	if cpu := tmpl.Status.Capacity[corev1.ResourceCPU]; cpu.Value() != 4 {
		t.Errorf("m5.xlarge template CPU %s, want 4", cpu.String())
	}
	if tmpl.Spec.ProviderID != "" || len(tmpl.Status.Conditions) == 0 || tmpl.Status.Conditions[0].Type != corev1.NodeReady {
		t.Errorf("template spec %v, conditions %v: want no provider ID and Ready", tmpl.Spec, tmpl.Status.Conditions)
	}

	_, err = c.NodeGroupTemplateNodeInfo(call(t), &pb.NodeGroupTemplateNodeInfoRequest{Id: "c2/spot"})
	if err == nil {
		t.Error("template of another cluster's group: want an error")
	}
}

// TestTemplateResponseOnTheWire checks the bytes both generations of
// cluster-autoscaler decode: field 1 as an embedded k8s Node message and
// field 2 as Node bytes, with the same content.
func TestTemplateResponseOnTheWire(t *testing.T) {
	g := provider.NodeGroup{ID: "c1/od", Cluster: "c1", Lifecycle: provider.OnDemand,
		InstanceTypes: []string{"m5.large"}, Zones: []string{"us-east-1b"}, MaxSize: 1}
	node, err := casgrpc.TemplateNode(g, "")
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[localcloud.LabelRegion] != "us-east-1" {
		t.Errorf("region label %q, want us-east-1", node.Labels[localcloud.LabelRegion])
	}
	raw, err := node.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	wire, err := proto.Marshal(&pb.NodeGroupTemplateNodeInfoResponse{NodeInfo: node, NodeBytes: raw})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[protowire.Number][]byte{}
	for len(wire) > 0 {
		num, typ, n := protowire.ConsumeTag(wire)
		if n < 0 || typ != protowire.BytesType {
			t.Fatalf("bad tag at %x", wire)
		}
		wire = wire[n:]
		v, n := protowire.ConsumeBytes(wire)
		if n < 0 {
			t.Fatal("bad field")
		}
		fields[num], wire = v, wire[n:]
	}
	for _, num := range []protowire.Number{1, 2} {
		var got corev1.Node
		if err := got.Unmarshal(fields[num]); err != nil {
			t.Fatalf("field %d: %v", num, err)
		}
		if !equality.Semantic.DeepEqual(&got, node) {
			t.Errorf("field %d does not decode to the template node", num)
		}
	}
}

// TestOverTheLocalCloudAPI serves a cluster-autoscaler from another
// process's point of view: through provider/local, the HTTP client of the
// local cloud that `bosun up` serves.
func TestOverTheLocalCloudAPI(t *testing.T) {
	cloud, clk, _ := newCloud(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, _, err := cloud.Serve(ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, local.New(local.Endpoint{URL: url, Token: "secret"}))
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/od", Delta: 1}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, cloud)
	clk.Step(bootDelay)
	reconcile(t, cloud)
	ins := nodes(t, c, "c1/od")
	if len(ins) != 1 || ins[0].GetStatus().GetInstanceState() != pb.InstanceStatus_instanceRunning {
		t.Fatalf("instances %v, want 1 running", ins)
	}
	if g := groupFor(t, c, ins[0].GetId()); g != "c1/od" {
		t.Errorf("node in group %q, want c1/od", g)
	}
	_, err = c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/od", Delta: 10})
	wantCode(t, err, codes.OutOfRange)
	_, err = c.NodeGroupTargetSize(call(t), &pb.NodeGroupTargetSizeRequest{Id: "c1/none"})
	wantCode(t, err, codes.NotFound)
}

func TestRegionOf(t *testing.T) {
	for zone, want := range map[string]string{
		"eu-central-1a": "eu-central-1", "us-east-1f": "us-east-1", "local-a": "local", "zone": "zone",
	} {
		if got := casgrpc.RegionOf(zone); got != want {
			t.Errorf("RegionOf(%q) = %q, want %q", zone, got, want)
		}
	}
}

func TestLocalCloudCancelsStaleFailedAttempts(t *testing.T) {
	cloud, clk, _ := newCloud(t)
	if err := cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, 0, false); err != nil {
		t.Fatal(err)
	}
	c := serve(t, cloud)
	if _, err := c.NodeGroupIncreaseSize(call(t), &pb.NodeGroupIncreaseSizeRequest{Id: "c1/spot", Delta: 2}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, cloud)
	first := nodes(t, c, "c1/spot")
	// The group retries and fails again under a new attempt ID before
	// cluster-autoscaler gets to delete what it saw.
	clk.Step(10 * time.Second)
	reconcile(t, cloud)
	second := nodes(t, c, "c1/spot")
	if first[0].GetId() == second[0].GetId() {
		t.Fatalf("attempt IDs %s and %s: want a new attempt", first[0].GetId(), second[0].GetId())
	}
	var del []*pb.ExternalGrpcNode
	for _, in := range first {
		del = append(del, &pb.ExternalGrpcNode{ProviderID: in.GetId()})
	}
	if _, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: del}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 0 {
		t.Errorf("target size %d, want 0", got)
	}
	// Cancelling more than the group lacks changes nothing.
	if _, err := c.NodeGroupDeleteNodes(call(t), &pb.NodeGroupDeleteNodesRequest{Id: "c1/spot", Nodes: del}); err != nil {
		t.Fatal(err)
	}
	if got := targetSize(t, c, "c1/spot"); got != 0 {
		t.Errorf("target size %d, want 0", got)
	}
}
