// Package providertest is the contract every provider.Provider keeps: one
// suite run against the fake, the local cloud and AWS (on moto), so the
// controllers can rely on the same behaviour from each: sentinel errors,
// target size ranges, idempotent scaling and deletion, sorted lists and
// failed launches reported as Failed instances with an error class.
package providertest

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/provider"
)

// Cluster is the cluster ID of the suite's groups.
const Cluster = "ct"

// Harness adapts one provider to the suite.
type Harness struct {
	// Zone is a zone the provider accepts (e.g. us-east-1a on AWS).
	Zone string
	// New returns a provider holding exactly the given groups of Cluster,
	// each at its MinSize.
	New func(t *testing.T, groups []provider.NodeGroup) provider.Provider
	// Settle lets launches and terminations the provider does in the
	// background happen (nil: it does them at once).
	Settle func(t *testing.T)
	// Exhaust makes launches of the offering fail with a capacity error;
	// nil when the provider cannot be made to (the test then skips).
	Exhaust func(t *testing.T, instanceType, zone string, lc provider.Lifecycle)
}

// Groups are the suite's groups: spot (min 0, max 3) and on-demand (min 1,
// max 3), both m5.large in the harness's zone.
func Groups(zone string) []provider.NodeGroup {
	return []provider.NodeGroup{
		{ID: Cluster + "/od", Cluster: Cluster, Pool: "od", Lifecycle: provider.OnDemand, InstanceTypes: []string{"m5.large"}, Zones: []string{zone}, MinSize: 1, MaxSize: 3, TargetSize: 1, Priority: 10},
		{ID: Cluster + "/spot", Cluster: Cluster, Pool: "spot", Lifecycle: provider.Spot, InstanceTypes: []string{"m5.large"}, Zones: []string{zone}, MinSize: 0, MaxSize: 3, Priority: 20},
	}
}

// Run runs the contract against the harness.
func Run(t *testing.T, h Harness) {
	t.Run("NodeGroups", func(t *testing.T) { testNodeGroups(t, h) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, h) })
	t.Run("ScaleIdempotentAndRanges", func(t *testing.T) { testScale(t, h) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, h) })
	t.Run("FailedLaunch", func(t *testing.T) { testFailedLaunch(t, h) })
}

func settle(t *testing.T, h Harness) {
	if h.Settle != nil {
		h.Settle(t)
	}
}

func testNodeGroups(t *testing.T, h Harness) {
	p := h.New(t, Groups(h.Zone))
	gs, err := p.NodeGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || !sort.SliceIsSorted(gs, func(i, j int) bool { return gs[i].ID < gs[j].ID }) {
		t.Fatalf("NodeGroups = %+v, want the two groups sorted by ID", gs)
	}
	for i, want := range Groups(h.Zone) {
		g := gs[i]
		if g.ID != want.ID || g.Cluster != Cluster || g.Pool != want.Pool || g.Lifecycle != want.Lifecycle || g.MinSize != want.MinSize ||
			g.MaxSize != want.MaxSize || g.TargetSize != want.MinSize || len(g.InstanceTypes) != 1 || g.InstanceTypes[0] != "m5.large" || g.Priority != want.Priority {
			t.Errorf("group %d = %+v, want %+v", i, g, want)
		}
	}
}

func testNotFound(t *testing.T, h Harness) {
	p := h.New(t, Groups(h.Zone))
	ctx := context.Background()
	id := Cluster + "/missing"
	_, err1 := p.NodeGroup(ctx, id)
	err2 := p.SetTargetSize(ctx, id, 1)
	_, err3 := p.Instances(ctx, id)
	err4 := p.DeleteInstances(ctx, id, []string{"i-1"})
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, provider.ErrNotFound) {
			t.Errorf("call %d on an unknown group: %v, want ErrNotFound", i+1, err)
		}
	}
}

// liveIDs waits until the group has want live (pending or running)
// instances and returns their IDs.
func liveIDs(t *testing.T, h Harness, p provider.Provider, id string, want int) []string {
	t.Helper()
	var ids []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		settle(t, h)
		ins, err := p.Instances(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !sort.SliceIsSorted(ins, func(i, j int) bool { return ins[i].ID < ins[j].ID }) {
			t.Errorf("Instances not sorted by ID: %+v", ins)
		}
		ids = ids[:0]
		for _, in := range ins {
			if in.State == provider.Pending || in.State == provider.Running {
				ids = append(ids, in.ID)
				if in.Group != id || in.InstanceType != "m5.large" {
					t.Errorf("instance %+v of %s", in, id)
				}
			}
		}
		if len(ids) == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(ids) != want {
		t.Fatalf("%s: %d live instances, want %d", id, len(ids), want)
	}
	return ids
}

func target(t *testing.T, p provider.Provider, id string) int {
	t.Helper()
	g, err := p.NodeGroup(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g.TargetSize
}

func testScale(t *testing.T, h Harness) {
	p := h.New(t, Groups(h.Zone))
	ctx := context.Background()
	id := Cluster + "/spot"
	for _, size := range []int{-1, 4} {
		if err := p.SetTargetSize(ctx, id, size); !errors.Is(err, provider.ErrOutOfRange) {
			t.Errorf("SetTargetSize(%d): %v, want ErrOutOfRange", size, err)
		}
	}
	if got := target(t, p, id); got != 0 {
		t.Errorf("target after refused sizes = %d, want 0", got)
	}
	for range 2 {
		if err := p.SetTargetSize(ctx, id, 2); err != nil {
			t.Fatal(err)
		}
	}
	if got := target(t, p, id); got != 2 {
		t.Errorf("target = %d, want 2", got)
	}
	liveIDs(t, h, p, id, 2)
	if err := p.SetTargetSize(ctx, id, 3); err != nil {
		t.Fatal(err)
	}
	liveIDs(t, h, p, id, 3)
}

func testDelete(t *testing.T, h Harness) {
	p := h.New(t, Groups(h.Zone))
	ctx := context.Background()
	id := Cluster + "/od"
	if err := p.SetTargetSize(ctx, id, 2); err != nil {
		t.Fatal(err)
	}
	ids := liveIDs(t, h, p, id, 2)
	if err := p.DeleteInstances(ctx, id, ids); !errors.Is(err, provider.ErrOutOfRange) {
		t.Errorf("deleting both of a min-1 group: %v, want ErrOutOfRange", err)
	}
	liveIDs(t, h, p, id, 2)
	if err := p.DeleteInstances(ctx, id, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if got := target(t, p, id); got != 1 {
		t.Errorf("target after deleting one = %d, want 1", got)
	}
	liveIDs(t, h, p, id, 1)
	if err := p.DeleteInstances(ctx, id, ids[:1]); err != nil {
		t.Errorf("deleting an instance already gone: %v, want nil (a retry is safe)", err)
	}
	if got := target(t, p, id); got != 1 {
		t.Errorf("target after the retry = %d, want 1", got)
	}
}

func testFailedLaunch(t *testing.T, h Harness) {
	if h.Exhaust == nil {
		t.Skip("this provider's capacity cannot be exhausted in a test; its failed launches are tested with recorded responses")
	}
	p := h.New(t, Groups(h.Zone))
	ctx := context.Background()
	id := Cluster + "/spot"
	h.Exhaust(t, "m5.large", h.Zone, provider.Spot)
	if err := p.SetTargetSize(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		settle(t, h)
		ins, err := p.Instances(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range ins {
			if in.State == provider.Failed {
				if in.ErrorClass != provider.InsufficientCapacity || in.Group != id {
					t.Errorf("failed launch = %+v, want InsufficientCapacity", in)
				}
				return
			}
		}
	}
	t.Fatal("no Failed instance after exhausting capacity")
}
