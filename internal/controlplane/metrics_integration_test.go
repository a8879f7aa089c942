//go:build integration

package controlplane_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// The `kubectl top` of a local control plane: a pod on a kwok node that
// requests 400m CPU and 200Mi, annotated to use a quarter of them, shows
// 100m and 50Mi through the metrics API (metrics.k8s.io, served by
// metrics-server from kwok's simulated kubelet endpoint).
func TestIntegrationMetricsAPI(t *testing.T) {
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bins.MetricsServer); err != nil {
		t.Fatalf("metrics-server: %v (make tools builds it)", err)
	}
	ctx := context.Background()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Name: "metrics", Binaries: bins, Scheduler: true, ControllerManager: true, Kwok: true, MetricsServer: true,
		UnsafeNoFsync: true, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"metrics-server", "kwok"} {
				if b, err := os.ReadFile(filepath.Join(cp.Dir, "logs", name+".log")); err == nil {
					if len(b) > 3000 {
						b = b[len(b)-3000:]
					}
					t.Logf("%s log:\n%s", name, b)
				}
			}
		}
	})
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	node, err := controlplane.NewNode(controlplane.NodeSpec{Name: "metrics-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{"bosun.dev/usage-fraction": "0.25"}},
		Spec: corev1.PodSpec{
			NodeName: "metrics-a",
			Containers: []corev1.Container{{Name: "web", Image: "nginx", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("400m"), corev1.ResourceMemory: resource.MustParse("200Mi"),
			}}}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var usage corev1.ResourceList
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web").DoRaw(ctx)
		if err != nil {
			return false, nil
		}
		var pm struct {
			Containers []struct {
				Name  string              `json:"name"`
				Usage corev1.ResourceList `json:"usage"`
			} `json:"containers"`
		}
		if err := json.Unmarshal(body, &pm); err != nil || len(pm.Containers) != 1 {
			return false, nil
		}
		usage = pm.Containers[0].Usage
		return true, nil
	}, "PodMetrics of default/web through the metrics API")
	cpu, mem := usage[corev1.ResourceCPU], usage[corev1.ResourceMemory]
	if mem.Cmp(resource.MustParse("50Mi")) != 0 {
		t.Errorf("memory usage %s, want 50Mi (a quarter of the 200Mi request)", mem.String())
	}
	// CPU is a rate over two scrapes of a cumulative counter.
	if m := cpu.MilliValue(); m < 90 || m > 110 {
		t.Errorf("CPU usage %s, want about 100m (a quarter of the 400m request)", cpu.String())
	}
	// The console reads the same numbers: slack on its cost page is
	// requests minus this usage.
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	byContainer, err := console.DynamicMetrics{Client: dyn}.ContainerUsage(ctx)
	if err != nil {
		t.Fatalf("console usage: %v", err)
	}
	if u, ok := byContainer["default/web/web"]; !ok || u.CPU < 0.09 || u.CPU > 0.11 || u.MemGiB*1024 < 49.9 || u.MemGiB*1024 > 50.1 {
		t.Errorf("console usage of default/web/web %+v (found %v), want about 0.1 CPU and 50Mi", u, ok)
	}
	nodeBody, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes/metrics-a").DoRaw(ctx)
	if err != nil {
		t.Errorf("NodeMetrics of metrics-a: %v", err)
	} else {
		t.Logf("node metrics: %s", nodeBody)
	}
}
