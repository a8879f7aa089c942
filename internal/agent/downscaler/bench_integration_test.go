//go:build integration

package downscaler

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// benchPerNS is the Deployments per namespace of the benchmark's fleet.
const benchPerNS = 100

// fleetNamespaces sets the fleet's size: 100 namespaces of 100 Deployments
// by default; -args -fleet-namespaces=30 gives issue 19's 3,000.
var fleetNamespaces = flag.Int("fleet-namespaces", 100, "namespaces of 100 Deployments each in BenchmarkDownscaler10kDeployments's fleet")

var benchSetup sync.Once

// countingRT counts requests sent by a client.
type countingRT struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func benchClient(b *testing.B, n *atomic.Int64) kubernetes.Interface {
	b.Helper()
	cfg := testenv.Get(b).RESTConfig()
	cfg.QPS, cfg.Burst = 5000, 10000
	if n != nil {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingRT{next: rt, n: n} })
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// setupFleet creates 10,000 Deployments in 100 namespaces (see
// -fleet-namespaces), once per run.
func setupFleet(b *testing.B) {
	benchSetup.Do(func() {
		c := benchClient(b, nil)
		ctx := context.Background()
		work := make(chan [2]string)
		var wg sync.WaitGroup
		var failed atomic.Value
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for item := range work {
					replicas := int32(2)
					d := &appsv1.Deployment{
						ObjectMeta: metav1.ObjectMeta{Name: item[1], Namespace: item[0], Annotations: map[string]string{AnnotationGracePeriod: "0s"}},
						Spec: appsv1.DeploymentSpec{Replicas: &replicas,
							Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": item[1]}},
							Template: podTemplate(item[1])},
					}
					if _, err := c.AppsV1().Deployments(item[0]).Create(ctx, d, metav1.CreateOptions{}); err != nil {
						failed.Store(err)
					}
				}
			}()
		}
		for i := 0; i < *fleetNamespaces; i++ {
			ns := fmt.Sprintf("bench-%03d", i)
			if _, err := c.CoreV1().Namespaces().Create(ctx, nsObject(ns), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			for j := 0; j < benchPerNS; j++ {
				work <- [2]string{ns, fmt.Sprintf("app-%03d", j)}
			}
		}
		close(work)
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatalf("creating deployments: %v", err)
		}
	})
}

// syncedController starts informers on a fresh client and returns the
// controller once the caches hold all 10,000 Deployments.
func syncedController(b *testing.B, defaults Defaults, n *atomic.Int64) (*Controller, context.CancelFunc) {
	b.Helper()
	c := benchClient(b, n)
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(c, 0)
	ctrl, err := New(controller.Deps{
		Clock: clocktesting.NewFakeClock(time.Now()), Client: c, Factory: factory, Recorder: &record.FakeRecorder{},
		Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, Options{Defaults: defaults})
	if err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return ctrl, cancel
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkDownscaler10kDeployments measures the downscaler on 10,000
// Deployments in 100 namespaces against a real API server, each figure
// next to a baseline measured in the same run:
//
//   - cache-sync: informers listing everything once (the agent's start-up),
//     with the heap the caches hold.
//   - noop-pass: a pass over an unchanged cluster (from the caches);
//     baseline: the same decisions over a paged LIST, as a downscaler that
//     lists every pass does.
//   - scale-down-pass: the first downtime pass (10,000 patches); baseline:
//     the same 10,000 merge patches sent by a bare loop.
//   - idle-bosun-agent and idle-peer-gokubedownscaler: `bosun agent
//     --controllers downscaler` and GoKubeDownscaler (when
//     -peer-gokubedownscaler gives its binary; skipped otherwise), each run
//     for -idle-window over the fleet in uptime: requests, CPU and RSS of
//     each process, from the same run (issue 19).
func BenchmarkDownscaler10kDeployments(b *testing.B) {
	setupFleet(b)
	up := Defaults{Uptime: "always"}
	down := Defaults{Downtime: "always"}

	// First, while the fleet is as set up: every Deployment in uptime.
	benchIdleSideBySide(b)

	b.Run("cache-sync", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			before := heapInUse()
			var n atomic.Int64
			ctrl, cancel := syncedController(b, up, &n)
			b.ReportMetric(float64(heapInUse()-before)/(1<<20), "heap-MB")
			b.ReportMetric(float64(n.Load()), "requests/op")
			_ = ctrl
			cancel()
		}
	})

	b.Run("noop-pass", func(b *testing.B) {
		var n atomic.Int64
		ctrl, cancel := syncedController(b, up, &n)
		defer cancel()
		n.Store(0)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			actions, err := ctrl.Reconcile(context.Background())
			if err != nil || len(actions) != 0 {
				b.Fatalf("noop pass: %d actions, %v", len(actions), err)
			}
		}
		b.ReportMetric(float64(n.Load())/float64(b.N), "requests/op")
	})

	b.Run("noop-pass-baseline-list", func(b *testing.B) {
		var n atomic.Int64
		c := benchClient(b, &n)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cont := ""
			for {
				list, err := c.AppsV1().Deployments("").List(context.Background(), metav1.ListOptions{Limit: 500, Continue: cont})
				if err != nil {
					b.Fatal(err)
				}
				for j := range list.Items {
					d := &list.Items[j]
					if _, err := Decide(up, Input{Now: time.Now(), Created: d.CreationTimestamp.Time, Name: d.Name, Namespace: d.Namespace, Layers: []map[string]string{d.Annotations}}); err != nil {
						b.Fatal(err)
					}
				}
				if cont = list.Continue; cont == "" {
					break
				}
			}
		}
		b.ReportMetric(float64(n.Load())/float64(b.N), "requests/op")
	})

	b.Run("scale-down-pass", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			var n atomic.Int64
			ctrl, cancel := syncedController(b, down, &n)
			n.Store(0)
			b.StartTimer()
			actions, err := ctrl.Reconcile(context.Background())
			b.StopTimer()
			if err != nil || len(actions) != *fleetNamespaces*benchPerNS {
				b.Fatalf("scale-down pass: %d actions, %v", len(actions), err)
			}
			b.ReportMetric(float64(n.Load()), "requests/op")
			cancel()
			restoreAll(b)
			b.StartTimer()
		}
	})

	b.Run("scale-down-baseline-bare-patches", func(b *testing.B) {
		c := benchClient(b, nil)
		for i := 0; i < b.N; i++ {
			for ns := 0; ns < *fleetNamespaces; ns++ {
				for j := 0; j < benchPerNS; j++ {
					body := []byte(`{"metadata":{"annotations":{"downscaler/original-replicas":"2"}},"spec":{"replicas":0}}`)
					if _, err := c.AppsV1().Deployments(fmt.Sprintf("bench-%03d", ns)).Patch(context.Background(), fmt.Sprintf("app-%03d", j), types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			restoreAll(b)
			b.StartTimer()
		}
	})
}

// restoreAll runs an uptime pass so the next iteration starts from 2
// replicas everywhere.
func restoreAll(b *testing.B) {
	b.Helper()
	ctrl, cancel := syncedController(b, Defaults{Uptime: "always"}, nil)
	defer cancel()
	if _, err := ctrl.Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func nsObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
