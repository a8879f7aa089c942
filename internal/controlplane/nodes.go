package controlplane

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeSpec describes a simulated (kwok) node.
type NodeSpec struct {
	// Name of the Node object.
	Name string
	// CPU, Memory and Pods are the node's capacity ("4", "16Gi", "110").
	// Empty values default to 4 CPUs, 16Gi and 110 pods.
	CPU, Memory, Pods string
	// Allocatable, if set, is what the scheduler may use (capacity minus
	// system reservation); it defaults to the capacity.
	Allocatable corev1.ResourceList
	// Labels and Taints are set on the Node as given.
	Labels map[string]string
	Taints []corev1.Taint
	// Annotations are added to kwok's own marker annotation.
	Annotations map[string]string
	// ProviderID is the node's spec.providerID, if any.
	ProviderID string
	// BootDelay, if not empty, overrides the control plane's boot delay
	// for this node (a Go duration such as "40s").
	BootDelay string
}

// NewNode returns the Node object for spec, marked for kwok to simulate.
// Create it with any client; kwok boots it after the boot delay.
func NewNode(spec NodeSpec) (*corev1.Node, error) {
	capacity := corev1.ResourceList{}
	for name, val := range map[corev1.ResourceName]string{
		corev1.ResourceCPU:    orDefault(spec.CPU, "4"),
		corev1.ResourceMemory: orDefault(spec.Memory, "16Gi"),
		corev1.ResourcePods:   orDefault(spec.Pods, "110"),
	} {
		q, err := resource.ParseQuantity(val)
		if err != nil {
			return nil, &InvalidQuantityError{Node: spec.Name, Resource: string(name), Value: val, Err: err}
		}
		capacity[name] = q
	}
	allocatable := capacity.DeepCopy()
	for name, q := range spec.Allocatable {
		allocatable[name] = q
	}
	annotations := map[string]string{
		KwokNodeAnnotation: "fake",
		// Where metrics-server finds this node's usage on kwok's server.
		"metrics.k8s.io/resource-metrics-path": "/metrics/nodes/" + spec.Name + "/metrics/resource",
	}
	for k, v := range spec.Annotations {
		annotations[k] = v
	}
	if spec.BootDelay != "" {
		annotations[BootDelayAnnotation] = spec.BootDelay
	}
	labels := map[string]string{
		"kubernetes.io/hostname": spec.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
	}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Labels: labels, Annotations: annotations},
		Spec:       corev1.NodeSpec{Taints: spec.Taints, ProviderID: spec.ProviderID},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable,
			NodeInfo:    corev1.NodeSystemInfo{Architecture: "amd64", OperatingSystem: "linux"},
		},
	}, nil
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// InvalidQuantityError reports a node capacity that is not a quantity.
type InvalidQuantityError struct {
	Node, Resource, Value string
	Err                   error
}

func (e *InvalidQuantityError) Error() string {
	return "node " + e.Node + ": " + e.Resource + " " + `"` + e.Value + `"` + " is not a Kubernetes quantity (e.g. 4, 500m, 16Gi): " + e.Err.Error()
}

func (e *InvalidQuantityError) Unwrap() error { return e.Err }

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
