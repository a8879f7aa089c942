package provisioner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
