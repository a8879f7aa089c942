package overprovisioner

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

// A burst usually arrives as a ReplicaSet scaled up (a Deployment's
// replicas raised by a person, an HPA or a pipeline): its spec says at
// once how many pods it is about to create, while the ReplicaSet
// controller creates them in growing batches over a second or more. The
// burst release counts the pods a ReplicaSet still has to create as
// pending pods ("expected" pods) and releases the room for them before
// they exist, so most of a burst's pods find their room free on their
// first scheduling attempt instead of failing it and backing off (L12,
// issue 17).

// expectedTTL bounds how long a ReplicaSet's missing pods count as
// expected from the moment the release first saw them missing: pods that
// are not created (a quota, an admission policy that refuses them) hold
// the room for no longer than this, then the held pause pods take it
// back.
const expectedTTL = time.Minute

// maxExpected bounds the expected pods of one release.
const maxExpected = 1000

// expectedUIDSuffix marks the UID of an expected pod.
const expectedUIDSuffix = "/expected-"

// Expected returns the pods the ReplicaSets are about to create, as
// pending pods with their template's spec and the priority the API server
// will give them: per ReplicaSet, spec.replicas minus its active pods
// (not terminating, not finished) among pods. Only ReplicaSets for which
// fresh reports true count (the caller's expectedTTL), not those being
// deleted, and not those whose pods will be held by scheduling gates or
// whose priority class does not exist (priority reports ok false). At
// most limit pods are returned. Each has a UID derived from its
// ReplicaSet's and its index, so a pod expected by one release is the
// same pod for the next.
func Expected(rss []*appsv1.ReplicaSet, pods []*corev1.Pod, priority func(*corev1.PodSpec) (int32, bool), fresh func(*appsv1.ReplicaSet) bool, now time.Time, limit int) []*corev1.Pod {
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
		if missing <= 0 || rs.DeletionTimestamp != nil || len(rs.Spec.Template.Spec.SchedulingGates) > 0 ||
			rs.Spec.Template.Spec.NodeName != "" || !fresh(rs) {
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

// isExpected reports a pod Expected made up (real UIDs have no slash).
func isExpected(p *corev1.Pod) bool {
	return strings.Contains(string(p.UID), expectedUIDSuffix)
}
