package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// metricsAPIService is the APIService of the metrics API.
const metricsAPIService = "v1beta1.metrics.k8s.io"

var apiServicesGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// startMetricsServer runs metrics-server on loopback and registers it as
// the metrics API: an ExternalName Service kube-system/metrics-server
// pointing at localhost (the aggregation layer resolves it; there is no
// kube-proxy) and the APIService. It returns once the APIService is
// Available.
func (cp *ControlPlane) startMetricsServer(ctx context.Context, binary string, port int) error {
	certDir := filepath.Join(cp.Dir, "metrics-server")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return fmt.Errorf("creating metrics-server dir, %w", err)
	}
	if _, err := cp.start("metrics-server", binary, metricsServerArgs(cp.KubeconfigPath, certDir, port)); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return fmt.Errorf("building client, %w", err)
	}
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		return fmt.Errorf("building client, %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Namespace: "kube-system"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}, //nolint:gosec // G115: a TCP port
		},
	}
	if _, err := cs.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Service kube-system/metrics-server, %w", err)
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": metricsAPIService},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1",
			"service": map[string]any{"namespace": "kube-system", "name": "metrics-server", "port": int64(port)},
			// metrics-server serves a self-signed certificate on loopback.
			"insecureSkipTLSVerify": true, "groupPriorityMinimum": int64(100), "versionPriority": int64(100),
		},
	}}
	if _, err := dyn.Resource(apiServicesGVR).Create(ctx, apiService, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating APIService %s, %w", metricsAPIService, err)
	}
	for {
		for _, p := range cp.procs {
			if done, _ := p.exited(); done {
				return p.failure("exited during start-up")
			}
		}
		u, err := dyn.Resource(apiServicesGVR).Get(ctx, metricsAPIService, metav1.GetOptions{})
		if err == nil && apiServiceAvailable(u) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for APIService %s to be Available, %w", metricsAPIService, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func apiServiceAvailable(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Available" && m["status"] == "True" {
			return true
		}
	}
	return false
}
