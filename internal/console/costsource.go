package console

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cost computes the fleet's cost report from the caches and the last read
// of each cluster's metrics API. Where that API is missing, requests stand
// in for usage and slack is zero; the report says so with UsageKnown.
func (c *Console) Cost() CostReport {
	in := make([]ClusterCostInput, 0, len(c.clusters))
	for _, cl := range c.clusters {
		ci := ClusterCostInput{Cluster: cl.src.Name, Usage: cl.usageSnapshot()}
		for _, cd := range cl.list(Kinds[kindOrder["Node"]]) {
			if cd.Node != nil {
				ci.Nodes = append(ci.Nodes, cd.Node)
			}
		}
		for _, cd := range cl.list(Kinds[kindOrder["Pod"]]) {
			if cd.Pod != nil {
				ci.Pods = append(ci.Pods, cd.costPod())
			}
		}
		in = append(in, ci)
	}
	opts, priceErr := c.costOptions()
	rep := opts.ComputeCost(in)
	rep.PriceError = priceErr
	return rep
}

// costPod rebuilds the little of a Pod that ComputeCost reads.
func (cd *cached) costPod() *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: cd.Item.Name, Namespace: cd.Item.Namespace, Labels: cd.Item.Labels},
		Spec:       corev1.PodSpec{NodeName: cd.Item.Node},
		Status:     corev1.PodStatus{Phase: cd.Pod.Phase},
	}
	for _, ctr := range cd.Pod.Containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ctr.Name, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(ctr.CPU*1000+0.5), resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(int64(ctr.MemGiB*(1<<30)+0.5), resource.BinarySI),
		}}})
	}
	return p
}
