package scaleup

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// growthBound reports how long the growth pods (the ones that needed new
// nodes) took from creation to being bound, p50 and p99: the end-to-end
// figure around the decision latency, which adds the scheduler, the
// nodes' boot time and any decision that did not hold. Both timestamps
// are stored by the API to the second.
func (t *trial) growthBound(ctx context.Context, autoscaler string) ([]Result, error) {
	pods, err := t.cs.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=growth", ResourceVersion: "0"})
	if err != nil {
		return nil, fmt.Errorf("listing the growth pods, %w", err)
	}
	var waits []float64
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
				waits = append(waits, c.LastTransitionTime.Sub(p.CreationTimestamp.Time).Seconds())
			}
		}
	}
	if len(waits) == 0 {
		return nil, fmt.Errorf("no growth pod is bound")
	}
	at := quantiles(waits)
	note := fmt.Sprintf("%d growth pods, from creation to bound (API timestamps, to the second): the decision, the %s boot, the scheduler under load", len(waits), t.bootDelay())
	return []Result{
		seconds("growth-pod-created-to-bound-p50", autoscaler, at(0.50)).note(note),
		seconds("growth-pod-created-to-bound-p99", autoscaler, at(0.99)),
	}, nil
}

// released reports the pods that waited for capacity and were placed
// again, by reason (the provisioner's released-pods counter).
func released(c *prometheus.CounterVec, autoscaler string) []Result {
	var out []Result
	for _, reason := range []string{"capacity-taken", "instance-lost", "launch-failed"} {
		var m dto.Metric
		if err := c.WithLabelValues(reason).Write(&m); err != nil {
			continue
		}
		n := int(m.GetCounter().GetValue())
		r := Result{Name: "pods-released-" + reason, Autoscaler: autoscaler, Count: &n}
		if reason == "capacity-taken" {
			r = r.note("pods counted on booting capacity (or asked for) that other pods took, so they were asked for again after the settle time: decisions that did not hold")
		}
		out = append(out, r)
	}
	return out
}

// bootDelay is the local cloud's boot delay as text.
func (t *trial) bootDelay() string {
	return t.sc.Cloud.BootDelay.Std(45 * time.Second).String()
}

// decisionTimes pairs, per pod, the scheduler's first FailedScheduling
// Event time (events.k8s.io eventTime: microseconds, set by the scheduler
// when it gave up on the pod) with the time the provisioner first decided
// for it: the decision latency to the millisecond, where the
// provisioner's own metric starts from a condition stored to the second.
type decisionTimes struct {
	mu      sync.Mutex
	failed  map[string]time.Time
	decided map[string]time.Time
}

// watchFailedScheduling records the scheduler's FailedScheduling Events
// of the benchmark's pods until ctx ends.
func (t *trial) watchFailedScheduling(ctx context.Context) (*decisionTimes, error) {
	d := &decisionTimes{failed: map[string]time.Time{}, decided: map[string]time.Time{}}
	f := informers.NewSharedInformerFactoryWithOptions(t.cs, 0, informers.WithNamespace(benchNamespace))
	record := func(obj any) {
		ev, ok := obj.(*eventsv1.Event)
		if !ok || ev.Reason != "FailedScheduling" || ev.Regarding.Kind != "Pod" || ev.EventTime.IsZero() {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if at, seen := d.failed[ev.Regarding.Name]; !seen || ev.EventTime.Time.Before(at) {
			d.failed[ev.Regarding.Name] = ev.EventTime.Time
		}
	}
	if _, err := f.Events().V1().Events().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: record, UpdateFunc: func(_, obj any) { record(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watching scheduling events, %w", err)
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("the %v informer did not sync", typ)
		}
	}
	return d, nil
}

// decide is the provisioner's Decided hook.
func (d *decisionTimes) decide(pod *corev1.Pod, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.decided[pod.Name]; !ok {
		d.decided[pod.Name] = at
	}
}

// results reports the decision latency quantiles over the pods with both
// times.
func (d *decisionTimes) results(autoscaler string) []Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	var lat []float64
	for name, at := range d.decided {
		if f, ok := d.failed[name]; ok {
			lat = append(lat, at.Sub(f).Seconds())
		}
	}
	if len(lat) == 0 {
		return []Result{{Name: "pending-to-requested-p99", Autoscaler: autoscaler, Target: "< 1 s", Skipped: "no pod has both a FailedScheduling Event time and a decision"}}
	}
	at := quantiles(lat)
	p99 := at(0.99)
	return []Result{
		seconds("pending-to-requested-p50", autoscaler, at(0.50)).note(fmt.Sprintf(
			"%d pods decided, %d of them with the scheduler's FailedScheduling Event; from that Event's time (microseconds, set when the scheduler gave up on the pod) to the provisioner's first decision for the pod (capacity asked for it, or counted on capacity booting)",
			len(d.decided), len(lat))),
		seconds("pending-to-requested-p90", autoscaler, at(0.90)),
		seconds("pending-to-requested-p99", autoscaler, p99).target("< 1 s", p99 < 1),
		seconds("pending-to-requested-max", autoscaler, at(1)),
	}
}

// quantiles sorts samples (not empty) and returns their nearest-rank
// q-quantile; q = 1 is the largest.
func quantiles(samples []float64) func(q float64) float64 {
	sort.Float64s(samples)
	return func(q float64) float64 { return samples[min(len(samples)-1, int(q*float64(len(samples))))] }
}
