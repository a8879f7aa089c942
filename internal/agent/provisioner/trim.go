package provisioner

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lastApplied is kubectl's copy of the whole object in an annotation.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// CacheTransform trims objects before they enter an informer cache
// (informers.WithTransform): managed fields and kubectl's last-applied
// copy go from every object, and a Pod keeps only what placement,
// scale-down and the other controllers read — metadata, scheduling
// constraints, volumes, the containers' names, resources and ports, and
// its phase and conditions. At 30,000 pods the full objects would be most
// of the agent's memory.
func CacheTransform(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a[lastApplied] != "" {
			kept := make(map[string]string, len(a)-1)
			for k, v := range a {
				if k != lastApplied {
					kept[k] = v
				}
			}
			m.SetAnnotations(kept)
		}
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		trimPod(pod)
	}
	return obj, nil
}

func trimPod(p *corev1.Pod) {
	p.Spec.Containers = trimContainers(p.Spec.Containers)
	p.Spec.InitContainers = trimContainers(p.Spec.InitContainers)
	p.Spec.EphemeralContainers = nil
	p.Status = corev1.PodStatus{
		Phase: p.Status.Phase, Conditions: p.Status.Conditions, NominatedNodeName: p.Status.NominatedNodeName,
		QOSClass: p.Status.QOSClass, StartTime: p.Status.StartTime,
	}
}

func trimContainers(in []corev1.Container) []corev1.Container {
	if len(in) == 0 {
		return in
	}
	out := make([]corev1.Container, len(in))
	for i, c := range in {
		out[i] = corev1.Container{Name: c.Name, Resources: c.Resources, Ports: c.Ports, RestartPolicy: c.RestartPolicy}
	}
	return out
}
