package controlplane

import (
	"slices"
	"testing"
)

// The scheduler and the controller-manager run at componentQPS unless
// the scheduler is given its own rate (issue 17: the controller-manager's
// default 20/s paced every burst of pods).
func TestComponentQPS(t *testing.T) {
	cm := controllerManagerArgs("kc", pki{})
	for _, want := range []string{"--kube-api-qps=200", "--kube-api-burst=400"} {
		if !slices.Contains(cm, want) {
			t.Errorf("controller-manager args %v lack %s", cm, want)
		}
	}
	if s := schedulerArgs("kc", 0); !slices.Contains(s, "--kube-api-qps=200") || !slices.Contains(s, "--kube-api-burst=400") {
		t.Errorf("scheduler args by default %v, want 200/400", s)
	}
	if s := schedulerArgs("kc", 1000); !slices.Contains(s, "--kube-api-qps=1000") || !slices.Contains(s, "--kube-api-burst=2000") || slices.Contains(s, "--kube-api-qps=200") {
		t.Errorf("scheduler args with 1000 QPS %v", s)
	}
}
