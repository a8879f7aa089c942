package controlplane

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestNewNode(t *testing.T) {
	n, err := NewNode(NodeSpec{
		Name: "n1", CPU: "8", Memory: "32Gi",
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("7500m")},
		Labels:      map[string]string{"pool": "spot"},
		Taints:      []corev1.Taint{{Key: "dedicated", Value: "api", Effect: corev1.TaintEffectNoSchedule}},
		BootDelay:   "45s",
		ProviderID:  "local:///local-1a/i-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.Annotations[KwokNodeAnnotation] != "fake" || n.Annotations[BootDelayAnnotation] != "45s" {
		t.Errorf("annotations %v", n.Annotations)
	}
	if n.Labels["pool"] != "spot" || n.Labels["kubernetes.io/hostname"] != "n1" {
		t.Errorf("labels %v", n.Labels)
	}
	if got := n.Status.Capacity.Cpu().String(); got != "8" {
		t.Errorf("capacity cpu %s", got)
	}
	if got := n.Status.Allocatable.Cpu().String(); got != "7500m" {
		t.Errorf("allocatable cpu %s", got)
	}
	if got := n.Status.Allocatable.Memory().String(); got != "32Gi" {
		t.Errorf("allocatable memory %s, want capacity", got)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.ProviderID != "local:///local-1a/i-1" {
		t.Errorf("spec %+v", n.Spec)
	}
}

func TestNewNodeRejectsBadQuantity(t *testing.T) {
	_, err := NewNode(NodeSpec{Name: "n1", Memory: "lots"})
	var qe *InvalidQuantityError
	if !errors.As(err, &qe) || qe.Resource != "memory" || qe.Value != "lots" {
		t.Fatalf("err = %v", err)
	}
}
