package provisioner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The record forgets displacements past displacedTTL as new ones come,
// even when no pass asks for the counts (burst release off: no pause pod
// is ever held, so Pass never reads them).
func TestDisplacedRecordForgetsOldDisplacements(t *testing.T) {
	rs := pauseSet(3, false)
	bound := func(p *corev1.Pod) { p.Spec.NodeName = "n1" }
	d := newDisplacedHeadroom()
	d.record(pendingPod("3", "1Gi", pauseOf(rs), bound), t0)
	d.record(pendingPod("3", "1Gi", pauseOf(rs), bound), t0)
	d.record(pendingPod("3", "1Gi", pauseOf(rs), bound), t0.Add(displacedTTL))
	if len(d.pods) != 1 {
		t.Fatalf("%d displacements kept, want 1 (the two older than displacedTTL forgotten)", len(d.pods))
	}
	if got := d.counts(t0.Add(displacedTTL))[rs.UID]; got != 1 {
		t.Errorf("count %d, want 1", got)
	}
}
