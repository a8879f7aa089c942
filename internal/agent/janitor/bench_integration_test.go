//go:build integration

package janitor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/testenv"
)

var benchOnce sync.Once

// setupConfigMaps creates 10,000 ConfigMaps of about 2 KiB in 100
// namespaces, a tenth of them with a TTL that has not run out.
func setupConfigMaps(b *testing.B) {
	benchOnce.Do(func() {
		cfg := testenv.Get(b).RESTConfig()
		cfg.QPS, cfg.Burst = 5000, 10000
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		payload := strings.Repeat("x", 2048)
		work := make(chan [2]string)
		var wg sync.WaitGroup
		var failed atomic.Value
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for it := range work {
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: it[1], Namespace: it[0]}, Data: map[string]string{"payload": payload}}
					if strings.HasSuffix(it[1], "0") {
						cm.Annotations = map[string]string{AnnotationTTL: "30d"}
					}
					if _, err := c.CoreV1().ConfigMaps(it[0]).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
						failed.Store(err)
					}
				}
			}()
		}
		for i := 0; i < 100; i++ {
			ns := fmt.Sprintf("jbench-%03d", i)
			if _, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			for j := 0; j < 100; j++ {
				work <- [2]string{ns, fmt.Sprintf("cm-%03d", j)}
			}
		}
		close(work)
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
	})
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func benchJanitor(b *testing.B, rules []Rule, n *testenv.RequestCounter) (*Controller, context.CancelFunc) {
	b.Helper()
	env := testenv.Get(b)
	cfg := env.RESTConfig()
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.Wrap(n.Wrap)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	ctrl, err := New(controller.Deps{
		Clock: clocktesting.NewFakeClock(time.Now()), Client: env.Client, Dynamic: dyn, Metadata: meta, Factory: factory,
		Recorder: &record.FakeRecorder{}, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, Options{Resources: []string{"configmaps"}, Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	ctrl.Start(ctx, ctx)
	return ctrl, cancel
}

// BenchmarkJanitor10kConfigMaps: cache memory of metadata-only watching
// (no rule reads configmaps) against full objects (a rule does), and an
// idle pass's time and API requests.
func BenchmarkJanitor10kConfigMaps(b *testing.B) {
	setupConfigMaps(b)
	rule, err := CompileRules([]RuleSpec{{ID: "never", Resources: []string{"configmaps"}, Expression: `object.metadata.name == "none"`, TTL: "1d"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		rules []Rule
	}{{"metadata-only", nil}, {"baseline-full-objects", rule}} {
		b.Run("sync-"+tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var n testenv.RequestCounter
				before := heapInUse()
				ctrl, cancel := benchJanitor(b, tc.rules, &n)
				b.ReportMetric(float64(heapInUse()-before)/(1<<20), "heap-MB")
				_ = ctrl
				cancel()
			}
		})
	}
	b.Run("idle-pass", func(b *testing.B) {
		var n testenv.RequestCounter
		ctrl, cancel := benchJanitor(b, nil, &n)
		defer cancel()
		n.Store(0)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if actions, err := ctrl.Pass(context.Background()); err != nil || len(actions) != 0 {
				b.Fatalf("idle pass: %v, %v", actions, err)
			}
		}
		b.ReportMetric(float64(n.Load())/float64(b.N), "requests/op")
	})
}
