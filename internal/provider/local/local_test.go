package local

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

type nopRegistry struct{}

func (nopRegistry) Register(context.Context, string, *corev1.Node) error { return nil }
func (nopRegistry) Deregister(context.Context, string, string) error     { return nil }

func newServer(t *testing.T) (*Client, *localcloud.Cloud, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	cloud := localcloud.New(localcloud.Config{BootDelay: time.Second}, clk, nopRegistry{})
	err := cloud.AddCluster(&fleet.Cluster{ID: "c1", Region: "local", NodePools: []fleet.NodePool{{
		Name: "spot", Lifecycle: "spot", InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MinSize: 0, MaxSize: 3,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cloud.Handler("secret"))
	t.Cleanup(srv.Close)
	return New(Endpoint{URL: srv.URL, Token: "secret"}), cloud, clk
}

func TestClientRoundTrip(t *testing.T) {
	c, cloud, clk := newServer(t)
	ctx := context.Background()
	gs, err := c.NodeGroups(ctx)
	if err != nil || len(gs) != 1 || gs[0].ID != "c1/spot" || gs[0].Lifecycle != provider.Spot {
		t.Fatalf("NodeGroups = %+v, %v", gs, err)
	}
	if err := c.SetTargetSize(ctx, "c1/spot", 2); err != nil {
		t.Fatal(err)
	}
	if g, err := c.NodeGroup(ctx, "c1/spot"); err != nil || g.TargetSize != 2 {
		t.Fatalf("NodeGroup = %+v, %v", g, err)
	}
	if err := cloud.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Step(2 * time.Second)
	if err := cloud.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	ins, err := c.Instances(ctx, "c1/spot")
	if err != nil || len(ins) != 2 || ins[0].State != provider.Running {
		t.Fatalf("Instances = %+v, %v", ins, err)
	}
	n, err := c.Interrupt(ctx, ins[0].NodeName)
	if err != nil || n.InstanceID != ins[0].ID {
		t.Fatalf("Interrupt = %+v, %v", n, err)
	}
	notices, err := c.Interruptions(ctx, n.Issued)
	if err != nil || len(notices) != 1 {
		t.Fatalf("Interruptions = %+v, %v", notices, err)
	}
	if later, _ := c.Interruptions(ctx, n.Issued.Add(time.Second)); len(later) != 0 {
		t.Errorf("notices after since: %+v", later)
	}
	if err := c.DeleteInstances(ctx, "c1/spot", []string{ins[1].ID}); err != nil {
		t.Fatal(err)
	}
	limits, err := c.SetCapacity(ctx, localcloud.CapacityRequest{OfferingKey: localcloud.OfferingKey{Lifecycle: provider.Spot}, Limit: 0})
	if err != nil || len(limits) != 1 {
		t.Fatalf("SetCapacity = %+v, %v", limits, err)
	}
	offs, err := c.Offerings(ctx)
	if err != nil || len(offs) != 2 {
		t.Fatalf("Offerings = %+v, %v", offs, err)
	}
	for _, o := range offs {
		if o.Lifecycle == provider.Spot && o.Available {
			t.Errorf("spot available despite limit 0: %+v", o)
		}
	}
	st, err := c.Status(ctx)
	if err != nil || len(st.Groups) != 1 || len(st.Limits) != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

func TestClientMapsErrors(t *testing.T) {
	c, _, _ := newServer(t)
	ctx := context.Background()
	if _, err := c.NodeGroup(ctx, "nope"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("unknown group: %v", err)
	}
	if err := c.SetTargetSize(ctx, "c1/spot", 9); !errors.Is(err, provider.ErrOutOfRange) {
		t.Errorf("above max: %v", err)
	}
	_, err := c.SetCapacity(ctx, localcloud.CapacityRequest{OfferingKey: localcloud.OfferingKey{Lifecycle: "reserved"}})
	if err == nil || !strings.Contains(err.Error(), "expected spot or on-demand") {
		t.Errorf("bad lifecycle: %v", err)
	}
	bad := New(Endpoint{URL: c.endpoint.URL, Token: "wrong"})
	if _, err := bad.NodeGroups(ctx); err == nil || !strings.Contains(err.Error(), "bearer token") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestEndpointFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadEndpoint(dir); err == nil || !strings.Contains(err.Error(), "bosun up") {
		t.Errorf("missing endpoint: %v", err)
	}
	want := Endpoint{URL: "http://127.0.0.1:1", Token: "t"}
	if err := WriteEndpoint(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEndpoint(dir)
	if err != nil || got != want {
		t.Fatalf("ReadEndpoint = %+v, %v", got, err)
	}
}

// --local-cloud names the state directory of `bosun up` in every command:
// a missing directory or a file (cloud.json itself) is refused with what
// was expected.
func TestReadEndpointWantsTheStateDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := WriteEndpoint(dir, Endpoint{URL: "http://127.0.0.1:1", Token: "t"}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, EndpointFile)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "none"), "no such directory; expected the state directory of `bosun up`"},
		{file, "is a file, not a directory; expected the state directory of `bosun up` that holds it: " + dir},
	} {
		if _, err := ReadEndpoint(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadEndpoint(%s) = %v, want an error containing %q", c.path, err, c.want)
		}
	}
}

type readyCPs struct{}

func (readyCPs) ControlPlane(_ context.Context, cluster string) (provider.ControlPlaneInfo, error) {
	if cluster != "c1" {
		return provider.ControlPlaneInfo{}, provider.ErrNotFound
	}
	return provider.ControlPlaneInfo{Version: localcloud.BuiltVersion(), Ready: true}, nil
}

// The infrastructure seam over the local cloud's HTTP API (issue 12): a
// standalone `bosun controller --local-cloud` plans and applies a local
// cluster's node groups as the controller inside `bosun up` does: a pool
// changed is updated, a pool added created, a pool removed deleted, a plan
// changes nothing; an unsupported version keeps provider.ErrUnsupported
// across the wire; a cloud that serves no infrastructure says so.
func TestInfraRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	cloud := localcloud.New(localcloud.Config{BootDelay: time.Second}, clk, nopRegistry{})
	srv := httptest.NewServer(cloud.Handler("secret"))
	t.Cleanup(srv.Close)
	in := NewInfra(Endpoint{URL: srv.URL, Token: "secret"})
	cl := &fleet.Cluster{ID: "c1", Provider: "local", Region: "local", KubernetesVersion: localcloud.BuiltVersion(), NodePools: []fleet.NodePool{
		{Name: "spot", Role: fleet.RoleWorker, Lifecycle: "spot", InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MinSize: 0, MaxSize: 3},
	}}
	spec := func() provider.ClusterSpec {
		t.Helper()
		s, err := provider.SpecFor(cl)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := in.Plan(ctx, spec()); err == nil || !strings.Contains(err.Error(), "serves no infrastructure API") {
		t.Fatalf("without ServeInfra: %v, want a clear refusal", err)
	}
	cloud.ServeInfra(localcloud.NewInfra(cloud, readyCPs{}))

	changes := func(cs []provider.Change) string {
		var out []string
		for _, c := range cs {
			out = append(out, string(c.Action)+" "+c.Name)
		}
		return strings.Join(out, ", ")
	}
	if got, err := in.Apply(ctx, spec()); err != nil || changes(got) != "create c1/spot" {
		t.Fatalf("first apply: %q, %v", changes(got), err)
	}
	cl.NodePools[0].MaxSize = 5
	cl.NodePools = append(cl.NodePools, fleet.NodePool{Name: "od", Role: fleet.RoleWorker, Lifecycle: "on-demand", InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MinSize: 0, MaxSize: 2})
	plan, err := in.Plan(ctx, spec())
	if err != nil || changes(plan) != "create c1/od, update c1/spot" {
		t.Fatalf("plan: %q, %v", changes(plan), err)
	}
	if gs, _ := cloud.NodeGroups(ctx); len(gs) != 1 || gs[0].MaxSize != 3 {
		t.Fatalf("the plan changed the cloud: %+v", gs)
	}
	if got, err := in.Apply(ctx, spec()); err != nil || changes(got) != changes(plan) {
		t.Fatalf("apply: %q, %v; want the plan %q", changes(got), err, changes(plan))
	}
	if g, err := cloud.NodeGroup(ctx, "c1/spot"); err != nil || g.MaxSize != 5 {
		t.Fatalf("c1/spot after the apply: %+v, %v", g, err)
	}
	cl.NodePools = cl.NodePools[:1]
	if got, err := in.Apply(ctx, spec()); err != nil || changes(got) != "delete c1/od" {
		t.Fatalf("pool removed: %q, %v", changes(got), err)
	}
	if got, err := in.Apply(ctx, spec()); err != nil || len(got) != 0 {
		t.Fatalf("nothing to change: %q, %v", changes(got), err)
	}

	cl.KubernetesVersion = "1.20"
	if _, err := in.Apply(ctx, spec()); !errors.Is(err, provider.ErrUnsupported) || !strings.Contains(err.Error(), "supports only") {
		t.Errorf("unsupported version: %v, want provider.ErrUnsupported with the reason", err)
	}
	if cp, err := in.ControlPlane(ctx, "c1"); err != nil || !cp.Ready || cp.Version != localcloud.BuiltVersion() {
		t.Errorf("ControlPlane(c1) = %+v, %v", cp, err)
	}
	if _, err := in.ControlPlane(ctx, "nope"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("ControlPlane(nope): %v, want provider.ErrNotFound", err)
	}
}
