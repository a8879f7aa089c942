package localcloud

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/nodeshape"
)

// Node labels and annotations: see nodeshape, which owns the node shape
// of every provider.
const (
	LabelInstanceType    = nodeshape.LabelInstanceType
	LabelZone            = nodeshape.LabelZone
	LabelRegion          = nodeshape.LabelRegion
	LabelCapacityType    = nodeshape.LabelCapacityType
	LabelEKSCapacityType = nodeshape.LabelEKSCapacityType
	AnnotationNodeGroup  = nodeshape.AnnotationNodeGroup
	AnnotationInstanceID = nodeshape.AnnotationInstanceID
)

// Reservation is nodeshape.Reservation.
func Reservation(vcpus int) (cpuMilli int64, memoryMiB int64) { return nodeshape.Reservation(vcpus) }

// nodeFor builds the kwok Node of a running instance.
func nodeFor(g *provider.NodeGroup, in *provider.Instance, t ec2catalog.InstanceType, region string) (*corev1.Node, error) {
	return nodeshape.Node(g, in, t, region)
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
