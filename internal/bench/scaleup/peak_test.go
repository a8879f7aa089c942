package scaleup

import "testing"

func TestPeakAgainstClusterAutoscaler(t *testing.T) {
	results := []Result{
		seconds("burst-to-running-with-burst-release", AutoscalerBosun, 4),
		seconds("burst-to-running-with-overprovisioning", AutoscalerBosun, 9),
		seconds("burst-to-running-with-overprovisioning", AutoscalerCA, 8),
		seconds("burst-to-half-running-with-burst-release", AutoscalerBosun, 2),
		seconds("burst-to-half-running-with-overprovisioning", AutoscalerCA, 3),
	}
	got := peakAgainstClusterAutoscaler(results)
	if len(got) != 2 {
		t.Fatalf("got %d results, want 2: %+v", len(got), got)
	}
	all := got[0]
	if all.Name != "burst-to-running-burst-release-against-cluster-autoscaler" || *all.Ratio != 0.5 || all.Met == nil || !*all.Met {
		t.Errorf("all: %+v (ratio %v), want ratio 0.5 and the 1.8x target met", all, *all.Ratio)
	}
	if got[1].Met != nil || *got[1].Ratio != 2.0/3 {
		t.Errorf("half: %+v, want ratio 2/3 and no target", got[1])
	}
	// 4 s against 7 s is 1.75x: missed.
	results[2] = seconds("burst-to-running-with-overprovisioning", AutoscalerCA, 7)
	if got := peakAgainstClusterAutoscaler(results); *got[0].Met {
		t.Errorf("1.75x reported as meeting the 1.8x target: %+v", got[0])
	}
	// Without cluster-autoscaler's figures, nothing.
	if got := peakAgainstClusterAutoscaler(results[:2]); len(got) != 0 {
		t.Errorf("without cluster-autoscaler: %+v, want nothing", got)
	}
}
