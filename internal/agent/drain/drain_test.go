package drain

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/testenv"
)

var podsResource = corev1.SchemeGroupVersion.WithResource("pods")

func pod(name, node, owner string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: owner, Name: "x", Controller: ptr.To(true)}}
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// cluster is a fake API whose pod list honours the node field selector
// and whose evictions delete the pod unless refuse says otherwise.
type cluster struct {
	cs      *k8sfake.Clientset
	mu      sync.Mutex
	evicted []string
	// refuse, when set, answers an eviction instead of the API.
	refuse func(name string) error
	// keep leaves evicted pods in place (they never terminate).
	keep bool
}

func newCluster(t *testing.T, pods ...*corev1.Pod) *cluster {
	t.Helper()
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, p)
	}
	c := &cluster{cs: k8sfake.NewClientset(objs...)}
	testenv.FilterPodsByNodeName(c.cs)
	c.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
		if c.refuse != nil {
			if err := c.refuse(name); err != nil {
				return true, nil, err
			}
		}
		if _, err := c.cs.Tracker().Get(podsResource, a.GetNamespace(), name); err != nil {
			return true, nil, err
		}
		c.mu.Lock()
		c.evicted = append(c.evicted, name)
		c.mu.Unlock()
		if c.keep {
			return true, nil, nil
		}
		return true, nil, c.cs.Tracker().Delete(podsResource, a.GetNamespace(), name)
	})
	return c
}

func (c *cluster) evictions() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for _, n := range c.evicted {
		out[n] = true
	}
	return out
}

var fast = Options{Timeout: 5 * time.Second, RetryEvery: 10 * time.Millisecond, PollEvery: 10 * time.Millisecond}

// Every pod of the node goes but DaemonSet and mirror pods; other nodes'
// pods stay.
func TestDrainEvictsWhatMoves(t *testing.T) {
	c := newCluster(t,
		pod("web", "n1", "ReplicaSet"),
		pod("db-0", "n1", "StatefulSet", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}),
		pod("done", "n1", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		pod("agent", "n1", "DaemonSet"),
		pod("static", "n1", "", func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }),
		pod("elsewhere", "n2", "ReplicaSet"),
	)
	if err := Node(context.Background(), c.cs, "n1", fast); err != nil {
		t.Fatal(err)
	}
	got := c.evictions()
	for _, name := range []string{"web", "db-0", "done"} {
		if !got[name] {
			t.Errorf("%s not evicted (evicted: %v)", name, got)
		}
	}
	for _, name := range []string{"agent", "static", "elsewhere"} {
		if got[name] {
			t.Errorf("%s evicted", name)
		}
	}
}

// A pod no controller recreates fails the drain before anything is
// evicted, unless bare pods may go.
func TestDrainBarePods(t *testing.T) {
	c := newCluster(t, pod("web", "n1", "ReplicaSet"), pod("debug", "n1", ""))
	err := Node(context.Background(), c.cs, "n1", fast)
	if err == nil || !strings.Contains(err.Error(), "shop/debug") {
		t.Errorf("error %v, want one naming shop/debug", err)
	}
	if len(c.evictions()) != 0 {
		t.Errorf("evicted %v before failing", c.evictions())
	}
	force := fast
	force.EvictBarePods = true
	if err := Node(context.Background(), c.cs, "n1", force); err != nil {
		t.Fatal(err)
	}
	if got := c.evictions(); !got["web"] || !got["debug"] {
		t.Errorf("evicted %v, want web and debug", got)
	}
}

// An eviction a PodDisruptionBudget refuses is asked again until it is
// allowed, or the drain times out saying why.
func TestDrainRetriesWhatAPDBRefuses(t *testing.T) {
	tooMany := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	var refusals atomic.Int32
	c := newCluster(t, pod("web", "n1", "ReplicaSet"))
	c.refuse = func(string) error {
		if refusals.Add(1) <= 3 {
			return tooMany
		}
		return nil
	}
	if err := Node(context.Background(), c.cs, "n1", fast); err != nil {
		t.Fatal(err)
	}
	if refusals.Load() != 4 || !c.evictions()["web"] {
		t.Errorf("%d eviction requests, evicted %v; want 4 and web", refusals.Load(), c.evictions())
	}

	c = newCluster(t, pod("web", "n1", "ReplicaSet"))
	c.refuse = func(string) error { return tooMany }
	short := fast
	short.Timeout = 100 * time.Millisecond
	err := Node(context.Background(), c.cs, "n1", short)
	if err == nil || !strings.Contains(err.Error(), "PodDisruptionBudget") {
		t.Errorf("error %v, want a timeout naming the PodDisruptionBudget", err)
	}
}

// The drain waits for evicted pods to be gone; one that never goes fails it
// at the timeout. A pod already gone is fine; another error fails at once.
func TestDrainWaitsForPodsToGo(t *testing.T) {
	c := newCluster(t, pod("web", "n1", "ReplicaSet"))
	c.keep = true
	short := fast
	short.Timeout = 100 * time.Millisecond
	if err := Node(context.Background(), c.cs, "n1", short); err == nil || !strings.Contains(err.Error(), "waiting for shop/web to go") {
		t.Errorf("error %v, want a timeout waiting for shop/web", err)
	}

	c = newCluster(t, pod("web", "n1", "ReplicaSet"))
	c.refuse = func(name string) error { return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name) }
	if err := Node(context.Background(), c.cs, "n1", fast); err != nil {
		t.Errorf("a pod gone before its eviction: %v", err)
	}

	c = newCluster(t, pod("web", "n1", "ReplicaSet"))
	c.refuse = func(name string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, name, nil)
	}
	start := time.Now()
	if err := Node(context.Background(), c.cs, "n1", fast); err == nil || time.Since(start) > time.Second {
		t.Errorf("a forbidden eviction: error %v after %s, want an error at once", err, time.Since(start))
	}
}
