package console

import (
	corev1 "k8s.io/api/core/v1"
)

// Cost computes the fleet's cost report from the caches. Usage comes from
// requests (the metrics API is not read yet), so slack is zero until it is;
// the report says so with UsageKnown.
func (c *Console) Cost() CostReport {
	in := make([]ClusterCostInput, 0, len(c.clusters))
	for _, cl := range c.clusters {
		ci := ClusterCostInput{Cluster: cl.src.Name}
		for _, o := range cl.list(Kinds[kindOrder["Node"]]) {
			if n, ok := o.(*corev1.Node); ok {
				ci.Nodes = append(ci.Nodes, n)
			}
		}
		for _, o := range cl.list(Kinds[kindOrder["Pod"]]) {
			if p, ok := o.(*corev1.Pod); ok {
				ci.Pods = append(ci.Pods, p)
			}
		}
		in = append(in, ci)
	}
	return c.cost.ComputeCost(in)
}
