package scaleup

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	sort.Float64s(waits)
	at := func(q float64) float64 { return waits[min(len(waits)-1, int(q*float64(len(waits))))] }
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
