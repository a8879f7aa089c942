package provisioner

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/provider/fake"
)

// Only pods the scheduler gave up on trigger a scale-up; a pod it is
// making room for by preemption (nominated node) does not.
func TestUnschedulable(t *testing.T) {
	cond := func(reason string) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: reason}}
	}
	now := metav1.Now()
	pods := map[string]*corev1.Pod{
		"waiting":   {Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable)}},
		"nominated": {Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable), NominatedNodeName: "n1"}},
		"bound":     {Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable)}},
		"deleting":  {ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable)}},
		"untried":   {},
		"gated":     {Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonSchedulingGated)}},
	}
	var in []*corev1.Pod
	for name, p := range pods {
		p.Name = name
		in = append(in, p)
	}
	got := unschedulable(in)
	if len(got) != 1 || got[0].Name != "waiting" {
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
		}
		t.Errorf("unschedulable = %v, want [waiting]", names)
	}
}

// The latency's start is the condition's transition time (stored to the
// second), refined by when the controller saw the change in that second.
func TestPendingSince(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0.Add(400 * time.Millisecond))
	p, err := New(Options{Provider: fake.New(nil, nil, clk.Now), Templates: template, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	p.Seen("a")
	if got := p.pendingSince("a", t0); !got.Equal(t0.Add(400 * time.Millisecond)) {
		t.Errorf("seen 400ms into the second: start %s, want the seen time", got.Sub(t0))
	}
	p.Seen("b")
	if got := p.pendingSince("b", t0.Add(-2*time.Second)); !got.Equal(t0.Add(-2 * time.Second)) {
		t.Errorf("seen long after the transition (a restart): start %s, want the transition time", got.Sub(t0))
	}
	if got := p.pendingSince("never-seen", t0); !got.Equal(t0) {
		t.Errorf("never seen: start %s, want the transition time", got.Sub(t0))
	}
}
