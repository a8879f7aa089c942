//go:build integration

package lifecycle_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// BenchmarkRoll100Nodes rolls a pool of 100 nodes in two zones that runs
// 1,000 pods of one Deployment under a PodDisruptionBudget keeping 950 of
// them available (L44), by changing the pool's instance types, and
// reports per roll: its duration (from the fleet change to the last old
// node gone and the status reconciled), the evictions the PDB refused
// (429 answers the controller got), and the samples (every 500 ms) in
// which fewer than 950 pods were Ready, which must be 0. Surge: 4 new
// nodes at a time (config item node_roll_max_surge).
func BenchmarkRoll100Nodes(b *testing.B) {
	const (
		nodes, pods, minAvailable = 100, 1000, 950
		items                     = "configItems:\n  node_roll_max_surge: \"4\"\n"
	)
	types := []string{"m5.xlarge", "m6i.xlarge"}
	var refused atomic.Int64
	w := newWorldSized(b, "bigroll", types[0], items, pods, minAvailable, nodes, nodes+8)
	w.wrap = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil && resp.StatusCode == http.StatusTooManyRequests && strings.HasSuffix(r.URL.Path, "/eviction") {
				refused.Add(1)
			}
			return resp, err
		})
	}
	stop := run(w.controller(nil))
	defer func() { stop() }()
	w.waitPhase(lifecycle.PhaseReconciled, 10*time.Minute, true)
	testenv.Eventually(b, 10*time.Minute, func(ctx context.Context) (bool, error) {
		return w.readyPods(ctx) == pods, nil
	}, "%d pods Ready", pods)

	var total time.Duration
	var below, samples int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				n := w.readyPods(ctx)
				mu.Lock()
				if n >= 0 {
					samples++
					if n < minAvailable {
						below++
					}
				}
				mu.Unlock()
				time.Sleep(500 * time.Millisecond)
			}
		}()
		next := types[(i+1)%2]
		before := w.status(context.Background()).AppliedVersion
		start := time.Now()
		w.write("clusters/bigroll.yaml", clusterYAMLSized("bigroll", next, items, nodes, nodes+8))
		testenv.Eventually(b, time.Minute, func(ctx context.Context) (bool, error) {
			return w.status(ctx).DesiredVersion != before, nil
		}, "the controller to see the new instance type")
		w.waitPhase(lifecycle.PhaseReconciled, 30*time.Minute, true)
		testenv.Eventually(b, 5*time.Minute, func(ctx context.Context) (bool, error) {
			return len(w.poolNodes(ctx)) == nodes, nil
		}, "the old nodes gone")
		total += time.Since(start)
		cancel()
		<-done
		w.assertRolled(context.Background(), next)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "s/roll")
	b.ReportMetric(float64(refused.Load())/n, "evictions-refused/roll")
	b.ReportMetric(float64(below), "samples-below-minAvailable")
	b.ReportMetric(float64(samples)/n, "samples/roll")
	b.ReportMetric(0, "ns/op")
	if below > 0 {
		b.Errorf("%d of %d samples had fewer than %d pods Ready: the PDB was not respected", below, samples, minAvailable)
	}
}

// readyPods counts the app's Ready pods not being deleted (-1 on error).
func (w *world) readyPods(ctx context.Context) int {
	list, err := w.env.Client.CoreV1().Pods(w.id).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return -1
	}
	n := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			n++
		}
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
