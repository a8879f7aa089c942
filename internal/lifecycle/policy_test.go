package lifecycle

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name      string
		in        Observed
		stop      bool
		phase     Phase
		reasonHas string
		apply     bool
	}{
		{name: "new version applies", in: Observed{Desired: "v2", Last: Status{ManifestsVersion: "v1"}}, apply: true},
		{name: "same version: nothing to apply", in: Observed{Desired: "v2", Last: Status{ManifestsVersion: "v2"}}},
		{name: "lint errors stop, naming the rules (L02)",
			in:   Observed{Desired: "v2", LintErrors: []string{"L08-daemonset-guaranteed", "L04-same-size", "L08-daemonset-guaranteed"}, FileBlock: "x"},
			stop: true, phase: PhaseLintFailed, reasonHas: "lint errors: L04-same-size, L08-daemonset-guaranteed"},
		{name: "file block", in: Observed{Desired: "v2", FileBlock: "incident 7"}, stop: true, phase: PhaseBlocked, reasonHas: "updateBlock in the cluster file: incident 7"},
		{name: "live block", in: Observed{Desired: "v2", LiveBlock: "etcd restore"}, stop: true, phase: PhaseBlocked, reasonHas: "blocked with bosun block: etcd restore"},
		{name: "blank block is no block", in: Observed{Desired: "v2", FileBlock: "  "}, apply: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.in)
			if d.Stop != c.stop || d.Phase != c.phase || d.ApplyManifests != c.apply || !strings.Contains(d.Reason, c.reasonHas) {
				t.Errorf("Decide = %+v", d)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	got := []time.Duration{}
	for f := 0; f <= 6; f++ {
		got = append(got, Backoff(f, time.Minute, 10*time.Minute))
	}
	want := []time.Duration{time.Minute, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Backoff(%d) = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestDrainDeadline(t *testing.T) {
	for _, c := range []struct {
		env   string
		items map[string]string
		want  time.Duration
		err   string
	}{
		{env: "production", want: 72 * time.Hour},
		{env: "staging", want: 8 * time.Hour},
		{env: "production", items: map[string]string{ConfigDrainDeadline: "30m"}, want: 30 * time.Minute},
		{env: "test", items: map[string]string{ConfigDrainDeadline: "soon"}, err: `config item node_drain_deadline "soon": expected a positive duration`},
		{env: "test", items: map[string]string{ConfigDrainDeadline: "-1h"}, err: "expected a positive duration"},
	} {
		d, err := DrainDeadline(c.env, c.items)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err = %v, want %q", c.items, err, c.err)
			}
			continue
		}
		if err != nil || d != c.want {
			t.Errorf("%s %v: %s, %v; want %s", c.env, c.items, d, err, c.want)
		}
	}
}

func TestNextMovesSinceOnlyOnChange(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	last := Status{Phase: PhaseReconciled, AppliedVersion: "a", DesiredVersion: "a", Since: t0}
	if got := Next(last, Status{Phase: PhaseReconciled, AppliedVersion: "a", DesiredVersion: "a"}, t0.Add(time.Hour)); !got.Since.Equal(t0) || !sameContent(got, last) {
		t.Errorf("unchanged status moved: %+v", got)
	}
	if got := Next(last, Status{Phase: PhaseApplying, AppliedVersion: "a", DesiredVersion: "b"}, t0.Add(time.Hour)); !got.Since.Equal(t0.Add(time.Hour)) {
		t.Errorf("changed status kept Since: %+v", got)
	}
}

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func node(name, zone, hash string) RollNode {
	return RollNode{Name: name, Zone: zone, Hash: hash, Ready: true, Created: now.Add(-time.Hour)}
}

func actions(p RollPlan) string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, st.Action+" "+st.Node)
	}
	return strings.Join(s, ", ")
}

// L44: surge first (one per zone), drain only once the new nodes are
// Ready, terminate when empty; L45: force only after the deadline.
func TestPlanRoll(t *testing.T) {
	pool := func(target int, nodes ...RollNode) RollInput {
		return RollInput{Pools: []RollPool{{Name: "p", Group: "c/p", Hash: "new", Zones: []string{"a", "b"}, TargetSize: target, Nodes: nodes}},
			MaxNotReady: 1, Deadline: time.Hour, Now: now}
	}
	marked := func(n RollNode) RollNode { n.Marked = now.Add(-time.Minute); return n }
	draining := func(n RollNode, pods int, since time.Duration) RollNode {
		n = marked(n)
		n.DrainStarted, n.Pods, n.Unschedulable = now.Add(-since), pods, true
		return n
	}
	cases := []struct {
		name, want, msg string
		in              RollInput
		done            bool
	}{
		{name: "nothing outdated", in: pool(2, node("n1", "a", "new"), node("n2", "b", "new")), done: true},
		{name: "surge one per zone, spread", in: pool(3, node("a1", "a", "old"), node("a2", "a", "old"), node("b1", "b", "old")), want: "mark a1, mark b1"},
		{name: "max surge from config", in: func() RollInput {
			in := pool(3, node("a1", "a", "old"), node("a2", "a", "old"), node("b1", "b", "old"))
			in.MaxSurge = 1
			return in
		}(), want: "mark a1"},
		{name: "wait for the surge", in: pool(3, marked(node("a1", "a", "old")), node("b1", "b", "old")), want: "mark b1", msg: "waiting for new nodes (2 of 3 Ready)"},
		{name: "surge Ready: drain", in: pool(2, marked(node("a1", "a", "old")), node("n1", "a", "new")), want: "drain a1"},
		{name: "draining with pods: evict again", in: pool(2, draining(node("a1", "a", "old"), 3, time.Minute), node("n1", "a", "new")), want: "evict a1"},
		{name: "deadline passed: force", in: pool(2, draining(node("a1", "a", "old"), 3, 2*time.Hour), node("n1", "a", "new")), want: "force a1"},
		{name: "empty: terminate", in: pool(2, draining(node("a1", "a", "old"), 0, time.Minute), node("n1", "a", "new")), want: "terminate a1"},
		{name: "zonal volume waits for a new node in its zone", in: func() RollInput {
			n := marked(node("a1", "a", "old"))
			n.ZonalVolumes = []string{"a"}
			return pool(2, n, node("n1", "b", "new"))
		}(), msg: "a1 waits for a Ready new node in a (zonal volume)"},
		{name: "too many NotReady: pause", in: func() RollInput {
			in := pool(2, node("a1", "a", "old"))
			in.NotReady = 2
			return in
		}(), msg: "paused: 2 NotReady nodes in the cluster, more than 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PlanRoll(c.in)
			if c.done {
				if p.Progress != nil {
					t.Fatalf("progress %+v, want none", p.Progress)
				}
				return
			}
			if p.Progress == nil {
				t.Fatal("no progress")
			}
			if got := actions(p); got != c.want {
				t.Errorf("steps %q, want %q", got, c.want)
			}
			if !strings.Contains(p.Progress.Message, c.msg) {
				t.Errorf("message %q, want %q", p.Progress.Message, c.msg)
			}
		})
	}
}

// One pool at a time, in the spec's order.
func TestPlanRollOnePoolAtATime(t *testing.T) {
	in := RollInput{MaxNotReady: 1, Deadline: time.Hour, Now: now, Pools: []RollPool{
		{Name: "p1", Group: "c/p1", Hash: "new", Zones: []string{"a"}, TargetSize: 1, Nodes: []RollNode{node("x", "a", "old")}},
		{Name: "p2", Group: "c/p2", Hash: "new", Zones: []string{"a"}, TargetSize: 1, Nodes: []RollNode{node("y", "a", "old")}},
	}}
	p := PlanRoll(in)
	if actions(p) != "mark x" || p.Progress.Pool != "p1" || p.Progress.PoolsLeft != 2 {
		t.Errorf("plan %q, progress %+v", actions(p), p.Progress)
	}
}
