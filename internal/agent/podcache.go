package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
)

// podPage is the number of pods a list asks for at a time.
const podPage = 500

// usePagedPodInformer makes the factory's pod informer list pods a page at
// a time, trimming each page (agentcache.CacheTransform) before it asks
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
// The pods a list trimmed go into the cache as they are; the informer's
// transform trims only those of watch events (trimming again would copy
// every pod once more at every start).
//
// Call it before anything asks the factory for its pod informer.
func usePagedPodInformer(factory informers.SharedInformerFactory, namespace string) error {
	listed := &listedPods{}
	inf := factory.InformerFor(&corev1.Pod{}, func(cs kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		pods := cs.CoreV1().Pods(namespace)
		return cache.NewSharedIndexInformer(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return listed.list(ctx, pods, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return pods.Watch(ctx, o)
			},
		}, &corev1.Pod{}, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	})
	if err := inf.SetTransform(listed.transform); err != nil {
		return fmt.Errorf("trimming cached pods, %w", err)
	}
	return nil
}

// listedPods are the pods the last list trimmed that have not been through
// the informer's transform yet.
type listedPods struct {
	mu   sync.Mutex
	pods map[*corev1.Pod]struct{}
}

// list lists the pods a page at a time and returns them trimmed, in a
// list of their own (the reflector takes any list).
func (l *listedPods) list(ctx context.Context, pods typedcorev1.PodInterface, o metav1.ListOptions) (runtime.Object, error) {
	// The most recent state, paginated: at least as recent as any
	// resourceVersion the reflector asks for.
	o.ResourceVersion, o.ResourceVersionMatch, o.Continue, o.Limit = "", "", "", podPage
	out := &metav1.List{}
	trimmed := map[*corev1.Pod]struct{}{}
	for {
		page, err := pods.List(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("listing pods, %w", err)
		}
		for i := range page.Items {
			obj, err := agentcache.CacheTransform(&page.Items[i])
			if err != nil {
				return nil, err
			}
			pod := obj.(*corev1.Pod)
			trimmed[pod] = struct{}{}
			out.Items = append(out.Items, runtime.RawExtension{Object: pod})
		}
		out.ResourceVersion = page.ResourceVersion
		if page.Continue == "" {
			break
		}
		o.Continue = page.Continue
	}
	l.mu.Lock()
	l.pods = trimmed // a new list replaces what an earlier one left
	l.mu.Unlock()
	return out, nil
}

// transform is the informer's: pods the list trimmed pass as they are,
// everything else goes through agentcache.CacheTransform.
func (l *listedPods) transform(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		l.mu.Lock()
		_, done := l.pods[p]
		delete(l.pods, p)
		l.mu.Unlock()
		if done {
			return p, nil
		}
	}
	return agentcache.CacheTransform(obj)
}
