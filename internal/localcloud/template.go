package localcloud

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// TemplateNode returns the Node an instance of the group would register if
// it were launched now with the given instance type in zone: the same
// labels, taints, capacity and allocatable as a real local node, under the
// given name and without a provider ID. cluster-autoscaler simulates a
// scale-up with it (see internal/casgrpc).
func TemplateNode(g provider.NodeGroup, name, instanceType, zone, region string) (*corev1.Node, error) {
	t, ok := ec2catalog.Lookup(instanceType)
	if !ok {
		return nil, fmt.Errorf("node group %s: instance type %q is not in the catalogue", g.ID, instanceType)
	}
	in := provider.Instance{Group: g.ID, InstanceType: instanceType, Zone: zone, Lifecycle: g.Lifecycle, NodeName: name}
	return nodeFor(&g, &in, t, region)
}

// ZoneTemplates returns, for a group, one template node per zone built from
// its first (preferred) instance type: what the provisioner simulates
// placement on before it asks for capacity.
func ZoneTemplates(region string) func(g provider.NodeGroup) ([]*corev1.Node, error) {
	return func(g provider.NodeGroup) ([]*corev1.Node, error) {
		if len(g.InstanceTypes) == 0 {
			return nil, fmt.Errorf("node group %s has no instance types", g.ID)
		}
		out := make([]*corev1.Node, 0, len(g.Zones))
		for _, z := range g.Zones {
			n, err := TemplateNode(g, "template-"+g.Pool, g.InstanceTypes[0], z, region)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	}
}
