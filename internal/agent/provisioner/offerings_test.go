package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
)

// L11 whatever the number of spot groups: after the first capacity error
// the provisioner asks the provider which offerings are out and skips all
// of them, so 12 exhausted spot groups of distinct types cost one failed
// launch, not twelve passes.
func TestOneCapacityErrorSkipsEveryExhaustedOffering(t *testing.T) {
	var groups []provider.NodeGroup
	var offerings []provider.Offering
	for i := 0; i < 12; i++ {
		g := group(fmt.Sprintf("spot-%02d", i), provider.Spot, 40+i)
		g.InstanceTypes = []string{fmt.Sprintf("type-%02d.xlarge", i)}
		groups = append(groups, g)
	}
	groups = append(groups, group("od", provider.OnDemand, 10))
	for _, g := range groups {
		for _, z := range g.Zones {
			offerings = append(offerings, provider.Offering{InstanceType: g.InstanceTypes[0], Zone: z, Lifecycle: g.Lifecycle})
		}
	}
	clk := clocktesting.NewFakeClock(t0)
	fp := fake.New(groups, offerings, clk.Now)
	for _, o := range offerings {
		if o.Lifecycle == provider.Spot {
			fp.Unavailable[fake.OfferingKey(o.InstanceType, o.Zone, o.Lifecycle)] = true
		}
	}
	p, err := NewProvisioner(controller.Deps{Provider: fp, Cluster: "c1", Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, Options{Templates: template})
	if err != nil {
		t.Fatal(err)
	}
	ps := pods(2, "1", "1Gi")
	ds, err := p.Reconcile(context.Background(), ps, nil)
	if err != nil || len(ds) != 1 || ds[0].Group != "spot-11" {
		t.Fatalf("first pass %+v, %v: the highest-priority spot group is tried first", ds, err)
	}
	clk.Step(time.Second)
	ds, err = p.Reconcile(context.Background(), ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Group != "od" || !ds[0].Fallback {
		t.Fatalf("second pass %+v: want on-demand at once, past the 11 other exhausted spot groups", ds)
	}
	if got := p.unavailable.count(); got != 24 {
		t.Errorf("%d offerings marked unavailable, want the 24 spot offerings", got)
	}

	// A provider that cannot say only loses the shortcut.
	fp2 := fake.New(groups, offerings, clk.Now)
	for k, v := range fp.Unavailable {
		fp2.Unavailable[k] = v
	}
	p2, _ := NewProvisioner(controller.Deps{Provider: noOfferings{fp2}, Cluster: "c1", Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, Options{Templates: template})
	ps = pods(2, "1", "1Gi")
	if _, err := p2.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	ds, err = p2.Reconcile(context.Background(), ps, nil)
	if err != nil || len(ds) != 1 || ds[0].Group != "spot-10" {
		t.Fatalf("without offerings: %+v, %v; want the next spot group", ds, err)
	}
}

// noOfferings is a provider whose Offerings always fails.
type noOfferings struct{ provider.Provider }

func (noOfferings) Offerings(context.Context) ([]provider.Offering, error) {
	return nil, errors.New("throttled")
}

// Each pod gets one TriggeredScaleUp Event, at its first request, saying
// when it was a fallback.
func TestTriggeredScaleUpEvents(t *testing.T) {
	p, fp, clk := newTest(t, group("spot", provider.Spot, 40), group("od", provider.OnDemand, 10))
	rec := record.NewFakeRecorder(10)
	p.opts.Recorder = rec
	spotOut(fp)
	ps := pods(1, "1", "1Gi")
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	if _, err := p.Reconcile(context.Background(), ps, nil); err != nil {
		t.Fatal(err)
	}
	close(rec.Events)
	var got []string
	for e := range rec.Events {
		got = append(got, e)
	}
	if len(got) != 1 || !strings.Contains(got[0], "TriggeredScaleUp") || !strings.Contains(got[0], "spot from 0 to 1") {
		t.Errorf("events %q, want one TriggeredScaleUp for the first request (spot)", got)
	}
}
