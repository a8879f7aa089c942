package agentapi

import (
	"strings"
	"testing"
)

// The linear and ladder examples of cluster-proportional-autoscaler's
// documentation give these results.
func TestLinear(t *testing.T) {
	p, err := ParseParams("cm", map[string]string{"linear": `{"coresPerReplica":2,"nodesPerReplica":1,"min":1,"max":100,"preventSinglePointFailure":true}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cores float64
		nodes int
		want  int
	}{
		{0, 0, 1},       // min
		{1, 1, 1},       // one node: no single-point rule
		{4, 1, 2},       // cores dominate
		{2, 2, 2},       // prevent single point of failure
		{10, 3, 5},      // ceil(10/2)
		{3, 7, 7},       // nodes dominate
		{1000, 50, 100}, // max
	} {
		if got := p.Replicas(c.cores, c.nodes); got != c.want {
			t.Errorf("linear(cores %v, nodes %d) = %d, want %d", c.cores, c.nodes, got, c.want)
		}
	}
}

func TestLadder(t *testing.T) {
	p, err := ParseParams("cm", map[string]string{"ladder": `{"coresToReplicas":[[1,1],[64,3],[512,5],[1024,7],[2048,10],[4096,15]],"nodesToReplicas":[[1,1],[2,2]]}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cores float64
		nodes int
		want  int
	}{
		{0, 0, 0},
		{1, 1, 1},
		{8, 2, 2},    // nodes step 2 beats cores step 1
		{64, 2, 3},   // cores step 64 -> 3
		{600, 20, 5}, // between 512 and 1024
		{5000, 100, 15},
	} {
		if got := p.Replicas(c.cores, c.nodes); got != c.want {
			t.Errorf("ladder(cores %v, nodes %d) = %d, want %d", c.cores, c.nodes, got, c.want)
		}
	}
}

func TestParseParamsErrors(t *testing.T) {
	for name, c := range map[string]struct {
		data map[string]string
		want string
	}{
		"neither":       {map[string]string{}, "exactly one of"},
		"both":          {map[string]string{"linear": "{}", "ladder": "{}"}, "exactly one of"},
		"bad json":      {map[string]string{"linear": "{"}, "invalid JSON"},
		"unknown field": {map[string]string{"linear": `{"coresPerReplica":1,"cpr":2}`}, "unknown field"},
		"no rate":       {map[string]string{"linear": `{"min":1}`}, "coresPerReplica or nodesPerReplica"},
		"max below min": {map[string]string{"linear": `{"coresPerReplica":1,"min":3,"max":2}`}, "min 3 / max 2"},
		"empty ladder":  {map[string]string{"ladder": `{}`}, "coresToReplicas or nodesToReplicas"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseParams("kube-system/overprovisioning", c.data)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "kube-system/overprovisioning") {
				t.Fatalf("err = %v, want it to name the ConfigMap and contain %q", err, c.want)
			}
		})
	}
}
