package reaper

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/capacity/capacitytest"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/agent/scaledown"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
)

func newReaper(t *testing.T, e *capacitytest.Env, mutate ...func(*Options)) *Controller {
	t.Helper()
	opts := DefaultOptions()
	opts.Templates = capacitytest.Template
	for _, m := range mutate {
		m(&opts)
	}
	r, err := New(e.Deps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// reaperEnv: one on-demand fallback node running two pods, a spot group of
// the same application group at zero, and a spot node elsewhere.
func reaperEnv(t *testing.T, odApp string, odMin int) *capacitytest.Env {
	t.Helper()
	od := capacitytest.AppGroup(capacitytest.Group("od", provider.OnDemand, 10), odApp)
	od.MinSize = odMin
	e := capacitytest.NewEnv(t, map[string]int{"od": 1, "spot": 0, "other": 1},
		od,
		capacitytest.AppGroup(capacitytest.Group("spot", provider.Spot, 40), "web"),
		capacitytest.AppGroup(capacitytest.Group("other", provider.Spot, 40), "batch"),
	)
	node := e.Nodes("od")[0]
	e.Pod(node, "1")
	e.Pod(node, "1")
	return e
}

func spotOut(e *capacitytest.Env) {
	for _, z := range []string{"a", "b"} {
		e.Cloud.Unavailable[fake.OfferingKey("m5.xlarge", z, provider.Spot)] = true
	}
}

// L22: an old on-demand node is replaced with spot first, and drained only
// once its replacement is Ready.
func TestReaperReplacesOnDemandOnceSpotIsBack(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	od := e.Nodes("od")[0]
	r := newReaper(t, e)
	e.Start()
	if got := capacitytest.Pass(t, r); len(got) != 0 {
		t.Fatalf("acted on a node younger than 2h: %v", got)
	}
	e.Clock.Step(2 * time.Hour)
	actions := capacitytest.Pass(t, r)
	if len(actions) != 1 || !strings.Contains(actions[0], od) || e.Target("spot") != 1 {
		t.Fatalf("actions %v, spot target %d: want a spot replacement asked for %s", actions, e.Target("spot"), od)
	}
	if n := e.Node(od); n.Annotations[capacity.AnnotationReapSpotGroup] != "spot" || n.Spec.Unschedulable {
		t.Fatalf("node %s: annotations %v, unschedulable %v: want annotated and still schedulable", od, n.Annotations, n.Spec.Unschedulable)
	}
	// The replacement has no Node yet: nothing happens to the on-demand node.
	e.Resync()
	if got := capacitytest.Pass(t, r); len(got) != 0 || e.Target("spot") != 1 {
		t.Fatalf("acted before the replacement was Ready: %v", got)
	}
	e.Scale("spot", 1) // the spot node registers
	e.Resync()
	actions = capacitytest.Pass(t, r)
	r.Wait()
	if len(actions) != 1 || !strings.Contains(actions[0], "drain on-demand node "+od) {
		t.Fatalf("actions %v, want the drain of %s", actions, od)
	}
	if len(e.Nodes("od")) != 0 || e.Target("od") != 0 || len(e.Nodes("spot")) != 1 {
		t.Errorf("od nodes %v (target %d), spot nodes %v: want the on-demand instance deleted", e.Nodes("od"), e.Target("od"), e.Nodes("spot"))
	}
	if got := capacitytest.Counter(e.Metrics.Removed.WithLabelValues(capacity.ReasonReapOnDemand, "on-demand", "false")); got != 1 {
		t.Errorf("removed counter %v, want 1", got)
	}
}

func TestReaperActsOnlyWhenSpotIsBackForOldFallbackNodes(t *testing.T) {
	cases := []struct {
		name  string
		app   string
		odMin int
		age   time.Duration
		setup func(e *capacitytest.Env)
	}{
		{name: "younger than MinAge", app: "web", age: time.Hour + 59*time.Minute},
		{name: "spot still out of capacity", app: "web", age: 3 * time.Hour, setup: spotOut},
		{name: "no spot group in its application group", app: "payments", age: 3 * time.Hour},
		{name: "spot group at its max", app: "web", age: 3 * time.Hour, setup: func(e *capacitytest.Env) {
			g, _ := e.Cloud.NodeGroup(t.Context(), "spot")
			e.Scale("spot", g.MaxSize)
		}},
		{name: "on-demand group at its min (baseline, not fallback)", app: "web", odMin: 1, age: 3 * time.Hour},
		{name: "pod with safe-to-evict false", app: "web", age: 3 * time.Hour, setup: func(e *capacitytest.Env) {
			e.Pod(e.Nodes("od")[0], "100m", func(p *corev1.Pod) { p.Annotations = map[string]string{placement.AnnotationSafeToEvict: "false"} })
		}},
		{name: "pods too large for one spot node", app: "web", age: 3 * time.Hour, setup: func(e *capacitytest.Env) { e.Pod(e.Nodes("od")[0], "2500m") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := reaperEnv(t, tc.app, tc.odMin)
			if tc.setup != nil {
				tc.setup(e)
			}
			spotBefore := e.Target("spot")
			r := newReaper(t, e)
			e.Start()
			e.Clock.Step(tc.age)
			if got := capacitytest.Pass(t, r); len(got) != 0 || e.Target("spot") != spotBefore {
				t.Fatalf("actions %v, spot target %d: want nothing done", got, e.Target("spot"))
			}
		})
	}
}

// L21 again: when the spot replacement fails to launch, the on-demand node
// stays and the failed request is given back.
func TestReaperLeavesOnDemandWhenSpotFailsAgain(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	od := e.Nodes("od")[0]
	r := newReaper(t, e)
	e.Start()
	e.Clock.Step(3 * time.Hour)
	if got := capacitytest.Pass(t, r); len(got) != 1 {
		t.Fatalf("actions %v, want a replacement asked", got)
	}
	ins, _ := e.Cloud.Instances(t.Context(), "spot")
	e.Cloud.SetState("spot", ins[0].ID, provider.Failed)
	e.Resync()
	actions := capacitytest.Pass(t, r)
	if len(actions) != 1 || !strings.Contains(actions[0], "keep on-demand node") {
		t.Fatalf("actions %v, want the reap given up", actions)
	}
	n := e.Node(od)
	if n.Annotations[capacity.AnnotationReapStarted] != "" || n.Spec.Unschedulable || len(e.Nodes("od")) != 1 {
		t.Errorf("on-demand node touched: annotations %v, unschedulable %v, od nodes %v", n.Annotations, n.Spec.Unschedulable, e.Nodes("od"))
	}
	if e.Target("spot") != 0 {
		t.Errorf("spot target %d, want the failed request given back", e.Target("spot"))
	}
	if got := capacitytest.Counter(e.Metrics.ReapAborted.WithLabelValues("spot-unavailable")); got != 1 {
		t.Errorf("aborted counter %v, want 1", got)
	}
	// Backing off: the next pass does not ask again at once.
	e.Resync()
	if got := capacitytest.Pass(t, r); len(got) != 0 {
		t.Errorf("asked again during the backoff: %v", got)
	}
}

func TestReaperDryRunChangesNothing(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	e.DryRun = true
	r := newReaper(t, e)
	e.Start()
	e.Clock.Step(3 * time.Hour)
	before := e.Writes()
	if got := capacitytest.Pass(t, r); len(got) != 1 {
		t.Fatalf("dry-run actions %v, want what would be done", got)
	}
	if e.Writes() != before || e.Target("spot") != 0 || e.Target("od") != 1 {
		t.Errorf("dry-run changed something: %d writes, spot target %d", e.Writes()-before, e.Target("spot"))
	}
}

func TestOnDemandRatio(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	r := newReaper(t, e)
	e.Start()
	capacitytest.Pass(t, r)
	if got := capacitytest.Gauge(e.Metrics.OnDemandRatio); got != 0.5 {
		t.Errorf("on-demand ratio %v, want 0.5 (1 of 2 running instances)", got)
	}
}

// An idle pass reads informer caches only: no request to the API server.
func TestIdlePassesMakeNoAPIRequest(t *testing.T) {
	e := reaperEnv(t, "web", 0)
	e.Pod(e.Nodes("other")[0], "3")
	r := newReaper(t, e)
	s := newScaleDown(t, e)
	e.Start()
	before := len(e.Client.Actions())
	for i := 0; i < 3; i++ {
		capacitytest.Pass(t, r)
		capacitytest.Pass(t, s)
		e.Clock.Step(time.Minute)
	}
	if got := e.Client.Actions()[before:]; len(got) != 0 {
		t.Errorf("idle passes sent %d request(s), first %s %s", len(got), got[0].GetVerb(), got[0].GetResource().Resource)
	}
}

// newScaleDown returns a scale-down on e with its defaults and no delay
// after scale-up (as the scale-down's own tests make it).
func newScaleDown(t *testing.T, e *capacitytest.Env) *scaledown.Controller {
	t.Helper()
	opts := scaledown.DefaultOptions()
	opts.DelayAfterScaleUp = 0
	s, err := scaledown.New(e.Deps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
