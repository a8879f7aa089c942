package placement

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/utils/ptr"
)

// podRequests and fits answer as the scheduler's helpers do, shortcuts
// included.
func TestPlacementAsTheScheduler(t *testing.T) {
	q := resource.MustParse
	rl := func(cpu, mem string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: q(cpu), corev1.ResourceMemory: q(mem)}
	}
	ctr := func(name string, r corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: r}}
	}
	pods := []*corev1.Pod{
		{Spec: corev1.PodSpec{Containers: []corev1.Container{ctr("a", rl("100m", "128Mi"))}}},
		{Spec: corev1.PodSpec{Containers: []corev1.Container{ctr("a", rl("500u", "1.5")), ctr("b", rl("500u", "100M")), ctr("c", nil)}}},
		{Spec: corev1.PodSpec{Containers: []corev1.Container{ctr("a", corev1.ResourceList{corev1.ResourceCPU: q("2")})}}},
		{Spec: corev1.PodSpec{Containers: []corev1.Container{ctr("a", rl("1", "1Gi"))},
			InitContainers: []corev1.Container{ctr("init", rl("3", "64Mi")), {Name: "sidecar", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Resources: corev1.ResourceRequirements{Requests: rl("250m", "2Gi")}}}}},
		{Spec: corev1.PodSpec{Containers: []corev1.Container{ctr("a", rl("1", "1Gi"))}, Overhead: rl("50m", "10Mi")}},
		{Spec: corev1.PodSpec{Containers: []corev1.Container{ctr("a", rl("1", "1Gi"))}, Resources: &corev1.ResourceRequirements{Requests: rl("3", "3Gi")}}},
		{Spec: corev1.PodSpec{NodeSelector: map[string]string{"zone": "a"}, Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}}},
		{Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}}},
		{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}}}}}}}},
	}
	nodes := []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "n2", Labels: map[string]string{"zone": "b"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "n3", Labels: map[string]string{"zone": "a"}}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "n4", Labels: map[string]string{"zone": "a"}}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoExecute}, {Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}}}},
	}
	for i, p := range pods {
		want := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		if got := PodRequests(p); got.CPU != milli(want, corev1.ResourceCPU) || got.Mem != value(want, corev1.ResourceMemory) || got.Pods != 1 {
			t.Errorf("pod %d: podRequests %+v, PodRequests %v", i, got, want)
		}
		for _, n := range nodes {
			ok, err := nodeaffinity.GetRequiredNodeAffinity(p).Match(n)
			_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(n.Spec.Taints, p.Spec.Tolerations, func(t *corev1.Taint) bool {
				return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
			})
			if want := err == nil && ok && !untolerated; Fits(p, n) != want {
				t.Errorf("pod %d on %s: fits %v, the scheduler's helpers %v", i, n.Name, !want, want)
			}
		}
	}
}
