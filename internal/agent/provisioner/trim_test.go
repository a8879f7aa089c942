package provisioner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What the controllers read survives the trim; the rest goes.
func TestCacheTransform(t *testing.T) {
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "n", Labels: map[string]string{"app": "web"},
			Annotations:     map[string]string{AnnotationSafeToEvict: "false", lastApplied: `{"huge":true}`},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web"}},
		},
		Spec: corev1.PodSpec{
			NodeName: "n1", NodeSelector: map[string]string{"pool": "a"}, PriorityClassName: "high",
			Tolerations: []corev1.Toleration{{Key: "k"}},
			Volumes:     []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{Name: "c", Image: "img", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				Resources: corev1.ResourceRequirements{Requests: req}, Ports: []corev1.ContainerPort{{HostPort: 80}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, NominatedNodeName: "n2",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c"}}},
	}
	obj, err := CacheTransform(pod)
	if err != nil {
		t.Fatal(err)
	}
	p := obj.(*corev1.Pod)
	if p.ManagedFields != nil || p.Annotations[lastApplied] != "" || p.Spec.Containers[0].Env != nil || p.Spec.Containers[0].Image != "" || p.Status.ContainerStatuses != nil {
		t.Errorf("not trimmed: %+v", p)
	}
	if p.Annotations[AnnotationSafeToEvict] != "false" || p.Labels["app"] != "web" || len(p.OwnerReferences) != 1 ||
		p.Spec.NodeName != "n1" || p.Spec.NodeSelector["pool"] != "a" || len(p.Spec.Tolerations) != 1 || p.Spec.Volumes[0].EmptyDir == nil ||
		p.Spec.PriorityClassName != "high" || !p.Spec.Containers[0].Resources.Requests.Cpu().Equal(resource.MustParse("1")) ||
		p.Spec.Containers[0].Ports[0].HostPort != 80 || p.Status.Phase != corev1.PodRunning || p.Status.NominatedNodeName != "n2" || len(p.Status.Conditions) != 1 {
		t.Errorf("trimmed too much: %+v", p)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}}}
	if obj, _ := CacheTransform(node); obj.(*corev1.Node).ManagedFields != nil {
		t.Error("managed fields kept on a node")
	}
}
