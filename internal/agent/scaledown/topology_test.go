package scaledown

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
)

const (
	zoneKey = "topology.kubernetes.io/zone"
	hostKey = "kubernetes.io/hostname"
)

// simCluster is a hand-made view: Ready nodes of 4 CPUs / 16 GiB with
// their zone and hostname labels, and pods bound to them.
type simCluster struct {
	v *capacity.View
}

func newSimCluster() *simCluster {
	return &simCluster{v: &capacity.View{PodsOn: map[string][]*corev1.Pod{}}}
}

// node adds a node in the zone ("" for none) with extra labels.
func (c *simCluster) node(name, zone string, extra ...string) {
	labels := map[string]string{hostKey: name}
	if zone != "" {
		labels[zoneKey] = zone
	}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	c.v.Nodes = append(c.v.Nodes, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	})
	sort.Slice(c.v.Nodes, func(i, j int) bool { return c.v.Nodes[i].Name < c.v.Nodes[j].Name })
}

// pod binds a pod labelled app=<app> asking for cpu to the node.
func (c *simCluster) pod(node, name, app, cpu string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")},
		}}}},
	}
	for _, m := range mutate {
		m(p)
	}
	c.v.PodsOn[node] = append(c.v.PodsOn[node], p)
	return p
}

// spread adds a DoNotSchedule constraint selecting app=<app>.
func spread(key, app string, maxSkew int32, mutate ...func(*corev1.TopologySpreadConstraint)) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		c := corev1.TopologySpreadConstraint{
			MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		}
		for _, m := range mutate {
			m(&c)
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

func honorTaints(c *corev1.TopologySpreadConstraint) {
	c.NodeTaintsPolicy = ptr.To(corev1.NodeInclusionPolicyHonor)
}

func term(key, app string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
}

// antiAffinity adds a required anti-affinity term against app=<app>.
func antiAffinity(key, app string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(key, app)}}
	}
}

// affinity adds a required affinity term towards app=<app>.
func affinity(t corev1.PodAffinityTerm) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{t}}
	}
}

func labelled(k, v string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels[k] = v }
}

// TestSimulationTopology places the pods of node x elsewhere, as the
// scale-down does before it removes x.
func TestSimulationTopology(t *testing.T) {
	cases := []struct {
		name string
		// setup builds the cluster; node x is the one removed.
		setup func(c *simCluster)
		// to are the nodes the pods go to; nil: they cannot move, for a
		// reason containing why.
		to  []string
		why string
	}{
		{
			name: "no constraint: the pod moves to another zone",
			setup: func(c *simCluster) {
				c.node("a2", "a")
				c.node("x", "b")
				c.pod("a2", "filler", "filler", "2")
				c.pod("x", "web", "web", "1")
			},
			to: []string{"a2"},
		},
		{
			name: "zone spread over 2 zones: the only room is in the zone that has more",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("b2", "b")
				c.node("x", "b")
				c.pod("a1", "web-1", "web", "1", spread(zoneKey, "web", 1))
				c.pod("b2", "filler", "filler", "3500m")
				c.pod("x", "web-2", "web", "1", spread(zoneKey, "web", 1))
			},
			why: "pod default/web-2 can move only in violation of its topology spread constraint on topology.kubernetes.io/zone (maxSkew 1)",
		},
		{
			name: "zone spread over 2 zones: room in the pod's own zone keeps the skew",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("b2", "b")
				c.node("x", "b")
				c.pod("a1", "web-1", "web", "1", spread(zoneKey, "web", 1))
				c.pod("b2", "filler", "filler", "2")
				c.pod("x", "web-2", "web", "1", spread(zoneKey, "web", 1))
			},
			to: []string{"b2"},
		},
		{
			name: "zone spread: a drained node is still a domain while its pods move",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("x", "b")
				c.pod("a1", "web-1", "web", "1", spread(zoneKey, "web", 1))
				c.pod("x", "web-2", "web", "1", spread(zoneKey, "web", 1))
			},
			why: "topology spread constraint on topology.kubernetes.io/zone",
		},
		{
			name: "zone spread with nodeTaintsPolicy Honor: the tainted drained node is no domain",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("x", "b")
				c.pod("a1", "web-1", "web", "1", spread(zoneKey, "web", 1, honorTaints))
				c.pod("x", "web-2", "web", "1", spread(zoneKey, "web", 1, honorTaints))
			},
			to: []string{"a1"},
		},
		{
			name: "hostname spread, one pod per node: the drained node holds the minimum at 0",
			setup: func(c *simCluster) {
				c.node("n1", "a")
				c.node("n2", "a")
				c.node("x", "a")
				c.pod("n1", "web-1", "web", "1", spread(hostKey, "web", 1))
				c.pod("n2", "web-2", "web", "1", spread(hostKey, "web", 1))
				c.pod("x", "web-3", "web", "1", spread(hostKey, "web", 1))
			},
			why: "topology spread constraint on kubernetes.io/hostname (maxSkew 1)",
		},
		{
			name: "hostname spread with nodeTaintsPolicy Honor: 2-1 is within maxSkew 1",
			setup: func(c *simCluster) {
				c.node("n1", "a")
				c.node("n2", "a")
				c.node("x", "a")
				c.pod("n1", "web-1", "web", "1", spread(hostKey, "web", 1, honorTaints))
				c.pod("n2", "web-2", "web", "1", spread(hostKey, "web", 1, honorTaints))
				c.pod("x", "web-3", "web", "1", spread(hostKey, "web", 1, honorTaints))
			},
			to: []string{"n1"},
		},
		{
			name: "hostname spread: pods moved earlier in the placement count",
			setup: func(c *simCluster) {
				c.node("n1", "a")
				c.node("n2", "a")
				c.node("x", "a")
				c.pod("x", "web-1", "web", "1", spread(hostKey, "web", 1, honorTaints))
				c.pod("x", "web-2", "web", "1", spread(hostKey, "web", 1, honorTaints))
			},
			to: []string{"n1", "n2"},
		},
		{
			name: "a node without the topology key is no candidate",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("nozone", "")
				c.node("x", "b")
				c.pod("a1", "web-1", "web", "3500m", spread(zoneKey, "web", 1, honorTaints))
				c.pod("x", "web-2", "web", "1", spread(zoneKey, "web", 1, honorTaints))
			},
			why: "(node nozone has no such label)",
		},
		{
			name: "minDomains: fewer domains than asked make the global minimum 0",
			setup: func(c *simCluster) {
				minDomains := func(c *corev1.TopologySpreadConstraint) { c.MinDomains = ptr.To[int32](3); honorTaints(c) }
				c.node("a2", "a")
				c.node("b1", "b")
				c.node("x", "a")
				c.pod("a2", "web-1", "web", "1", spread(zoneKey, "web", 1, minDomains))
				c.pod("b1", "web-2", "web", "1", spread(zoneKey, "web", 1, minDomains))
				c.pod("x", "web-3", "web", "1", spread(zoneKey, "web", 1, minDomains))
			},
			why: "topology spread constraint on topology.kubernetes.io/zone",
		},
		{
			name: "without minDomains the same pods move",
			setup: func(c *simCluster) {
				c.node("a2", "a")
				c.node("b1", "b")
				c.node("x", "a")
				c.pod("a2", "web-1", "web", "1", spread(zoneKey, "web", 1, honorTaints))
				c.pod("b1", "web-2", "web", "1", spread(zoneKey, "web", 1, honorTaints))
				c.pod("x", "web-3", "web", "1", spread(zoneKey, "web", 1, honorTaints))
			},
			to: []string{"a2"},
		},
		{
			name: "matchLabelKeys: pods of another revision do not count",
			setup: func(c *simCluster) {
				byRevision := func(c *corev1.TopologySpreadConstraint) {
					c.MatchLabelKeys = []string{"pod-Template-hash"}
					honorTaints(c)
				}
				c.node("a2", "a")
				c.node("b1", "b")
				c.node("x", "a")
				c.pod("a2", "old", "web", "1", labelled("pod-Template-hash", "v1"), spread(zoneKey, "web", 1, byRevision))
				c.pod("b1", "filler", "filler", "3500m")
				c.pod("x", "new", "web", "1", labelled("pod-Template-hash", "v2"), spread(zoneKey, "web", 1, byRevision))
			},
			to: []string{"a2"},
		},
		{
			name: "the same pods counted across revisions cannot move",
			setup: func(c *simCluster) {
				c.node("a2", "a")
				c.node("b1", "b")
				c.node("x", "a")
				c.pod("a2", "old", "web", "1", labelled("pod-Template-hash", "v1"), spread(zoneKey, "web", 1, honorTaints))
				c.pod("b1", "filler", "filler", "3500m")
				c.pod("x", "new", "web", "1", labelled("pod-Template-hash", "v2"), spread(zoneKey, "web", 1, honorTaints))
			},
			why: "topology spread constraint on topology.kubernetes.io/zone",
		},
		{
			name: "nodeAffinityPolicy Honor (default): nodes the pod may not use are no domain",
			setup: func(c *simCluster) {
				pool := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"pool": "p"} }
				c.node("a2", "a", "pool", "p")
				c.node("b1", "b")
				c.node("x", "a", "pool", "p")
				c.pod("a2", "web-1", "web", "1", pool, spread(zoneKey, "web", 1, honorTaints))
				c.pod("x", "web-2", "web", "1", pool, spread(zoneKey, "web", 1, honorTaints))
			},
			to: []string{"a2"},
		},
		{
			name: "nodeAffinityPolicy Ignore: they are",
			setup: func(c *simCluster) {
				pool := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"pool": "p"} }
				ignore := func(c *corev1.TopologySpreadConstraint) {
					c.NodeAffinityPolicy = ptr.To(corev1.NodeInclusionPolicyIgnore)
					honorTaints(c)
				}
				c.node("a2", "a", "pool", "p")
				c.node("b1", "b")
				c.node("x", "a", "pool", "p")
				c.pod("a2", "web-1", "web", "1", pool, spread(zoneKey, "web", 1, ignore))
				c.pod("x", "web-2", "web", "1", pool, spread(zoneKey, "web", 1, ignore))
			},
			why: "topology spread constraint on topology.kubernetes.io/zone",
		},
		{
			name: "hostname anti-affinity: the only node with room runs a peer",
			setup: func(c *simCluster) {
				c.node("n1", "a")
				c.node("n2", "a")
				c.node("x", "a")
				c.pod("n1", "db-1", "db", "1", antiAffinity(hostKey, "db"))
				c.pod("n2", "filler", "filler", "3500m")
				c.pod("x", "db-2", "db", "1", antiAffinity(hostKey, "db"))
			},
			why: "pod default/db-2 can move only in violation of its required pod anti-affinity on kubernetes.io/hostname",
		},
		{
			name: "hostname anti-affinity: a node without a peer takes the pod",
			setup: func(c *simCluster) {
				c.node("n1", "a")
				c.node("n2", "a")
				c.node("x", "a")
				c.pod("n1", "db-1", "db", "1", antiAffinity(hostKey, "db"))
				c.pod("n2", "filler", "filler", "2")
				c.pod("x", "db-2", "db", "1", antiAffinity(hostKey, "db"))
			},
			to: []string{"n2"},
		},
		{
			name: "hostname anti-affinity: two peers leaving one node go to two nodes",
			setup: func(c *simCluster) {
				c.node("n1", "a")
				c.node("n2", "a")
				c.node("x", "a")
				// Bound before the rule existed (IgnoredDuringExecution).
				c.pod("x", "db-1", "db", "1", antiAffinity(hostKey, "db"))
				c.pod("x", "db-2", "db", "1", antiAffinity(hostKey, "db"))
			},
			to: []string{"n1", "n2"},
		},
		{
			name: "an existing pod's anti-affinity refuses the moved pod",
			setup: func(c *simCluster) {
				c.node("n1", "a")
				c.node("x", "a")
				c.pod("n1", "guard", "guard", "1", antiAffinity(hostKey, "web"))
				c.pod("x", "web", "web", "1")
			},
			why: "the required pod anti-affinity of pod default/guard on kubernetes.io/hostname",
		},
		{
			name: "zone anti-affinity: the zone of a peer is out",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("b1", "b")
				c.node("x", "c")
				c.pod("a1", "db-1", "db", "1", antiAffinity(zoneKey, "db"))
				c.pod("x", "db-2", "db", "1", antiAffinity(zoneKey, "db"))
			},
			to: []string{"b1"},
		},
		{
			name: "pod affinity: the pod goes to the zone of its cache",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("b1", "b")
				c.node("x", "b")
				c.pod("b1", "cache", "cache", "1")
				c.pod("x", "web", "web", "1", affinity(term(zoneKey, "cache")))
			},
			to: []string{"b1"},
		},
		{
			name: "pod affinity: no room in the zone of its cache",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("b1", "b")
				c.node("x", "b")
				c.pod("b1", "cache", "cache", "3500m")
				c.pod("x", "web", "web", "1", affinity(term(zoneKey, "cache")))
			},
			why: "its required pod affinity on topology.kubernetes.io/zone",
		},
		{
			name: "pod affinity to itself: the only pod of its group goes anywhere",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("x", "b")
				c.pod("x", "solo", "solo", "1", affinity(term(zoneKey, "solo")))
			},
			to: []string{"a1"},
		},
		{
			name: "pod affinity with a namespaceSelector is not simulated: the node stays",
			setup: func(c *simCluster) {
				c.node("a1", "a")
				c.node("x", "a")
				t := term(zoneKey, "cache")
				t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
				c.pod("a1", "cache", "cache", "1")
				c.pod("x", "web", "web", "1", affinity(t))
			},
			why: "cannot be simulated",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newSimCluster()
			tc.setup(c)
			sim := newSimulation(c.v)
			// A trial changes nothing: twice the same answer.
			to, why := sim.place(c.v.PodsOn["x"], "x", false)
			to2, why2 := sim.place(c.v.PodsOn["x"], "x", false)
			if !reflect.DeepEqual(to, to2) || why != why2 {
				t.Fatalf("a trial changed the simulation: %v %q, then %v %q", to, why, to2, why2)
			}
			if tc.to == nil {
				if why == "" || !strings.Contains(why, tc.why) {
					t.Fatalf("pods moved to %v (why %q), want them kept for %q", to, why, tc.why)
				}
				return
			}
			sort.Strings(to)
			if why != "" || !reflect.DeepEqual(to, tc.to) {
				t.Fatalf("pods moved to %v (why %q), want %v", to, why, tc.to)
			}
		})
	}
}

// A committed placement holds for the next: the second node's pod sees
// the first one's moved there, and the first node stays a (drained) domain.
func TestSimulationCommittedMovesCount(t *testing.T) {
	c := newSimCluster()
	c.node("n1", "a")
	c.node("x", "a")
	c.node("y", "a")
	c.pod("x", "db-1", "db", "1", antiAffinity(hostKey, "db"))
	c.pod("y", "db-2", "db", "1", antiAffinity(hostKey, "db"))
	sim := newSimulation(c.v)
	if to, why := sim.place(c.v.PodsOn["x"], "x", true); why != "" || !reflect.DeepEqual(to, []string{"n1"}) {
		t.Fatalf("x: to %v why %q, want n1", to, why)
	}
	sim.remove("x")
	if to, why := sim.place(c.v.PodsOn["y"], "y", false); !strings.Contains(why, "pod anti-affinity on kubernetes.io/hostname") {
		t.Fatalf("y: to %v why %q, want refused: db-1 moved to n1", to, why)
	}

	// The same with a hostname spread: n1 has 1 pod after the first move;
	// x, drained, and y have none (the global minimum is 0).
	c = newSimCluster()
	c.node("n1", "a")
	c.node("x", "a")
	c.node("y", "a")
	c.pod("x", "web-1", "web", "1", spread(hostKey, "web", 1))
	c.pod("y", "web-2", "web", "1", spread(hostKey, "web", 1))
	sim = newSimulation(c.v)
	if _, why := sim.place(c.v.PodsOn["y"], "y", false); why != "" {
		t.Fatalf("y alone: %q, want it movable", why)
	}
	if to, why := sim.place(c.v.PodsOn["x"], "x", true); why != "" || !reflect.DeepEqual(to, []string{"n1"}) {
		t.Fatalf("x: to %v why %q, want n1", to, why)
	}
	sim.remove("x")
	if to, why := sim.place(c.v.PodsOn["y"], "y", false); !strings.Contains(why, "topology spread constraint on kubernetes.io/hostname") {
		t.Fatalf("y: to %v why %q, want refused: web-1 moved to n1", to, why)
	}
}

func TestDomainCountsMin(t *testing.T) {
	base := newDomainBase(map[string]int{"a": 0, "b": 1, "c": 1, "d": 3})
	cases := []struct {
		name    string
		delta   map[string]int
		min     int
		domains int
	}{
		{"no trial", nil, 0, 4},
		{"the only empty domain gains pods", map[string]int{"a": 2}, 1, 4},
		{"both domains with one pod lose it", map[string]int{"b": -1, "c": -1}, 0, 4},
		{"all the lowest gain", map[string]int{"a": 3, "b": 2, "c": 2}, 3, 4},
		{"a domain touched and unchanged", map[string]int{"a": 0}, 0, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			low, domains := domainCounts{domainBase: base, delta: tc.delta}.min()
			if low != tc.min || domains != tc.domains {
				t.Errorf("min %d over %d domains, want %d over %d", low, domains, tc.min, tc.domains)
			}
		})
	}
	if (domainCounts{domainBase: newDomainBase(map[string]int{})}).empty() != true {
		t.Error("no domain: not empty")
	}
}

// BenchmarkSimulationTopology evaluates every node of a cluster where
// every pod has a zone and a hostname spread constraint, as a scale-down
// pass does.
func BenchmarkSimulationTopology(b *testing.B) {
	for _, size := range []struct{ nodes, podsPerNode int }{{200, 30}, {1000, 30}} {
		b.Run(fmt.Sprintf("%dx%d", size.nodes, size.podsPerNode), func(b *testing.B) {
			c := newSimCluster()
			small := func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("100Mi")
			}
			for i := 0; i < size.nodes; i++ {
				n := fmt.Sprintf("n%04d", i)
				c.node(n, []string{"a", "b", "c"}[i%3])
				for j := 0; j < size.podsPerNode; j++ {
					app := fmt.Sprintf("app%d", j)
					c.pod(n, fmt.Sprintf("%s-%d", app, i), app, "10m", small, spread(zoneKey, app, 1), spread(hostKey, app, 5))
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sim := newSimulation(c.v)
				for _, n := range c.v.Nodes {
					if _, why := sim.place(c.v.PodsOn[n.Name], n.Name, false); why != "" {
						b.Fatal(why)
					}
				}
			}
		})
	}
}
