package console

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// podMetricsGVR is the metrics API's pod usage (metrics-server).
var podMetricsGVR = schema.GroupVersionResource{Group: "metrics.k8s.io", Version: "v1beta1", Resource: "pods"}

// ErrNoMetricsAPI is returned (wrapped) by a MetricsSource whose cluster
// does not serve the metrics API.
var ErrNoMetricsAPI = errors.New("metrics API not served")

// MetricsSource reads the current usage of one cluster's containers.
type MetricsSource interface {
	// ContainerUsage returns the latest usage by "namespace/pod/container".
	// When the cluster does not serve the metrics API the error satisfies
	// errors.Is(err, ErrNoMetricsAPI): usage is then unknown, not zero.
	// Any other error is transient: the last reading stands.
	ContainerUsage(ctx context.Context) (UsageByContainer, error)
}

// DynamicMetrics reads metrics.k8s.io/v1beta1 PodMetrics (as served by
// metrics-server) with a dynamic client.
type DynamicMetrics struct{ Client dynamic.Interface }

// ContainerUsage implements MetricsSource.
func (m DynamicMetrics) ContainerUsage(ctx context.Context) (UsageByContainer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := m.Client.Resource(podMetricsGVR).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("listing pod metrics, %w: %w", ErrNoMetricsAPI, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listing pod metrics, %w", err)
	}
	return parsePodMetrics(list.Items)
}

// pollUsage reads container usage from the metrics API every interval
// (L38, L51: slack is requested minus used), keeps the latest reading for
// cost and adds it to the usage history for right-sizing. A cluster
// without the metrics API keeps usage unknown and records no history.
func (c *cluster) pollUsage(ctx context.Context, every time.Duration) {
	if c.metrics == nil || every <= 0 {
		return
	}
	t := c.clock.NewTicker(every)
	defer t.Stop()
	for {
		usage, err := c.metrics.ContainerUsage(ctx)
		switch {
		case err == nil:
			c.mu.Lock()
			c.usage = usage
			c.mu.Unlock()
			if c.history != nil {
				c.history.record(c.containerSamples(usage))
			}
		case errors.Is(err, ErrNoMetricsAPI):
			c.mu.Lock()
			c.usage = nil // no metrics API: usage unknown, not zero
			c.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// containerSamples attributes a reading to workloads and requests from the
// cache. Readings of pods the cache does not hold yet are left out.
func (c *cluster) containerSamples(usage UsageByContainer) []ContainerSample {
	podKind := Kinds[kindOrder["Pod"]]
	out := make([]ContainerSample, 0, len(usage))
	for key, u := range usage {
		ns, rest, _ := strings.Cut(key, "/")
		pod, ctr, _ := strings.Cut(rest, "/")
		cd, ok := c.object(podKind, ns, pod)
		if !ok || cd.Pod == nil {
			continue
		}
		cs := ContainerSample{Key: key, Workload: ns + "/" + c.workloadOf(cd.Item), Container: ctr, Usage: u}
		for _, r := range cd.Pod.Containers {
			if r.Name == ctr {
				cs.Request = Usage{CPU: r.CPU, MemGiB: r.MemGiB}
			}
		}
		out = append(out, cs)
	}
	return out
}

// workloadOf follows a pod's controller owners through the cache (a
// ReplicaSet to its Deployment, a Job to its CronJob) and returns the top
// one as "Kind/name"; the pod itself when it has no owner.
func (c *cluster) workloadOf(it *Item) string {
	top := it.Kind + "/" + it.Name
	for owner, depth := it.Owner, 0; owner != "" && depth < 3; depth++ {
		top = owner
		kind, name, _ := strings.Cut(owner, "/")
		k, ok := LookupKind(kind)
		if !ok {
			break
		}
		cd, ok := c.object(k, it.Namespace, name)
		if !ok {
			break
		}
		owner = cd.Item.Owner
	}
	return top
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
