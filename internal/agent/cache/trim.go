// Package cache is what the agent's shared informer caches hold: the
// transform (CacheTransform) trims objects to the fields the controllers
// read and interns repeated strings, labels and specs, so tens of
// thousands of pods cost a fraction of their decoded size.
package cache

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/agent/placement"
)

// lastApplied is kubectl's copy of the whole object in an annotation.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// podAnnotations are the only pod annotations a controller reads (the
// scale-down's and reaper's eviction rules); a controller that starts
// reading another one adds it here, and to TestCacheTransformKeepsWhatControllersRead.
var podAnnotations = []string{placement.AnnotationSafeToEvict, corev1.MirrorPodAnnotationKey}

// CacheTransform trims objects before they enter an informer cache
// (informers.WithTransform). Managed fields and kubectl's last-applied
// copy go from every object. Pods and Nodes, the caches that grow with
// the cluster (30,000 pods and 1,400 nodes in the scale benchmark), are
// rebuilt with only the fields the controllers read — every reader is
// listed in trim_test.go, which fails when one reads a field trimmed
// here — and the values thousands of them repeat (namespaces, node
// names, label sets, requests, tolerations, owners) are shared between
// objects instead of copied into each one.
//
// Objects in an informer cache are read-only for every reader
// (client-go's rule, which the agent's controllers follow: they copy
// before they write), which is what makes sharing safe.
func CacheTransform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return cachedPod(o), nil
	case *corev1.Node:
		trimNode(o)
		return o, nil
	case metav1.Object:
		trimMeta(o)
	}
	return obj, nil
}

// trimMeta drops managed fields and the last-applied annotation.
func trimMeta(m metav1.Object) {
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

// cachedPod is the pod as the caches keep it: what placement, scale-down,
// the reaper, the overprovisioner and the janitor read, nothing else.
// Gone: managed fields, generated name, finalizers, annotations other
// than podAnnotations, container images, commands, environment, probes,
// mounts and limits (no controller reads limits: requests are what the
// scheduler packs), volumes other than local storage and claims, pod
// (anti-)affinity and preferred node affinity, container statuses, IPs,
// condition messages, and conditions other than PodScheduled while the
// pod has no node and DisruptionTarget. It is idempotent: a trimmed pod
// comes out the same.
func cachedPod(p *corev1.Pod) *corev1.Pod {
	in := interned
	in.mu.Lock()
	defer in.mu.Unlock()
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: in.str(p.Kind), APIVersion: in.str(p.APIVersion)},
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: in.str(p.Namespace), UID: p.UID, ResourceVersion: p.ResourceVersion,
			CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
			Labels: in.labels(p.Labels), Annotations: in.annotations(p.Annotations, podAnnotations),
			OwnerReferences: in.owners(p.OwnerReferences),
		},
		Spec: corev1.PodSpec{
			NodeName: in.str(p.Spec.NodeName), NodeSelector: in.labels(p.Spec.NodeSelector),
			Affinity: requiredNodeAffinity(p.Spec.Affinity), Tolerations: in.tolerations(p.Spec.Tolerations),
			Priority: in.int32(p.Spec.Priority), PriorityClassName: in.str(p.Spec.PriorityClassName),
			Containers: in.containers(p.Spec.Containers), InitContainers: in.containers(p.Spec.InitContainers),
			Overhead: p.Spec.Overhead, Resources: p.Spec.Resources,
			Volumes: localVolumes(p.Spec.Volumes),
			// Nearly always nil; the overprovisioner's burst release
			// reads its own gate.
			SchedulingGates: p.Spec.SchedulingGates,
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodPhase(in.str(string(p.Status.Phase))), NominatedNodeName: in.str(p.Status.NominatedNodeName),
			Conditions: in.conditions(p),
		},
	}
}

// requiredNodeAffinity keeps the one part of a pod's affinity placement
// reads.
func requiredNodeAffinity(a *corev1.Affinity) *corev1.Affinity {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	if a.PodAffinity == nil && a.PodAntiAffinity == nil && a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution == nil {
		return a
	}
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution,
	}}
}

// localVolumes keeps the volumes a controller looks at: local storage
// (emptyDir, hostPath: the pod keeps its node) and claims (the janitor's
// pvcIsNotMounted); the service account token every pod mounts, config
// maps, secrets and the like go.
func localVolumes(vs []corev1.Volume) []corev1.Volume {
	n := 0
	for i := range vs {
		if keptVolume(&vs[i]) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]corev1.Volume, 0, n)
	for i := range vs {
		if v := &vs[i]; keptVolume(v) {
			out = append(out, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
				EmptyDir: v.EmptyDir, HostPath: v.HostPath, PersistentVolumeClaim: v.PersistentVolumeClaim,
			}})
		}
	}
	return out
}

func keptVolume(v *corev1.Volume) bool {
	return v.EmptyDir != nil || v.HostPath != nil || v.PersistentVolumeClaim != nil
}

// trimNode keeps of a node what the controllers read: its metadata, spec
// (taints, unschedulable, provider ID), allocatable and Ready condition;
// capacity, images, addresses, system info, volumes and the other
// conditions go, and label values and allocatable lists are shared.
func trimNode(n *corev1.Node) {
	trimMeta(n)
	in := interned
	in.mu.Lock()
	defer in.mu.Unlock()
	n.Kind, n.APIVersion = in.str(n.Kind), in.str(n.APIVersion)
	if len(n.Labels) > 0 {
		labels := make(map[string]string, len(n.Labels))
		for k, v := range n.Labels {
			labels[in.str(k)] = in.str(v)
		}
		n.Labels = labels
	}
	var ready []corev1.NodeCondition
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: c.Status, Reason: in.str(c.Reason), LastTransitionTime: c.LastTransitionTime}}
			break
		}
	}
	n.Status = corev1.NodeStatus{Allocatable: in.resources(n.Status.Allocatable), Conditions: ready}
}
