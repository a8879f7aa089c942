package provisioner

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
)

func newReaper(t *testing.T, e *capEnv, mutate ...func(*ReaperOptions)) *Reaper {
	t.Helper()
	opts := DefaultReaperOptions()
	opts.Templates = template
	for _, m := range mutate {
		m(&opts)
	}
	r, err := NewReaper(e.deps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// reaperEnv: one on-demand fallback node running two pods, a spot group of
// the same application group at zero, and a spot node elsewhere.
func reaperEnv(t *testing.T, odApp string, odMin int) *capEnv {
	t.Helper()
	od := appGroup(group("od", provider.OnDemand, 10), odApp)
	od.MinSize = odMin
	e := newCapEnv(t, map[string]int{"od": 1, "spot": 0, "other": 1},
		od,
		appGroup(group("spot", provider.Spot, 40), "web"),
		appGroup(group("other", provider.Spot, 40), "batch"),
	)
	node := e.nodes("od")[0]
	e.pod(node, "1")
	e.pod(node, "1")
	return e
}

func spotOut(e *capEnv) {
	for _, z := range []string{"a", "b"} {
		e.fp.Unavailable[fake.OfferingKey("m5.xlarge", z, provider.Spot)] = true
	}
}

// L22: an old on-demand node is replaced with spot first, and drained only
// once its replacement is Ready.
func TestReaperReplacesOnDemandOnceSpotIsBack(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	od := e.nodes("od")[0]
	r := newReaper(t, e)
	e.start()
	if got := pass(t, r); len(got) != 0 {
		t.Fatalf("acted on a node younger than 2h: %v", got)
	}
	e.clk.Step(2 * time.Hour)
	actions := pass(t, r)
	if len(actions) != 1 || !strings.Contains(actions[0], od) || e.target("spot") != 1 {
		t.Fatalf("actions %v, spot target %d: want a spot replacement asked for %s", actions, e.target("spot"), od)
	}
	if n := e.node(od); n.Annotations[AnnotationReapSpotGroup] != "spot" || n.Spec.Unschedulable {
		t.Fatalf("node %s: annotations %v, unschedulable %v: want annotated and still schedulable", od, n.Annotations, n.Spec.Unschedulable)
	}
	// The replacement has no Node yet: nothing happens to the on-demand node.
	e.resync()
	if got := pass(t, r); len(got) != 0 || e.target("spot") != 1 {
		t.Fatalf("acted before the replacement was Ready: %v", got)
	}
	e.scale("spot", 1) // the spot node registers
	e.resync()
	actions = pass(t, r)
	r.Wait()
	if len(actions) != 1 || !strings.Contains(actions[0], "drain on-demand node "+od) {
		t.Fatalf("actions %v, want the drain of %s", actions, od)
	}
	if len(e.nodes("od")) != 0 || e.target("od") != 0 || len(e.nodes("spot")) != 1 {
		t.Errorf("od nodes %v (target %d), spot nodes %v: want the on-demand instance deleted", e.nodes("od"), e.target("od"), e.nodes("spot"))
	}
	if got := testCounter(e.metrics.Removed.WithLabelValues(ReasonReapOnDemand, "on-demand", "false")); got != 1 {
		t.Errorf("removed counter %v, want 1", got)
	}
}

func TestReaperActsOnlyWhenSpotIsBackForOldFallbackNodes(t *testing.T) {
	cases := []struct {
		name  string
		app   string
		odMin int
		age   time.Duration
		setup func(e *capEnv)
	}{
		{name: "younger than MinAge", app: "web", age: time.Hour + 59*time.Minute},
		{name: "spot still out of capacity", app: "web", age: 3 * time.Hour, setup: spotOut},
		{name: "no spot group in its application group", app: "payments", age: 3 * time.Hour},
		{name: "spot group at its max", app: "web", age: 3 * time.Hour, setup: func(e *capEnv) {
			g, _ := e.fp.NodeGroup(t.Context(), "spot")
			e.scale("spot", g.MaxSize)
		}},
		{name: "on-demand group at its min (baseline, not fallback)", app: "web", odMin: 1, age: 3 * time.Hour},
		{name: "pod with safe-to-evict false", app: "web", age: 3 * time.Hour, setup: func(e *capEnv) {
			e.pod(e.nodes("od")[0], "100m", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationSafeToEvict: "false"} })
		}},
		{name: "pods too large for one spot node", app: "web", age: 3 * time.Hour, setup: func(e *capEnv) { e.pod(e.nodes("od")[0], "2500m") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := reaperEnv(t, tc.app, tc.odMin)
			if tc.setup != nil {
				tc.setup(e)
			}
			spotBefore := e.target("spot")
			r := newReaper(t, e)
			e.start()
			e.clk.Step(tc.age)
			if got := pass(t, r); len(got) != 0 || e.target("spot") != spotBefore {
				t.Fatalf("actions %v, spot target %d: want nothing done", got, e.target("spot"))
			}
		})
	}
}

// L21 again: when the spot replacement fails to launch, the on-demand node
// stays and the failed request is given back.
func TestReaperLeavesOnDemandWhenSpotFailsAgain(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	od := e.nodes("od")[0]
	r := newReaper(t, e)
	e.start()
	e.clk.Step(3 * time.Hour)
	if got := pass(t, r); len(got) != 1 {
		t.Fatalf("actions %v, want a replacement asked", got)
	}
	ins, _ := e.fp.Instances(t.Context(), "spot")
	e.fp.SetState("spot", ins[0].ID, provider.Failed)
	e.resync()
	actions := pass(t, r)
	if len(actions) != 1 || !strings.Contains(actions[0], "keep on-demand node") {
		t.Fatalf("actions %v, want the reap given up", actions)
	}
	n := e.node(od)
	if n.Annotations[AnnotationReapStarted] != "" || n.Spec.Unschedulable || len(e.nodes("od")) != 1 {
		t.Errorf("on-demand node touched: annotations %v, unschedulable %v, od nodes %v", n.Annotations, n.Spec.Unschedulable, e.nodes("od"))
	}
	if e.target("spot") != 0 {
		t.Errorf("spot target %d, want the failed request given back", e.target("spot"))
	}
	if got := testCounter(e.metrics.ReapAborted.WithLabelValues("spot-unavailable")); got != 1 {
		t.Errorf("aborted counter %v, want 1", got)
	}
	// Backing off: the next pass does not ask again at once.
	e.resync()
	if got := pass(t, r); len(got) != 0 {
		t.Errorf("asked again during the backoff: %v", got)
	}
}

func TestReaperDryRunChangesNothing(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	e.dryRun = true
	r := newReaper(t, e)
	e.start()
	e.clk.Step(3 * time.Hour)
	before := e.writes()
	if got := pass(t, r); len(got) != 1 {
		t.Fatalf("dry-run actions %v, want what would be done", got)
	}
	if e.writes() != before || e.target("spot") != 0 || e.target("od") != 1 {
		t.Errorf("dry-run changed something: %d writes, spot target %d", e.writes()-before, e.target("spot"))
	}
}

func TestOnDemandRatio(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	r := newReaper(t, e)
	e.start()
	pass(t, r)
	if got := testGauge(e.metrics.OnDemandRatio); got != 0.5 {
		t.Errorf("on-demand ratio %v, want 0.5 (1 of 2 running instances)", got)
	}
}

func testGauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// An idle pass reads informer caches only: no request to the API server.
func TestIdlePassesMakeNoAPIRequest(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	e.pod(e.nodes("other")[0], "3")
	r := newReaper(t, e)
	s := newScaleDown(t, e)
	e.start()
	before := len(e.cs.Actions())
	for i := 0; i < 3; i++ {
		pass(t, r)
		pass(t, s)
		e.clk.Step(time.Minute)
	}
	if got := e.cs.Actions()[before:]; len(got) != 0 {
		t.Errorf("idle passes sent %d request(s), first %s %s", len(got), got[0].GetVerb(), got[0].GetResource().Resource)
	}
}
