package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
)

// BenchmarkSearchInMemory measures Search alone (no HTTP, no API server)
// over 20,000 pods in two fake clusters, to see the scan's own cost.
func BenchmarkSearchInMemory(b *testing.B) {
	var a, c []k8sruntime.Object
	for i := 0; i < 20000; i++ {
		p := pod(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("pod-%d", i), fmt.Sprintf("node-%d", i%20), "100m", "128Mi",
			map[string]string{"app": fmt.Sprintf("web-%d", i%50), "team": fmt.Sprintf("team-%d", i%10), "pod-template-hash": "5d8f7c9b6"})
		p.Spec.Containers[0].Image = "ghcr.io/acme/web:1.0"
		if i%2 == 0 {
			a = append(a, p)
		} else {
			c = append(c, p)
		}
	}
	con, _ := startFakeTB(b, clocktesting.NewFakeClock(t0), fakeCluster(b, "a", a...), fakeCluster(b, "b", c...))
	for _, q := range []string{"app=web-7", "pod-1234", "kind:pod status:Running team=team-3 ns:ns-3"} {
		b.Run(q, func(b *testing.B) {
			pq, err := ParseQuery(q)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				con.Search(pq, 500, "")
			}
		})
	}
}

// fleetMix is the six-query mix of the integration benchmark
// (bench_integration_test.go).
var fleetMix = []string{"app=web-7", "kind:pod status:Pending team=team-3 ns:bench-ns-2", "pod-1234", "ghcr.io/acme/api", "kind:node spot", "-status:Pending kind:pod"}

// benchFleetObjects is one cluster shaped like the integration benchmark's
// populate: 10 namespaces, 20 nodes (half spot, never Ready) and pods
// bound to them, Pending, labelled app=web-<i%50>, team=team-<i%10> and a
// pod-template-hash, every third running ghcr.io/acme/api, the others
// ghcr.io/acme/web.
func benchFleetObjects(pods int) []k8sruntime.Object {
	var objs []k8sruntime.Object
	for i := 0; i < 10; i++ {
		ns := &corev1.Namespace{}
		ns.Name = fmt.Sprintf("bench-ns-%d", i)
		ns.Status.Phase = corev1.NamespaceActive
		objs = append(objs, ns)
	}
	for i := 0; i < 20; i++ {
		capType := "on-demand"
		if i%2 == 0 {
			capType = "spot"
		}
		objs = append(objs, node(fmt.Sprintf("node-%d", i), "16", "64Gi", map[string]string{corev1.LabelInstanceTypeStable: "m5.4xlarge", "karpenter.sh/capacity-type": capType}))
	}
	for i := 0; i < pods; i++ {
		p := pod(fmt.Sprintf("bench-ns-%d", i%10), fmt.Sprintf("pod-%d", i), fmt.Sprintf("node-%d", i%20), "100m", "256Mi",
			map[string]string{"app": fmt.Sprintf("web-%d", i%50), "team": fmt.Sprintf("team-%d", i%10), "pod-template-hash": "5d8f7c9b6"})
		p.Spec.Containers[0].Image = "ghcr.io/acme/web:1.0"
		if i%3 == 0 {
			p.Spec.Containers[0].Image = "ghcr.io/acme/api:2.1"
		}
		p.Status.Phase = corev1.PodPending
		p.CreationTimestamp.Time = t0.Add(-time.Duration(i) * time.Second)
		objs = append(objs, p)
	}
	return objs
}

var (
	fleetOnce    sync.Once
	fleetConsole *Console
	fleetHandler http.Handler
)

// benchFleet is the full size, 20 clusters x 5,000 pods, in fake
// clusters, built once per test binary.
func benchFleet(b *testing.B) (*Console, http.Handler) {
	fleetOnce.Do(func() {
		var srcs []ClusterSource
		for i := 0; i < 20; i++ {
			srcs = append(srcs, fakeCluster(b, fmt.Sprintf("bench-%02d", i), benchFleetObjects(5000)...))
		}
		c, err := New(Options{Clusters: srcs, Clock: clocktesting.NewFakeClock(t0)})
		if err != nil {
			b.Fatal(err)
		}
		// The fleet outlives any one benchmark: it is never stopped.
		c.Start(b.Context())
		if err := c.WaitSynced(b.Context()); err != nil {
			b.Fatal(err)
		}
		h, err := c.Handler(Auth{})
		if err != nil {
			b.Fatal(err)
		}
		// The first search merges the informers' events into the ordered
		// lists; then the garbage of the setup is collected, so neither
		// lands on the first benchmark measured.
		c.Search(Query{}, 1, "")
		runtime.GC()
		fleetConsole, fleetHandler = c, h
	})
	if fleetConsole == nil {
		b.Fatal("fleet setup failed")
	}
	return fleetConsole, fleetHandler
}

// BenchmarkSearchFleet runs the integration benchmark's six queries over
// 20 fake clusters of 5,000 pods each: Search alone, and through the JSON
// API (GET /api/search, encoding included, no network). The old/ variants
// run the search as it was before (referenceSearch: every match sorted,
// twice for a non-default order, then cut; encoding/json), in the same
// process, for ratios on a noisy machine.
func BenchmarkSearchFleet(b *testing.B) {
	con, h := benchFleet(b)
	oldHTTP := func(b *testing.B, q string) {
		rec := httptest.NewRecorder()
		pq, err := ParseQuery(q)
		if err != nil {
			b.Fatal(err)
		}
		_ = con.Clusters()
		writeJSON(rec, referenceSearch(con, pq, defaultLimit, ""))
	}
	for _, impl := range []struct {
		name   string
		search func(Query, int, string) Result
		http   func(*testing.B, string)
	}{
		{"new", con.Search, func(b *testing.B, q string) { serveSearch(b, h, q) }},
		{"old", func(q Query, limit int, order string) Result { return referenceSearch(con, q, limit, order) }, oldHTTP},
	} {
		for _, q := range fleetMix {
			pq, err := ParseQuery(q)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(impl.name+"/search/"+q, func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					impl.search(pq, defaultLimit, "")
				}
			})
		}
		for _, q := range fleetMix {
			b.Run(impl.name+"/http/"+q, func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					impl.http(b, q)
				}
			})
		}
		// The mix as the integration benchmark runs it: rounds of the six
		// queries, with the latency percentiles of single requests.
		b.Run(impl.name+"/http/mix", func(b *testing.B) {
			var lat []time.Duration
			defer reportCPU(b)()
			for b.Loop() {
				for _, q := range fleetMix {
					start := time.Now()
					impl.http(b, q)
					lat = append(lat, time.Since(start))
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99+99)/100-1].Microseconds())/1000, "p99-ms")
		})
	}
}

// reportCPU reports the process's CPU time (user and system, GC
// included) per iteration, when the returned function is called: on a
// shared machine it moves less with the load than wall time.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serveSearch(b *testing.B, h http.Handler, q string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/search?q="+url.QueryEscape(q), nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("search %q: %d %s", q, rec.Code, rec.Body)
	}
}
