package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/bosun-platform/bosun/internal/agent/provisioner"
)

// podPage is the number of pods a list asks for at a time.
const podPage = 500

// usePagedPodInformer makes the factory's pod informer list pods a page at
// a time, trimming each page (provisioner.CacheTransform) before it asks
// for the next. The informer client-go builds lists every pod at once:
// its first list asks the API server's watch cache (resourceVersion=0,
// which ignores the page size), and the reflector holds every pod decoded
// in full until the cache's transform has run on all of them: at 30,000
// pods, several hundred megabytes for the seconds of every start (and of
// every relist after a watch error), when the agent keeps about 40 MB of
// them. The price is a consistent, paginated read (resourceVersion unset)
// instead of one from the watch cache: 60 requests for 30,000 pods,
// once per start.
//
// Call it before anything asks the factory for its pod informer.
func usePagedPodInformer(factory informers.SharedInformerFactory, namespace string) {
	factory.InformerFor(&corev1.Pod{}, func(cs kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		pods := cs.CoreV1().Pods(namespace)
		return cache.NewSharedIndexInformer(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return listPods(ctx, pods, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return pods.Watch(ctx, o)
			},
		}, &corev1.Pod{}, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	})
}

// listPods lists the pods a page at a time and returns them trimmed, in a
// list of their own (the reflector takes any list).
func listPods(ctx context.Context, pods typedcorev1.PodInterface, o metav1.ListOptions) (runtime.Object, error) {
	// The most recent state, paginated: at least as recent as any
	// resourceVersion the reflector asks for.
	o.ResourceVersion, o.ResourceVersionMatch, o.Continue, o.Limit = "", "", "", podPage
	out := &metav1.List{}
	for {
		page, err := pods.List(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("listing pods, %w", err)
		}
		for i := range page.Items {
			obj, err := provisioner.CacheTransform(&page.Items[i])
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, runtime.RawExtension{Object: obj.(runtime.Object)})
		}
		out.ResourceVersion = page.ResourceVersion
		if page.Continue == "" {
			return out, nil
		}
		o.Continue = page.Continue
	}
}
