package scaledown

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/capacity/capacitytest"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/provider"
)

func newScaleDown(t *testing.T, e *capacitytest.Env, mutate ...func(*Options)) *Controller {
	t.Helper()
	opts := DefaultOptions()
	opts.DelayAfterScaleUp = 0
	for _, m := range mutate {
		m(&opts)
	}
	s, err := New(e.Deps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScaleDownCandidates(t *testing.T) {
	spot := capacitytest.Group("spot", provider.Spot, 10)
	atMin := spot
	atMin.MinSize = 2
	withAnnotation := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations = map[string]string{placement.AnnotationSafeToEvict: v} }
	}
	emptyDir := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	cases := []struct {
		name  string
		group provider.NodeGroup
		// setup puts pods on the two nodes a and b.
		setup func(e *capacitytest.Env, a, b string)
		// removed says whether node a goes (b never does).
		removed bool
	}{
		{"an empty node is removed", spot, func(e *capacitytest.Env, a, b string) { e.Pod(b, "3") }, true},
		{"an under-utilized node whose pods fit elsewhere is removed", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "1"); e.Pod(b, "3") }, true},
		{"DaemonSet pods do not keep a node", spot, func(e *capacitytest.Env, a, b string) {
			ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
			if _, err := e.Client.AppsV1().DaemonSets("default").Create(context.Background(), ds, metav1.CreateOptions{}); err != nil {
				e.T.Fatal(err)
			}
			e.Pod(a, "100m", func(p *corev1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" })
			e.Pod(b, "3")
		}, true},
		{"nodes above the utilization threshold stay", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "2500m"); e.Pod(b, "2500m") }, false},
		{"safe-to-evict false keeps the node", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "1", withAnnotation("false")); e.Pod(b, "3") }, false},
		{"a pod without a controller keeps the node", spot, func(e *capacitytest.Env, a, b string) {
			e.Pod(a, "1", func(p *corev1.Pod) { p.OwnerReferences = nil })
			e.Pod(b, "3")
		}, false},
		{"local storage keeps the node", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "1", emptyDir); e.Pod(b, "3") }, false},
		{"local storage with safe-to-evict true moves", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "1", emptyDir, withAnnotation("true")); e.Pod(b, "3") }, true},
		{"a kube-system pod without a PDB keeps the node", spot, func(e *capacitytest.Env, a, b string) {
			e.Pod(a, "1", func(p *corev1.Pod) { p.Namespace = "kube-system" })
			e.Pod(b, "3")
		}, false},
		{"a pod that fits on no other node keeps the node", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "1500m"); e.Pod(b, "3") }, false},
		{"a pod whose node selector matches no other node keeps the node", spot, func(e *capacitytest.Env, a, b string) {
			e.Pod(a, "1", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"only": "a"} })
			e.Pod(b, "3")
		}, false},
		{"a PDB that allows no disruption keeps the node", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "1"); e.Pod(b, "3"); e.PDB("web", 0) }, false},
		{"a PDB that allows a disruption lets the node go", spot, func(e *capacitytest.Env, a, b string) { e.Pod(a, "1"); e.Pod(b, "3"); e.PDB("web", 1) }, true},
		{"a group at its MinSize keeps its nodes", atMin, func(e *capacitytest.Env, a, b string) { e.Pod(b, "3") }, false},
	}
	// Why node a stays, as bosun_provisioner_needed_nodes counts it.
	neededFor := map[string]string{
		"nodes above the utilization threshold stay":                     NeededUtilization,
		"safe-to-evict false keeps the node":                             NeededPod,
		"a pod without a controller keeps the node":                      NeededPod,
		"local storage keeps the node":                                   NeededPod,
		"a kube-system pod without a PDB keeps the node":                 NeededPod,
		"a pod that fits on no other node keeps the node":                NeededNoPlace,
		"a pod whose node selector matches no other node keeps the node": NeededNoPlace,
		"a PDB that allows no disruption keeps the node":                 NeededPDB,
		"a group at its MinSize keeps its nodes":                         NeededMinSize,
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := capacitytest.NewEnv(t, map[string]int{"spot": 2}, tc.group)
			nodes := e.Nodes("spot")
			a, b := nodes[0], nodes[1]
			if tc.name == "a pod whose node selector matches no other node keeps the node" {
				n := e.Node(a)
				n.Labels["only"] = "a"
				if _, err := e.Client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			tc.setup(e, a, b)
			s := newScaleDown(t, e)
			e.Start()
			if got := capacitytest.Pass(t, s); len(got) != 0 {
				t.Fatalf("first pass acted before the unneeded time: %v", got)
			}
			e.Clock.Step(10 * time.Minute)
			actions := capacitytest.Pass(t, s)
			s.Wait()
			left := e.Nodes("spot")
			if tc.removed {
				if len(actions) != 1 || !strings.Contains(actions[0], a) || !reflect.DeepEqual(left, []string{b}) {
					t.Fatalf("actions %v, nodes left %v: want %s removed and %s kept", actions, left, a, b)
				}
				if e.Target("spot") != 1 {
					t.Errorf("target %d, want 1", e.Target("spot"))
				}
				return
			}
			if len(actions) != 0 || len(left) != 2 {
				t.Fatalf("actions %v, nodes left %v: want both nodes kept", actions, left)
			}
			reason := neededFor[tc.name]
			if reason == "" {
				t.Fatalf("no expected needed reason for %q", tc.name)
			}
			if got := capacitytest.Gauge(e.Metrics.Needed.WithLabelValues(reason)); got < 1 {
				t.Errorf("needed nodes for %s: %v, want node %s counted", reason, got, a)
			}
		})
	}
}

func TestScaleDownTakesOnDemandBeforeSpot(t *testing.T) {
	e := capacitytest.NewEnv(t, map[string]int{"od": 2, "spot": 2}, capacitytest.Group("od", provider.OnDemand, 10), capacitytest.Group("spot", provider.Spot, 10))
	// Four nodes a quarter full: each could go, one drain at a time.
	for _, n := range append(e.Nodes("spot"), e.Nodes("od")...) {
		e.Pod(n, "1")
	}
	s := newScaleDown(t, e)
	e.Start()
	capacitytest.Pass(t, s)
	e.Clock.Step(10 * time.Minute)
	actions := capacitytest.Pass(t, s)
	s.Wait()
	if len(actions) != 1 || !strings.Contains(actions[0], "on-demand node") {
		t.Fatalf("actions %v, want one on-demand node", actions)
	}
	if len(e.Nodes("od")) != 1 || len(e.Nodes("spot")) != 2 {
		t.Errorf("nodes left od %v spot %v: want one on-demand node removed", e.Nodes("od"), e.Nodes("spot"))
	}
	if got := capacitytest.Counter(e.Metrics.Removed.WithLabelValues(capacity.ReasonUnderutilized, "on-demand", "false")); got != 1 {
		t.Errorf("removed counter %v, want 1", got)
	}
	if ev := <-e.Recorder.Events; !strings.Contains(ev, "ScaleDown") {
		t.Errorf("event %q, want Controller", ev)
	}
}

func TestScaleDownEmptyNodesGoInBulk(t *testing.T) {
	e := capacitytest.NewEnv(t, map[string]int{"spot": 4}, capacitytest.Group("spot", provider.Spot, 10))
	e.Pod(e.Nodes("spot")[3], "3")
	s := newScaleDown(t, e, func(o *Options) { o.MaxEmptyBulkDelete = 2 })
	e.Start()
	capacitytest.Pass(t, s)
	e.Clock.Step(10 * time.Minute)
	actions := capacitytest.Pass(t, s)
	s.Wait()
	if len(actions) != 2 || len(e.Nodes("spot")) != 2 {
		t.Fatalf("actions %v, nodes left %v: want 2 of the 3 empty nodes removed at once", actions, e.Nodes("spot"))
	}
}

func TestScaleDownWaitsUnneededTimeAndDelayAfterScaleUp(t *testing.T) {
	t.Run("unneeded time", func(t *testing.T) {
		e := capacitytest.NewEnv(t, map[string]int{"spot": 2}, capacitytest.Group("spot", provider.Spot, 10))
		e.Pod(e.Nodes("spot")[1], "3")
		s := newScaleDown(t, e)
		e.Start()
		capacitytest.Pass(t, s)
		e.Clock.Step(10*time.Minute - time.Second)
		if got := capacitytest.Pass(t, s); len(got) != 0 {
			t.Fatalf("acted after %s: %v", 10*time.Minute-time.Second, got)
		}
		e.Clock.Step(time.Second)
		if got := capacitytest.Pass(t, s); len(got) != 1 {
			t.Fatalf("after 10m: %v, want one removal", got)
		}
		s.Wait()
	})
	t.Run("delay after scale-up", func(t *testing.T) {
		e := capacitytest.NewEnv(t, map[string]int{"spot": 2}, capacitytest.Group("spot", provider.Spot, 10))
		e.Pod(e.Nodes("spot")[1], "3")
		s := newScaleDown(t, e, func(o *Options) { o.DelayAfterScaleUp = 10 * time.Minute; o.UnneededTime = time.Minute })
		e.Start()
		capacitytest.Pass(t, s)
		e.Clock.Step(9 * time.Minute)
		if got := capacitytest.Pass(t, s); len(got) != 0 {
			t.Fatalf("acted 9m after the last launch: %v", got)
		}
		e.Clock.Step(time.Minute)
		if got := capacitytest.Pass(t, s); len(got) != 1 {
			t.Fatalf("10m after the last launch: %v, want one removal", got)
		}
		s.Wait()
	})
}

func TestScaleDownDryRunChangesNothing(t *testing.T) {
	e := capacitytest.NewEnv(t, map[string]int{"od": 2}, capacitytest.Group("od", provider.OnDemand, 10))
	e.Pod(e.Nodes("od")[1], "1")
	e.DryRun = true
	s := newScaleDown(t, e)
	e.Start()
	before := e.Writes()
	capacitytest.Pass(t, s)
	e.Clock.Step(10 * time.Minute)
	actions := capacitytest.Pass(t, s)
	s.Wait()
	if len(actions) == 0 {
		t.Fatal("dry-run reported nothing it would do")
	}
	if e.Writes() != before || len(e.Nodes("od")) != 2 || e.Target("od") != 2 {
		t.Errorf("dry-run changed something: %d API writes, nodes %v", e.Writes()-before, e.Nodes("od"))
	}
	if got := capacitytest.Counter(e.Metrics.Removed.WithLabelValues(capacity.ReasonEmpty, "on-demand", "true")); got != 1 {
		t.Errorf("dry-run counter %v, want 1", got)
	}
}

// An eviction that fails leaves the node where it was: uncordoned, its
// taint gone, its instance running.
func TestScaleDownFailedDrainUncordons(t *testing.T) {
	e := capacitytest.NewEnv(t, map[string]int{"spot": 2}, capacitytest.Group("spot", provider.Spot, 10))
	a, b := e.Nodes("spot")[0], e.Nodes("spot")[1]
	e.Pod(a, "1")
	e.Pod(b, "3")
	e.Client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		return true, nil, errors.New("refused")
	})
	s := newScaleDown(t, e, func(o *Options) { o.DrainTimeout = time.Second })
	e.Start()
	capacitytest.Pass(t, s)
	e.Clock.Step(10 * time.Minute)
	if got := capacitytest.Pass(t, s); len(got) != 1 {
		t.Fatalf("actions %v, want a drain of %s", got, a)
	}
	s.Wait()
	n := e.Node(a)
	if n.Spec.Unschedulable || capacity.HasTaint(n, capacity.TaintScaleDown) {
		t.Errorf("node %s left cordoned %v with taints %v", a, n.Spec.Unschedulable, n.Spec.Taints)
	}
	if len(e.Nodes("spot")) != 2 {
		t.Errorf("instance deleted despite the failed drain: %v", e.Nodes("spot"))
	}
	if got := capacitytest.Counter(e.Metrics.DrainFailures.WithLabelValues(Name)); got != 1 {
		t.Errorf("drain failures %v, want 1", got)
	}
}

// A node left tainted by a crashed process is uncordoned if pods remain,
// finished if it was drained.
func TestScaleDownRecoversAfterCrash(t *testing.T) {
	e := capacitytest.NewEnv(t, map[string]int{"spot": 3}, capacitytest.Group("spot", provider.Spot, 10))
	nodes := e.Nodes("spot")
	e.Pod(nodes[0], "3") // still has its pod: uncordon
	e.Pod(nodes[2], "3") // keeps the group busy
	for _, name := range nodes[:2] {
		if err := capacity.Taint(context.Background(), e.Client, e.Node(name), capacity.TaintScaleDown, capacitytest.T0); err != nil {
			t.Fatal(err)
		}
	}
	s := newScaleDown(t, e, func(o *Options) { o.DelayAfterScaleUp = 10 * time.Minute })
	e.Start()
	actions := capacitytest.Pass(t, s)
	if len(actions) != 2 {
		t.Fatalf("actions %v, want one uncordon and one finish", actions)
	}
	if n := e.Node(nodes[0]); n.Spec.Unschedulable || capacity.HasTaint(n, capacity.TaintScaleDown) {
		t.Errorf("%s still cordoned", nodes[0])
	}
	if left := e.Nodes("spot"); len(left) != 2 || left[0] != nodes[0] {
		t.Errorf("nodes left %v, want %s's instance deleted", left, nodes[1])
	}
}

// While the reaper replaces an on-demand node, its new spot node is empty;
// the scale-down leaves it alone until the reap is over.
func TestScaleDownWaitsForAReap(t *testing.T) {
	e := capacitytest.NewEnv(t, map[string]int{"od": 1, "spot": 1}, capacitytest.AppGroup(capacitytest.Group("od", provider.OnDemand, 10), "web"), capacitytest.AppGroup(capacitytest.Group("spot", provider.Spot, 40), "web"))
	od := e.Nodes("od")[0]
	e.Pod(od, "3")
	n := e.Node(od)
	n.Annotations = map[string]string{capacity.AnnotationReapStarted: capacitytest.T0.Format(time.RFC3339)}
	if _, err := e.Client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	spot := e.Nodes("spot")[0]
	s := newScaleDown(t, e)
	e.Start()
	capacitytest.Pass(t, s)
	e.Clock.Step(time.Hour)
	if got := capacitytest.Pass(t, s); len(got) != 0 {
		t.Fatalf("scale-down acted during a reap: %v", got)
	}
	n = e.Node(od)
	delete(n.Annotations, capacity.AnnotationReapStarted)
	if _, err := e.Client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Resync()
	// Unneeded for an hour already: it goes at the first pass after.
	actions := capacitytest.Pass(t, s)
	s.Wait()
	if len(actions) != 1 || !strings.Contains(actions[0], spot) {
		t.Fatalf("after the reap, actions %v: want the empty spot node %s removed", actions, spot)
	}
}

// A new node is often still empty while the pod it was launched for waits
// out the scheduler's backoff: a node a pending pod fits on stays.
func TestScaleDownKeepsANodeAPendingPodFits(t *testing.T) {
	e := capacitytest.NewEnv(t, map[string]int{"spot": 2}, capacitytest.Group("spot", provider.Spot, 10))
	nodes := e.Nodes("spot")
	e.Pod(nodes[1], "3")
	e.Pod("", "2", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }) // fits only on the empty node
	s := newScaleDown(t, e)
	e.Start()
	capacitytest.Pass(t, s)
	e.Clock.Step(time.Hour)
	if got := capacitytest.Pass(t, s); len(got) != 0 {
		t.Fatalf("scale-down removed a node a pending pod fits on: %v", got)
	}
}

// The scale-down keeps a node whose pods could only move in violation of
// a required topology spread constraint or inter-pod (anti-)affinity, and
// says why. Zone a has nodes a1 and a2, zone b b1 and b2 (4 CPUs each).
func TestScaleDownTopology(t *testing.T) {
	app := func(name string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Labels["app"] = name } }
	cases := []struct {
		name  string
		setup func(e *capacitytest.Env, n map[string]string)
		// removed is the node that goes ("": none).
		removed string
		// why is in the reason logged for the kept under-utilized nodes.
		why string
	}{
		{"zone spread: a pod whose move would break maxSkew keeps its node", func(e *capacitytest.Env, n map[string]string) {
			e.Pod(n["a1"], "1", spread(zoneKey, "web", 1))
			e.Pod(n["a2"], "3500m", app("filler"))
			e.Pod(n["b1"], "1", spread(zoneKey, "web", 1))
			e.Pod(n["b1"], "500m", app("filler"))
			e.Pod(n["b2"], "3500m", app("filler"))
		}, "", "can move only in violation of its topology spread constraint on topology.kubernetes.io/zone (maxSkew 1)"},
		{"zone spread: a pod that keeps the spread moves", func(e *capacitytest.Env, n map[string]string) {
			e.Pod(n["a1"], "1", spread(zoneKey, "web", 1))
			e.Pod(n["a2"], "2", app("filler"))
			e.Pod(n["b1"], "1", spread(zoneKey, "web", 1))
			e.Pod(n["b1"], "500m", app("filler"))
			e.Pod(n["b2"], "3500m", app("filler"))
		}, "a1", "topology spread constraint on topology.kubernetes.io/zone"},
		{"hostname anti-affinity: the only room is next to a peer", func(e *capacitytest.Env, n map[string]string) {
			e.Pod(n["a1"], "1", app("db"), antiAffinity(hostKey, "db"))
			e.Pod(n["a2"], "1500m", app("db"), antiAffinity(hostKey, "db"))
			e.Pod(n["b1"], "3500m", app("filler"))
			e.Pod(n["b2"], "3500m", app("filler"))
		}, "", "its required pod anti-affinity on kubernetes.io/hostname"},
		{"hostname anti-affinity: a node without a peer takes the pod", func(e *capacitytest.Env, n map[string]string) {
			e.Pod(n["a1"], "1", app("db"), antiAffinity(hostKey, "db"))
			e.Pod(n["a2"], "1500m", app("db"), antiAffinity(hostKey, "db"))
			e.Pod(n["b1"], "2", app("filler"))
			e.Pod(n["b2"], "3500m", app("filler"))
		}, "a1", ""},
		{"an existing pod's anti-affinity refuses the moved pod", func(e *capacitytest.Env, n map[string]string) {
			e.Pod(n["a1"], "1")
			e.Pod(n["a2"], "2", app("guard"), antiAffinity(hostKey, "web"))
			e.Pod(n["b1"], "3500m", app("filler"))
			e.Pod(n["b2"], "3500m", app("filler"))
		}, "", "in violation of the required pod anti-affinity of pod default/"},
		{"pod affinity: no room in the zone of its cache", func(e *capacitytest.Env, n map[string]string) {
			e.Pod(n["a1"], "1", affinity(term(zoneKey, "cache")))
			e.Pod(n["a2"], "3500m", app("cache"))
			e.Pod(n["b1"], "2", app("filler"))
			e.Pod(n["b2"], "3500m", app("filler"))
		}, "", "its required pod affinity on topology.kubernetes.io/zone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			za, zb := capacitytest.Group("za", provider.Spot, 10), capacitytest.Group("zb", provider.Spot, 10)
			za.Zones, zb.Zones = []string{"a"}, []string{"b"}
			e := capacitytest.NewEnv(t, map[string]int{"za": 2, "zb": 2}, za, zb)
			n := map[string]string{}
			for i, name := range append(e.Nodes("za"), e.Nodes("zb")...) {
				n[[]string{"a1", "a2", "b1", "b2"}[i]] = name
				node := e.Node(name)
				node.Labels[hostKey] = name
				if _, err := e.Client.CoreV1().Nodes().Update(context.Background(), node, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			tc.setup(e, n)
			logs := &strings.Builder{}
			e.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := newScaleDown(t, e)
			e.Start()
			capacitytest.Pass(t, s)
			e.Clock.Step(10 * time.Minute)
			actions := capacitytest.Pass(t, s)
			s.Wait()
			left := append(e.Nodes("za"), e.Nodes("zb")...)
			if tc.removed == "" {
				if len(actions) != 0 || len(left) != 4 {
					t.Fatalf("actions %v, nodes left %v: want all 4 kept", actions, left)
				}
			} else if len(actions) != 1 || !strings.Contains(actions[0], n[tc.removed]) || slices.Contains(left, n[tc.removed]) || len(left) != 3 {
				t.Fatalf("actions %v, nodes left %v: want %s (%s) removed", actions, left, tc.removed, n[tc.removed])
			}
			if tc.why != "" && !strings.Contains(logs.String(), tc.why) {
				t.Errorf("no reason %q in the log:\n%s", tc.why, logs.String())
			}
		})
	}
}

// lockedWriter serializes the log writes of the pass and of the drains it
// starts.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
