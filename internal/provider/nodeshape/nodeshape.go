// Package nodeshape is what a node of a node group looks like to the
// scheduler, whichever provider launched it: its well-known labels, its
// capacity and allocatable (the reservation EKS's bootstrap keeps for
// system daemons, L35) and the template nodes the provisioner and
// cluster-autoscaler simulate placement on. The local cloud builds its kwok
// nodes with it; the agent builds templates with it for every provider.
package nodeshape

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Node labels real EKS, Karpenter and kops nodes carry; the local cloud sets
// them so controllers written for AWS work unchanged.
const (
	LabelInstanceType    = "node.kubernetes.io/instance-type"
	LabelZone            = "topology.kubernetes.io/zone"
	LabelRegion          = "topology.kubernetes.io/region"
	LabelCapacityType    = "karpenter.sh/capacity-type"
	LabelEKSCapacityType = "eks.amazonaws.com/capacityType"
	// AnnotationNodeGroup names the node group of a node.
	AnnotationNodeGroup = "bosun.dev/node-group"
	// AnnotationInstanceID names the instance behind a node.
	AnnotationInstanceID = "bosun.dev/instance-id"
)

// MaxPods is the pod capacity of every node.
const MaxPods = 110

// Reservation is what the node's system daemons keep for themselves
// (kube-reserved + system-reserved + eviction threshold); the scheduler sees
// capacity minus this as allocatable (L35). The figures follow the formula
// EKS's bootstrap uses:
//   - CPU: 6% of the first core, 1% of the second, 0.5% of cores 3-4 and
//     0.25% of every core above 4;
//   - memory: 255 MiB + 11 MiB per pod the node may run, plus a 100 MiB
//     hard eviction threshold.
func Reservation(vcpus int) (cpuMilli int64, memoryMiB int64) {
	var m float64
	for core := 1; core <= vcpus; core++ {
		switch {
		case core == 1:
			m += 60
		case core == 2:
			m += 10
		case core <= 4:
			m += 5
		default:
			m += 2.5
		}
	}
	return int64(m), 255 + 11*MaxPods + 100
}

// Node builds the Node of an instance of group g with instance type t in
// region: the group's labels and taints, the well-known labels, capacity
// and allocatable, annotations naming group and instance.
func Node(g *provider.NodeGroup, in *provider.Instance, t ec2catalog.InstanceType, region string) (*corev1.Node, error) {
	labels := map[string]string{}
	for k, v := range g.Labels {
		labels[k] = v
	}
	capType, eksType := "on-demand", "ON_DEMAND"
	if in.Lifecycle == provider.Spot {
		capType, eksType = "spot", "SPOT"
	}
	labels[LabelInstanceType] = in.InstanceType
	labels[LabelZone] = in.Zone
	labels[LabelRegion] = region
	labels[LabelCapacityType] = capType
	labels[LabelEKSCapacityType] = eksType
	labels["kubernetes.io/arch"] = archLabel(t.Arch)

	cpuRes, memRes := Reservation(t.VCPU)
	capCPU := resource.NewQuantity(int64(t.VCPU), resource.DecimalSI)
	capMem := resource.NewQuantity(t.MemoryMiB<<20, resource.BinarySI)
	allocCPU := resource.NewMilliQuantity(int64(t.VCPU)*1000-cpuRes, resource.DecimalSI)
	allocMem := resource.NewQuantity((t.MemoryMiB-memRes)<<20, resource.BinarySI)
	node, err := controlplane.NewNode(controlplane.NodeSpec{
		Name:        in.NodeName,
		CPU:         capCPU.String(),
		Memory:      capMem.String(),
		Pods:        fmt.Sprint(MaxPods),
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: *allocCPU, corev1.ResourceMemory: *allocMem},
		Labels:      labels,
		Taints:      g.Taints,
		Annotations: map[string]string{AnnotationNodeGroup: g.ID, AnnotationInstanceID: in.ID},
		ProviderID:  in.ProviderID,
		BootDelay:   "0s", // the instance already booted in the cloud
	})
	if err != nil {
		return nil, err
	}
	node.Status.NodeInfo.Architecture = archLabel(t.Arch)
	return node, nil
}

func archLabel(arch string) string {
	if arch == "arm64" {
		return "arm64"
	}
	return "amd64"
}

// TemplateNode returns the Node an instance of the group would register if
// it were launched now with the given instance type in zone: the same
// labels, taints, capacity and allocatable as a real node, under the given
// name and without a provider ID. cluster-autoscaler simulates a scale-up
// with it (see internal/casgrpc).
func TemplateNode(g provider.NodeGroup, name, instanceType, zone, region string) (*corev1.Node, error) {
	t, ok := ec2catalog.Lookup(instanceType)
	if !ok {
		return nil, fmt.Errorf("node group %s: instance type %q is not in the catalogue", g.ID, instanceType)
	}
	in := provider.Instance{Group: g.ID, InstanceType: instanceType, Zone: zone, Lifecycle: g.Lifecycle, NodeName: name}
	return Node(&g, &in, t, region)
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
