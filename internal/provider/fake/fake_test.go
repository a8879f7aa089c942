package fake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/provider"
)

func TestFakeScalesFailsAndInterrupts(t *testing.T) {
	ctx := context.Background()
	p := New([]provider.NodeGroup{{ID: "c/spot", Lifecycle: provider.Spot, InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MaxSize: 3}}, nil, nil)
	if err := p.SetTargetSize(ctx, "c/spot", 2); err != nil {
		t.Fatal(err)
	}
	ins, _ := p.Instances(ctx, "c/spot")
	if len(ins) != 2 || ins[0].State != provider.Running {
		t.Fatalf("instances %+v", ins)
	}
	p.Unavailable[OfferingKey("m5.large", "a", provider.Spot)] = true
	if err := p.SetTargetSize(ctx, "c/spot", 3); err != nil {
		t.Fatal(err)
	}
	ins, _ = p.Instances(ctx, "c/spot")
	if len(ins) != 3 || ins[2].State != provider.Failed || ins[2].ErrorClass != provider.InsufficientCapacity {
		t.Fatalf("want a failed ICE launch, got %+v", ins)
	}
	if _, err := p.Interrupt(ins[0].ID, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.Interruptions(ctx, time.Time{}); len(n) != 1 {
		t.Errorf("notices %+v", n)
	}
	boom := errors.New("throttled")
	p.NextErr = boom
	if _, err := p.NodeGroups(ctx); !errors.Is(err, boom) {
		t.Errorf("NextErr not returned: %v", err)
	}
	if _, err := p.NodeGroups(ctx); err != nil {
		t.Errorf("NextErr not cleared: %v", err)
	}
	if err := p.SetTargetSize(ctx, "c/spot", 4); !errors.Is(err, provider.ErrOutOfRange) {
		t.Errorf("above max: %v", err)
	}
	if err := p.DeleteInstances(ctx, "c/spot", []string{ins[0].ID}); err != nil {
		t.Fatal(err)
	}
	if g, _ := p.NodeGroup(ctx, "c/spot"); g.TargetSize != 2 {
		t.Errorf("target %d after delete", g.TargetSize)
	}
	if p.Calls["SetTargetSize"] != 3 {
		t.Errorf("calls %v", p.Calls)
	}
}
