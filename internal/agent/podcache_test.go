package agent

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
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
	factory := informers.NewSharedInformerFactory(cs, 0)
	usePagedPodInformer(factory, "")
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
}
