package scaleup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
)

// timeline watches every pod of the burst and of the headroom from the
// burst on and notes, as this process sees them through one watch, when
// each burst pod was created, bound to a node and Running, and when each
// pause pod was deleted or marked for deletion. It says where a burst's
// seconds go (the ReplicaSet's pod creation, the release, the
// scheduler's binding, kwok's status update), as steps of the burst.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	// created, bound and running are per burst pod; deleted per pause pod.
	created, bound, running, deleted map[types.UID]time.Duration
}

// watchTimeline starts an informer on every pod (pods that exist before
// the burst are not the burst's) and returns the timeline, which fills
// until ctx ends.
func (t *trial) watchTimeline(ctx context.Context, start time.Time) (*timeline, error) {
	list, err := t.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods for the timeline, %w", err)
	}
	before := map[types.UID]bool{}
	for _, p := range list.Items {
		if p.Labels[overprovisioner.LabelManaged] == "" {
			before[p.UID] = true
		}
	}
	tl := &timeline{start: start, created: map[types.UID]time.Duration{}, bound: map[types.UID]time.Duration{},
		running: map[types.UID]time.Duration{}, deleted: map[types.UID]time.Duration{}}
	inf := informers.NewSharedInformerFactory(t.cs, 0).Core().V1().Pods().Informer()
	on := func(typ watch.EventType) func(obj any) {
		return func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				tl.note(typ, p, before[p.UID], time.Since(start))
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    on(watch.Added),
		UpdateFunc: func(_, obj any) { on(watch.Modified)(obj) },
		DeleteFunc: on(watch.Deleted),
	}); err != nil {
		return nil, fmt.Errorf("watching pods for the timeline, %w", err)
	}
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("the timeline's pod cache did not sync, %w", ctx.Err())
	}
	return tl, nil
}

func (tl *timeline) note(typ watch.EventType, p *corev1.Pod, old bool, at time.Duration) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	once := func(m map[types.UID]time.Duration) {
		if _, ok := m[p.UID]; !ok {
			m[p.UID] = at
		}
	}
	if p.Labels[overprovisioner.LabelManaged] != "" {
		if typ == watch.Deleted || p.DeletionTimestamp != nil {
			once(tl.deleted)
		}
		return
	}
	if old || p.Labels["app"] != appName {
		return
	}
	once(tl.created)
	if p.Spec.NodeName != "" {
		once(tl.bound)
	}
	if p.Status.Phase == corev1.PodRunning {
		once(tl.running)
	}
}

// String is one line: for each step, how many pods and when the first,
// the median and the last reached it, in seconds from the burst.
func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, s := range []struct {
		name string
		m    map[types.UID]time.Duration
	}{{"burst pods created", tl.created}, {"pause pods deleted", tl.deleted}, {"burst pods bound", tl.bound}, {"burst pods Running", tl.running}} {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", s.name, spread(s.m))
	}
	return b.String()
}

// spread is "n (first a, median b, last c)" in seconds.
func spread(m map[types.UID]time.Duration) string {
	if len(m) == 0 {
		return "0"
	}
	ds := make([]time.Duration, 0, len(m))
	for _, d := range m {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return fmt.Sprintf("%d (first %.2f s, median %.2f s, last %.2f s)", len(ds), ds[0].Seconds(), ds[len(ds)/2].Seconds(), ds[len(ds)-1].Seconds())
}
