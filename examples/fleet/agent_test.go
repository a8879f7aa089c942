package examplefleet_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/bosun-platform/bosun/deploy"
	examplefleet "github.com/bosun-platform/bosun/examples/fleet"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// measuredPeak is the agent's peak RSS with every controller at 30,000
// pods and 1,000 nodes (docs/benchmarks.md, "scale"): 140 MB.
var measuredPeak = resource.MustParse("140M")

// L50 (right-sized platform components), until a lint rule checks it: the
// example fleet's agent caches every pod (the overprovisioner), so its
// memory request and limit are at least what the shipped Deployment in
// deploy/agent gives, which covers the measured peak with headroom.
func TestAgentMemoryFromMeasurements(t *testing.T) {
	shipped := shippedAgentMemory(t)
	if min := measuredPeak.Value() * 3 / 2; shipped.Value() < min {
		t.Fatalf("deploy/agent gives the agent %s; the measured peak %s needs at least %d bytes (50%% headroom)", shipped.String(), measuredPeak.String(), min)
	}
	f, err := fleet.LoadFS(examplefleet.FS, "examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	results, err := r.All(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		found := false
		for _, o := range res.Objects {
			if o.Object.GetKind() != "Deployment" || o.Object.GetName() != "bosun-agent" {
				continue
			}
			found = true
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, &d); err != nil {
				t.Fatal(err)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
				if req.Cmp(shipped) < 0 || lim.Cmp(shipped) < 0 {
					t.Errorf("%s: agent container %s requests %s, limit %s; below the %s of deploy/agent", res.Cluster.ID, c.Name, req, lim, shipped.String())
				}
			}
		}
		if !found {
			t.Errorf("%s: no Deployment bosun-agent rendered", res.Cluster.ID)
		}
	}
}

func shippedAgentMemory(t *testing.T) resource.Quantity {
	t.Helper()
	docs, err := deploy.AgentManifests()
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc.YAML, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", doc.Source, err)
		}
		if d, ok := obj.(*appsv1.Deployment); ok {
			return *d.Spec.Template.Spec.Containers[0].Resources.Limits.Memory()
		}
	}
	t.Fatal("no Deployment in deploy/agent")
	return resource.Quantity{}
}
