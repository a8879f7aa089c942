package provider

import (
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/fleet"
)

func infraCluster() *fleet.Cluster {
	return &fleet.Cluster{
		ID: "c1", Provider: "local", Region: "eu-central-1", KubernetesVersion: "1.33",
		ConfigItems: map[string]string{},
		NodePools: []fleet.NodePool{{
			Name: "workers", Role: fleet.RoleWorker, Lifecycle: fleet.LifecycleSpot,
			InstanceTypes: []string{"m5.large", "m6i.large"}, Zones: []string{"eu-central-1a"},
			MinSize: 1, MaxSize: 5, Priority: 10, Labels: map[string]string{"team": "a"},
		}},
	}
}

func hashOf(t *testing.T, cl *fleet.Cluster) string {
	t.Helper()
	spec, err := SpecFor(cl)
	if err != nil {
		t.Fatal(err)
	}
	g := spec.Groups[0]
	if g.Labels[LabelTemplateHash] != g.TemplateHash || len(g.TemplateHash) != 16 {
		t.Fatalf("template hash label %q, hash %q", g.Labels[LabelTemplateHash], g.TemplateHash)
	}
	return g.TemplateHash
}

// L44: the template hash changes with what a node is built from, and only
// with that.
func TestTemplateHashL44ChangesWithTheNodeTemplateOnly(t *testing.T) {
	base := hashOf(t, infraCluster())
	changes := map[string]func(c *fleet.Cluster){
		"instance types": func(c *fleet.Cluster) { c.NodePools[0].InstanceTypes = []string{"m5.large"} },
		"type order":     func(c *fleet.Cluster) { c.NodePools[0].InstanceTypes = []string{"m6i.large", "m5.large"} },
		"label":          func(c *fleet.Cluster) { c.NodePools[0].Labels["team"] = "b" },
		"taint": func(c *fleet.Cluster) {
			c.NodePools[0].Taints = []fleet.Taint{{Key: "k", Value: "v", Effect: "NoSchedule"}}
		},
		"kubernetes version": func(c *fleet.Cluster) { c.KubernetesVersion = "1.34" },
		"image":              func(c *fleet.Cluster) { c.ConfigItems[ConfigNodeImage] = "ami-123" },
		"lifecycle":          func(c *fleet.Cluster) { c.NodePools[0].Lifecycle = fleet.LifecycleOnDemand },
	}
	for name, change := range changes {
		cl := infraCluster()
		change(cl)
		if hashOf(t, cl) == base {
			t.Errorf("%s: hash unchanged", name)
		}
	}
	same := map[string]func(c *fleet.Cluster){
		"maxSize":  func(c *fleet.Cluster) { c.NodePools[0].MaxSize = 50 },
		"minSize":  func(c *fleet.Cluster) { c.NodePools[0].MinSize = 0 },
		"priority": func(c *fleet.Cluster) { c.NodePools[0].Priority = 99 },
		"zones":    func(c *fleet.Cluster) { c.NodePools[0].Zones = []string{"eu-central-1a", "eu-central-1b"} },
		"channel":  func(c *fleet.Cluster) { c.Channel = "beta" },
	}
	for name, change := range same {
		cl := infraCluster()
		change(cl)
		if hashOf(t, cl) != base {
			t.Errorf("%s: hash changed, nodes would roll for nothing", name)
		}
	}
}

func TestSpecForReportsEveryBadPool(t *testing.T) {
	cl := infraCluster()
	cl.NodePools = append(cl.NodePools,
		fleet.NodePool{Name: "bad-lc", Lifecycle: "reserved", InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}},
		fleet.NodePool{Name: "bad-size", Lifecycle: "spot", InstanceTypes: []string{"m5.large"}, Zones: []string{"a"}, MinSize: 3, MaxSize: 1},
		fleet.NodePool{Name: "no-types", Lifecycle: "spot", Zones: []string{"a"}},
	)
	spec, err := SpecFor(cl)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"node pool bad-lc", "node pool bad-size", "node pool no-types"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if len(spec.Groups) != 1 || spec.Groups[0].ID != "c1/workers" {
		t.Errorf("groups %+v", spec.Groups)
	}
}
