package placement

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Expected pods: a ReplicaSet's spec says at once how many pods it is
// about to create, while the ReplicaSet controller creates them in growing
// batches over a second or more (at the controller-manager's API rate).
// Counting the pods it still has to create as pending pods lets a
// controller act for them before they exist: the overprovisioner's burst
// release frees room for a burst's pods (L12, issue 17), and the
// provisioner asks for the capacity of released pause pods the moment
// they are deleted, not as each is re-created.

// MaxExpected bounds the expected pods a controller acts for in one pass.
const MaxExpected = 1000

// expectedUIDSuffix marks the UID of an expected pod.
const expectedUIDSuffix = "/expected-"

// Expected returns the pods the ReplicaSets are about to create, as
// pending pods with their template's spec and the priority the API server
// will give them: per ReplicaSet, spec.replicas minus its active pods
// (not terminating, not finished) among pods. Only ReplicaSets include
// reports true for count (the caller's freshness or kind), not those
// being deleted or whose template names a node, and not those whose
// priority class does not exist (priority reports ok false). At most
// limit pods are returned. Each has a UID derived from its ReplicaSet's
// and its index, so a pod expected by one pass is the same pod for the
// next.
func Expected(rss []*appsv1.ReplicaSet, pods []*corev1.Pod, priority func(*corev1.PodSpec) (int32, bool), include func(*appsv1.ReplicaSet) bool, now time.Time, limit int) []*corev1.Pod {
	active := map[types.UID]int32{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if o := metav1.GetControllerOf(p); o != nil && o.Kind == "ReplicaSet" {
			active[o.UID]++
		}
	}
	var out []*corev1.Pod
	for _, rs := range rss {
		missing := ptr.Deref(rs.Spec.Replicas, 1) - active[rs.UID]
		if missing <= 0 || rs.DeletionTimestamp != nil || rs.Spec.Template.Spec.NodeName != "" || !include(rs) {
			continue
		}
		prio, ok := priority(&rs.Spec.Template.Spec)
		if !ok {
			continue
		}
		spec := rs.Spec.Template.Spec // shared, read only
		spec.Priority = ptr.To(prio)
		owner := *metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
		for i := range missing {
			if len(out) >= limit {
				return out
			}
			out = append(out, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{
					Namespace:         rs.Namespace,
					Name:              fmt.Sprintf("%s (expected %d)", rs.Name, i),
					UID:               types.UID(fmt.Sprintf("%s%s%d", rs.UID, expectedUIDSuffix, i)),
					Labels:            rs.Spec.Template.Labels,
					OwnerReferences:   []metav1.OwnerReference{owner},
					CreationTimestamp: metav1.NewTime(now),
				},
				Spec: spec,
			})
		}
	}
	return out
}

// IsExpected reports a pod Expected made up (real UIDs have no slash).
func IsExpected(p *corev1.Pod) bool {
	return strings.Contains(string(p.UID), expectedUIDSuffix)
}
