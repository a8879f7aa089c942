package agent

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
)

// The agent's pod informer lists a page at a time, most recent state, and
// caches trimmed pods.
func TestPagedPodInformer(t *testing.T) {
	const n = 1234
	var objs []runtime.Object
	for i := range n {
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%04d", i), Namespace: "shop", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		})
	}
	cs := k8sfake.NewClientset(objs...)
	var requests []metav1.ListOptions
	// The fake clientset does not paginate; the API server does.
	cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		o := a.(k8stesting.ListActionImpl).ListOptions
		requests = append(requests, o)
		obj, err := cs.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		all := obj.(*corev1.PodList)
		from := 0
		if o.Continue != "" {
			from, _ = strconv.Atoi(o.Continue)
		}
		to := min(from+int(o.Limit), len(all.Items))
		page := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "42"}, Items: all.Items[from:to]}
		if to < len(all.Items) {
			page.Continue = strconv.Itoa(to)
		}
		return true, page, nil
	})
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(agentcache.CacheTransform))
	if err := usePagedPodInformer(factory, ""); err != nil {
		t.Fatal(err)
	}
	inf := factory.Core().V1().Pods().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if got := len(inf.GetStore().List()); got != n {
		t.Errorf("%d pods cached, want %d", got, n)
	}
	if len(requests) != 3 {
		t.Fatalf("%d list requests, want 3 pages of %d", len(requests), podPage)
	}
	for i, o := range requests {
		if o.Limit != podPage || o.ResourceVersion != "" || (i > 0) != (o.Continue != "") {
			t.Errorf("request %d: %+v, want pages of %d at the most recent state", i, o, podPage)
		}
	}
	p, _, _ := inf.GetStore().GetByKey("shop/p0001")
	if pod := p.(*corev1.Pod); pod.ManagedFields != nil || pod.Spec.Containers[0].Image != "" {
		t.Errorf("pod not trimmed: %+v", pod)
	}
	// Pods of watch events are trimmed by the transform.
	added := objs[0].(*corev1.Pod).DeepCopy()
	added.Name = "added"
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, added, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if p, ok, _ := inf.GetStore().GetByKey("shop/added"); ok {
			if pod := p.(*corev1.Pod); pod.ManagedFields != nil || pod.Spec.Containers[0].Image != "" {
				t.Errorf("watched pod not trimmed: %+v", pod)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the added pod never reached the cache")
}

// A pod the list trimmed goes into the cache as it is, not copied again;
// any other object goes through the cache transform.
func TestListedPodsNotTrimmedTwice(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}
	cs := k8sfake.NewClientset(pod)
	l := &listedPods{}
	obj, err := l.list(context.Background(), cs.CoreV1().Pods(""), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	listed := obj.(*metav1.List).Items[0].Object.(*corev1.Pod)
	if got, _ := l.transform(listed); got != listed {
		t.Error("a listed pod was trimmed again")
	}
	if got, _ := l.transform(listed); got == listed {
		t.Error("the same pointer passed twice: a second time it is not from the list")
	}
	if got, _ := l.transform(pod.DeepCopy()); got.(*corev1.Pod).Spec.Containers[0].Image != "" {
		t.Error("a watched pod was not trimmed")
	}
}
