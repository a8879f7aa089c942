package console

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// podMetricsGVR is the metrics API's pod usage (metrics-server).
var podMetricsGVR = schema.GroupVersionResource{Group: "metrics.k8s.io", Version: "v1beta1", Resource: "pods"}

// pollUsage reads container usage from the metrics API every interval
// (L38, L51: slack is requested minus used). A cluster without the metrics
// API keeps usage unknown, and cost falls back to requests.
func (c *cluster) pollUsage(ctx context.Context, every time.Duration) {
	if c.dyn == nil || every <= 0 {
		return
	}
	t := c.clock.NewTicker(every)
	defer t.Stop()
	for {
		usage, err := c.readUsage(ctx)
		c.mu.Lock()
		switch {
		case err == nil:
			c.usage = usage
		case apierrors.IsNotFound(err):
			c.usage = nil // no metrics API: usage unknown, not zero
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (c *cluster) readUsage(ctx context.Context) (UsageByContainer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := c.dyn.Resource(podMetricsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pod metrics, %w", err)
	}
	return parsePodMetrics(list.Items)
}

// parsePodMetrics turns PodMetrics objects into usage per container.
func parsePodMetrics(items []unstructured.Unstructured) (UsageByContainer, error) {
	out := UsageByContainer{}
	for _, pm := range items {
		containers, _, err := unstructured.NestedSlice(pm.Object, "containers")
		if err != nil {
			return nil, fmt.Errorf("pod metrics %s/%s, %w", pm.GetNamespace(), pm.GetName(), err)
		}
		for _, raw := range containers {
			ctr, ok := raw.(map[string]any)
			if !ok {
				continue
			}
			name, _, _ := unstructured.NestedString(ctr, "name")
			cpu, _, _ := unstructured.NestedString(ctr, "usage", "cpu")
			mem, _, _ := unstructured.NestedString(ctr, "usage", "memory")
			var u Usage
			if cpu != "" {
				q, err := resource.ParseQuantity(cpu)
				if err != nil {
					return nil, fmt.Errorf("pod metrics %s/%s container %s cpu %q, %w", pm.GetNamespace(), pm.GetName(), name, cpu, err)
				}
				u.CPU = q.AsApproximateFloat64()
			}
			if mem != "" {
				q, err := resource.ParseQuantity(mem)
				if err != nil {
					return nil, fmt.Errorf("pod metrics %s/%s container %s memory %q, %w", pm.GetNamespace(), pm.GetName(), name, mem, err)
				}
				u.MemGiB = q.AsApproximateFloat64() / (1 << 30)
			}
			out[pm.GetNamespace()+"/"+pm.GetName()+"/"+name] = u
		}
	}
	return out, nil
}

// usageSnapshot returns the last usage read, or nil when unknown.
func (c *cluster) usageSnapshot() UsageByContainer {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.usage
}
