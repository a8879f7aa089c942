package localcloud

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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

// maxPods is the pod capacity of every simulated node.
const maxPods = 110

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
	return int64(m), 255 + 11*maxPods + 100
}

// nodeFor builds the kwok Node of a running instance.
func nodeFor(g *provider.NodeGroup, in *provider.Instance, t ec2catalog.InstanceType, region string) (*corev1.Node, error) {
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
		Pods:        fmt.Sprint(maxPods),
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

// NodeRegistry makes Nodes appear and disappear in the clusters, as kubelets
// registering and machines vanishing would.
type NodeRegistry interface {
	// Register creates the node in the cluster; an existing node of that
	// name is not an error.
	Register(ctx context.Context, cluster string, node *corev1.Node) error
	// Deregister deletes the node; a missing node is not an error.
	Deregister(ctx context.Context, cluster, name string) error
}

// ClientRegistry is a NodeRegistry over one clientset per cluster.
type ClientRegistry struct {
	mu       sync.RWMutex
	clusters map[string]kubernetes.Interface
}

// NewClientRegistry returns an empty registry; add clusters with Add.
func NewClientRegistry() *ClientRegistry {
	return &ClientRegistry{clusters: map[string]kubernetes.Interface{}}
}

// Add makes a cluster's API reachable for node registration.
func (r *ClientRegistry) Add(cluster string, cs kubernetes.Interface) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clusters[cluster] = cs
}

func (r *ClientRegistry) client(cluster string) (kubernetes.Interface, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	cs, ok := r.clusters[cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q is not running in the local fleet", cluster)
	}
	return cs, nil
}

// Register implements NodeRegistry.
func (r *ClientRegistry) Register(ctx context.Context, cluster string, node *corev1.Node) error {
	cs, err := r.client(cluster)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("registering node %s in %s, %w", node.Name, cluster, err)
	}
	return nil
}

// Deregister implements NodeRegistry.
func (r *ClientRegistry) Deregister(ctx context.Context, cluster, name string) error {
	cs, err := r.client(cluster)
	if err != nil {
		return err
	}
	err = cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing node %s from %s, %w", name, cluster, err)
	}
	return nil
}
