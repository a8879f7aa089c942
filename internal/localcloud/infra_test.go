package localcloud

import (
	"context"
	"errors"
	"strings"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
)

// fakeControlPlanes says every listed cluster runs at version.
type fakeControlPlanes map[string]string

func (f fakeControlPlanes) ControlPlane(_ context.Context, cluster string) (provider.ControlPlaneInfo, error) {
	v, ok := f[cluster]
	if !ok {
		return provider.ControlPlaneInfo{}, provider.ErrNotFound
	}
	return provider.ControlPlaneInfo{Version: v, Ready: true}, nil
}

func localCluster() *fleet.Cluster {
	cl := testCluster()
	cl.Provider, cl.KubernetesVersion = "local", BuiltVersion()
	return cl
}

func specOf(t *testing.T, cl *fleet.Cluster) provider.ClusterSpec {
	t.Helper()
	s, err := provider.SpecFor(cl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInfraRefusesAnotherKubernetesVersion(t *testing.T) {
	c := New(Config{}, clocktesting.NewFakeClock(t0), newFakeRegistry())
	inf := NewInfra(c, fakeControlPlanes{"c1": BuiltVersion()})
	cl := localCluster()
	cl.KubernetesVersion = "1.34"
	for name, f := range map[string]func(context.Context, provider.ClusterSpec) ([]provider.Change, error){"plan": inf.Plan, "apply": inf.Apply} {
		_, err := f(context.Background(), specOf(t, cl))
		if !errors.Is(err, provider.ErrUnsupported) || !strings.Contains(err.Error(), "supports only "+BuiltVersion()) {
			t.Errorf("%s: err = %v, want ErrUnsupported saying it supports only %s", name, err, BuiltVersion())
		}
	}
	if gs, _ := c.NodeGroups(context.Background()); len(gs) != 0 {
		t.Errorf("a refused spec created groups: %v", gs)
	}
}

func TestInfraNeedsARunningControlPlane(t *testing.T) {
	c := New(Config{}, clocktesting.NewFakeClock(t0), newFakeRegistry())
	_, err := NewInfra(c, fakeControlPlanes{}).Apply(context.Background(), specOf(t, localCluster()))
	if !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// Create, then nothing to do, then update (a new template keeps the
// instances, whose nodes keep the old hash: L44) and delete.
func TestInfraCreatesUpdatesDeletesGroups(t *testing.T) {
	ctx := context.Background()
	reg := newFakeRegistry()
	c := New(Config{BootDelay: 1}, clocktesting.NewFakeClock(t0), reg)
	inf := NewInfra(c, fakeControlPlanes{"c1": BuiltVersion()})
	cl := localCluster()
	spec := specOf(t, cl)
	plan, err := inf.Plan(ctx, spec)
	if err != nil || len(plan) != 2 || plan[0].Action != provider.Create {
		t.Fatalf("plan = %v, %v; want 2 creates", plan, err)
	}
	if gs, _ := c.NodeGroups(ctx); len(gs) != 0 {
		t.Fatalf("Plan created groups: %v", gs)
	}
	if ch, err := inf.Apply(ctx, spec); err != nil || len(ch) != 2 {
		t.Fatalf("apply = %v, %v", ch, err)
	}
	if ch, err := inf.Apply(ctx, spec); err != nil || len(ch) != 0 {
		t.Fatalf("second apply = %v, %v; want no changes", ch, err)
	}
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	oldHash := spec.Groups[1].TemplateHash
	for name, n := range reg.nodes {
		if n.Labels[provider.LabelTemplateHash] != oldHash {
			t.Errorf("node %s: template hash %q, want %q", name, n.Labels[provider.LabelTemplateHash], oldHash)
		}
	}

	cl.NodePools[1].InstanceTypes = []string{"m6i.xlarge"}
	cl.NodePools = cl.NodePools[1:] // the spot pool goes
	spec = specOf(t, cl)
	ch, err := inf.Apply(ctx, spec)
	if err != nil || len(ch) != 2 {
		t.Fatalf("apply = %v, %v; want an update and a delete", ch, err)
	}
	if ch[1].Action != provider.Delete || ch[1].Name != "c1/spot" || ch[0].Action != provider.Update || !strings.Contains(ch[0].Detail, "instanceTypes") {
		t.Errorf("changes = %v", ch)
	}
	g, err := c.NodeGroup(ctx, "c1/od")
	if err != nil || g.Labels[provider.LabelTemplateHash] == oldHash {
		t.Fatalf("group %+v, %v: want the new template hash", g, err)
	}
	in, _ := c.Instances(ctx, "c1/od")
	if len(in) != 1 || in[0].InstanceType != "m5.xlarge" {
		t.Errorf("the update replaced instances: %+v", in)
	}
	if _, err := c.NodeGroup(ctx, "c1/spot"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("deleted group still there: %v", err)
	}
}
