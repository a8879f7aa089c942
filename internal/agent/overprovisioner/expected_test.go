package overprovisioner

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/placement"
)

func replicaSet(name string, replicas int32, class string, mutate ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name)},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{PriorityClassName: class, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req}}}},
			},
		},
	}
	for _, m := range mutate {
		m(rs)
	}
	return rs
}

func ownedBy(rs *appsv1.ReplicaSet, name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rs.Namespace, UID: types.UID("uid-" + name),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// L12, issue 17: the pods a ReplicaSet still has to create are pending
// pods for the release, with the priority the API server will give them.
func TestExpected(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	classes := map[string]int32{"urgent": 1000, "": 0}
	priority := func(s *corev1.PodSpec) (int32, bool) {
		if s.Priority != nil {
			return *s.Priority, true
		}
		v, ok := classes[s.PriorityClassName]
		return v, ok
	}
	always := func(*appsv1.ReplicaSet) bool { return true }
	web := replicaSet("web", 5, "urgent")
	pods := []*corev1.Pod{
		ownedBy(web, "web-1"),
		ownedBy(web, "web-2", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now} }), // being replaced
		ownedBy(web, "web-3", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
	}
	got := placement.Expected([]*appsv1.ReplicaSet{web}, pods, priority, always, now, 100)
	if len(got) != 4 {
		t.Fatalf("expected pods %d, want 4 (5 replicas, 1 active)", len(got))
	}
	for i, p := range got {
		if !placement.IsExpected(p) || placement.IsExpected(pods[0]) {
			t.Errorf("pod %d: isExpected wrong", i)
		}
		if ptr.Deref(p.Spec.Priority, -1) != 1000 || p.Labels["app"] != "web" || p.Namespace != "shop" || !waiting(p) {
			t.Errorf("pod %d: priority %v, labels %v, ns %s, waiting %v", i, p.Spec.Priority, p.Labels, p.Namespace, waiting(p))
		}
		if o := metav1.GetControllerOf(p); o == nil || o.UID != web.UID || ownerOf(p).Name != "web" {
			t.Errorf("pod %d: owner %v", i, o)
		}
	}
	// The same pods again, by UID, from the same state.
	again := placement.Expected([]*appsv1.ReplicaSet{web}, pods, priority, always, now, 100)
	for i := range got {
		if got[i].UID != again[i].UID {
			t.Errorf("pod %d: UID %s then %s", i, got[i].UID, again[i].UID)
		}
	}
	if n := len(placement.Expected([]*appsv1.ReplicaSet{web}, pods, priority, always, now, 3)); n != 3 {
		t.Errorf("with limit 3: %d pods", n)
	}

	for _, c := range []struct {
		name  string
		rs    *appsv1.ReplicaSet
		fresh bool
	}{
		{"caught up", replicaSet("a", 1, "urgent"), true},
		{"scaled to zero", replicaSet("b", 0, "urgent"), true},
		{"missing longer than the TTL", replicaSet("c", 3, "urgent"), false},
		{"unknown priority class (the API server refuses its pods)", replicaSet("d", 3, "nope"), true},
		{"being deleted", replicaSet("f", 3, "urgent", func(rs *appsv1.ReplicaSet) { rs.DeletionTimestamp = &metav1.Time{Time: now} }), true},
	} {
		active := []*corev1.Pod{ownedBy(c.rs, c.rs.Name+"-1")}
		if got := placement.Expected([]*appsv1.ReplicaSet{c.rs}, active, priority, func(*appsv1.ReplicaSet) bool { return c.fresh }, now, 100); len(got) != 0 {
			t.Errorf("%s: %d expected pods, want none", c.name, len(got))
		}
	}
}

// Pods held by their own scheduling gates would not take the room: the
// release frees none for them.
func TestReleasableSkipsGatedTemplates(t *testing.T) {
	if !releasable(replicaSet("web", 3, "urgent")) {
		t.Error("a ReplicaSet without scheduling gates is not releasable")
	}
	gated := replicaSet("e", 3, "urgent", func(rs *appsv1.ReplicaSet) {
		rs.Spec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
	})
	if releasable(gated) {
		t.Error("a ReplicaSet whose pods start gated is releasable")
	}
}

// Expected pods take part in the release like pods that exist: the pause
// pods they need go, and the pods created later fit in that room without
// a second release.
func TestSelectReleaseForExpectedPods(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	prio := func(*corev1.PodSpec) (int32, bool) { return 1000, true }
	always := func(*appsv1.ReplicaSet) bool { return true }
	n1 := burstNode("n1", "default", false)
	pauses := []*corev1.Pod{pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"), pause("p3", "n1", "cluster"), pause("p4", "n1", "cluster")}
	web := replicaSet("web", 2, "urgent")
	exp := placement.Expected([]*appsv1.ReplicaSet{web}, nil, prio, always, now, 100)
	rel := SelectRelease([]*corev1.Node{n1}, append(append([]*corev1.Pod{}, pauses...), exp...))
	if got := names(rel.PausePods); strings.Count(got, ",") != 1 || len(rel.Placed) != 2 {
		t.Fatalf("released %q for %d placed pods, want two pause pods for two expected pods", got, len(rel.Placed))
	}
	// The ReplicaSet created one pod: one pod is expected, the created one
	// fits in the room already freed (its pause pod terminating).
	created := pending(burstPod("web-1", "1", 1000))
	created.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(web, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	exp = placement.Expected([]*appsv1.ReplicaSet{web}, []*corev1.Pod{created}, prio, always, now, 100)
	after := []*corev1.Pod{terminating(pauses[0]), terminating(pauses[1]), pauses[2], pauses[3], created}
	if rel := SelectRelease([]*corev1.Node{n1}, append(after, exp...)); len(rel.PausePods) != 0 || len(rel.Placed) != 2 {
		t.Errorf("after one pod was created: released %q, placed %d; want nothing more released and both placed", names(rel.PausePods), len(rel.Placed))
	}
}
