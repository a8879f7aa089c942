//go:build integration

package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/controlplane"
)

// benchEnv reads a positive integer from the environment.
func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type consoleBenchResult struct {
	clusters, podsPerCluster, objects int
	syncTime                          time.Duration
	bytesPerObject                    float64
	p50, p99                          time.Duration
	labelP50, labelP99                time.Duration
	kubectlP50                        time.Duration
	kubectlAllP50                     time.Duration
	// perQuery is each query's p50 and p99, in the mix's order.
	perQuery []queryLatency
}

type queryLatency struct {
	query    string
	p50, p99 time.Duration
}

var (
	consoleBenchOnce sync.Once
	consoleBench     consoleBenchResult
)

// BenchmarkConsoleSearch measures the console against the baseline a user
// would pick instead (L48): `kubectl get` fanned out in parallel over the
// same contexts, in the same run. The fleet is BOSUN_BENCH_CLUSTERS control
// planes (default 4) with BOSUN_BENCH_PODS pods each (default 2,500),
// scaled down from the 20 x 5,000 to fit a shared 2-core machine.
// It reports search p50/p99 through the JSON API, time to full sync,
// memory per cached object, and the kubectl fan-out's median for the same
// label query and for listing every pod (what free text needs).
func BenchmarkConsoleSearch(b *testing.B) {
	consoleBenchOnce.Do(func() { consoleBench = runConsoleBench(b) })
	r := consoleBench
	// The work is measured once above, whatever b.N; each call reports it.
	b.ReportMetric(float64(r.p50.Microseconds())/1000, "search-p50-ms")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "search-p99-ms")
	b.ReportMetric(float64(r.kubectlP50.Microseconds())/1000, "kubectl-fanout-p50-ms")
	b.ReportMetric(float64(r.kubectlAllP50.Microseconds())/1000, "kubectl-fanout-all-p50-ms")
	b.ReportMetric(float64(r.labelP50.Microseconds())/1000, "label-search-p50-ms")
	b.ReportMetric(float64(r.labelP99.Microseconds())/1000, "label-search-p99-ms")
	b.ReportMetric(float64(r.kubectlP50)/float64(r.labelP50), "x-faster-label-p50")
	b.ReportMetric(float64(r.kubectlAllP50)/float64(r.p50), "x-faster-all-vs-mixed-p50")
	b.ReportMetric(r.syncTime.Seconds(), "full-sync-s")
	b.ReportMetric(r.bytesPerObject, "bytes/object")
	b.ReportMetric(float64(r.objects), "objects")
	b.Logf("console bench: %d clusters x %d pods, %d objects; sync %s; %.0f B/object; search (6 queries) p50 %s p99 %s; label query p50 %s p99 %s; kubectl fan-out (same label query) p50 %s, (all pods, for free text) p50 %s",
		r.clusters, r.podsPerCluster, r.objects, r.syncTime.Round(time.Millisecond), r.bytesPerObject, r.p50, r.p99, r.labelP50, r.labelP99, r.kubectlP50, r.kubectlAllP50)
	for _, q := range r.perQuery {
		b.Logf("console bench: query %q p50 %s p99 %s", q.query, q.p50, q.p99)
	}
}

func runConsoleBench(b *testing.B) consoleBenchResult {
	r := consoleBenchResult{clusters: benchEnv("BOSUN_BENCH_CLUSTERS", 4), podsPerCluster: benchEnv("BOSUN_BENCH_PODS", 2500)}
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		b.Fatalf("finding binaries (run make tools): %v", err)
	}
	kubectl := filepath.Join(filepath.Dir(bins.APIServer), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		b.Fatalf("kubectl not found beside the control-plane binaries: %v", err)
	}
	configs := map[string]*rest.Config{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, r.clusters)
	for i := 0; i < r.clusters; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("bench-%02d", i)
			cp, err := controlplane.Start(context.Background(), controlplane.Options{Name: name, Binaries: bins, UnsafeNoFsync: true, StartTimeout: 5 * time.Minute})
			if err != nil {
				errs <- fmt.Errorf("starting %s: %w", name, err)
				return
			}
			b.Cleanup(func() { _ = cp.Stop() })
			if err := populate(cp.RESTConfig(), r.podsPerCluster); err != nil {
				errs <- fmt.Errorf("populating %s: %w", name, err)
				return
			}
			mu.Lock()
			configs[name] = cp.RESTConfig()
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	kubeconfig := writeKubeconfig(b, configs)
	srcs, err := console.ClustersFromKubeconfig(kubeconfig, nil)
	if err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := console.New(console.Options{Clusters: srcs})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	start := time.Now()
	c.Start(ctx)
	wctx, done := context.WithTimeout(ctx, 10*time.Minute)
	defer done()
	if err := c.WaitSynced(wctx); err != nil {
		b.Fatal(err)
	}
	r.syncTime = time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	for _, st := range c.Clusters() {
		r.objects += st.Objects
	}
	r.bytesPerObject = float64(after.HeapAlloc-before.HeapAlloc) / float64(r.objects)

	h, err := c.Handler(console.Auth{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	queries := []string{"app=web-7", "kind:pod status:Pending team=team-3 ns:bench-ns-2", "pod-1234", "ghcr.io/acme/api", "kind:node spot", "-status:Pending kind:pod"}
	var lat, labelLat []time.Duration
	perQuery := make([][]time.Duration, len(queries))
	for i := 0; i < 50; i++ {
		for qi, q := range queries {
			t0 := time.Now()
			resp, err := http.Get(srv.URL + "/api/search?q=" + url.QueryEscape(q))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("search %q: %s", q, resp.Status)
			}
			d := time.Since(t0)
			lat = append(lat, d)
			perQuery[qi] = append(perQuery[qi], d)
			if qi == 0 {
				labelLat = append(labelLat, d)
			}
		}
	}
	r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
	r.labelP50, r.labelP99 = percentile(labelLat, 50), percentile(labelLat, 99)
	for qi, q := range queries {
		r.perQuery = append(r.perQuery, queryLatency{query: q, p50: percentile(perQuery[qi], 50), p99: percentile(perQuery[qi], 99)})
	}

	// The baseline: the same label query, kubectl in parallel per context.
	var klat, kall []time.Duration
	for i := 0; i < 5; i++ {
		klat = append(klat, fanOut(b, kubectl, kubeconfig, configs, "-l", "app=web-7"))
		kall = append(kall, fanOut(b, kubectl, kubeconfig, configs))
	}
	r.kubectlP50, r.kubectlAllP50 = percentile(klat, 50), percentile(kall, 50)
	return r
}

// fanOut runs `kubectl get pods -A -o name [args]` for every context at
// once and returns the wall time until the last one finishes.
func fanOut(b *testing.B, kubectl, kubeconfig string, configs map[string]*rest.Config, args ...string) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for name := range configs {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig, "--context", name, "get", "pods", "-A", "-o", "name"}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Errorf("kubectl on %s: %v\n%s", name, err, out)
			}
		}(name)
	}
	wg.Wait()
	return time.Since(start)
}

func percentile(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := (len(s)*p + 99) / 100
	if idx > 0 {
		idx--
	}
	return s[idx]
}

// populate creates 10 namespaces, 20 nodes (half spot) and pods bound to
// them (no scheduler: the nodes are never Ready, the pods stay Pending).
func populate(cfg *rest.Config, pods int) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		ns := fmt.Sprintf("bench-ns-%d", i)
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for i := 0; i < 20; i++ {
		capType := "on-demand"
		if i%2 == 0 {
			capType = "spot"
		}
		n, err := controlplane.NewNode(controlplane.NodeSpec{Name: fmt.Sprintf("node-%d", i), CPU: "16", Memory: "64Gi", Pods: "500",
			Labels: map[string]string{corev1.LabelInstanceTypeStable: "m5.4xlarge", "karpenter.sh/capacity-type": capType}})
		if err != nil {
			return err
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	work := make(chan int)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				image := "ghcr.io/acme/web:1.0"
				if i%3 == 0 {
					image = "ghcr.io/acme/api:2.1"
				}
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Namespace: fmt.Sprintf("bench-ns-%d", i%10),
						Labels: map[string]string{"app": fmt.Sprintf("web-%d", i%50), "team": fmt.Sprintf("team-%d", i%10), "pod-template-hash": "5d8f7c9b6"}},
					Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%20), AutomountServiceAccountToken: new(bool), Containers: []corev1.Container{{
						Name: "main", Image: image,
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")}},
					}}},
				}
				if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < pods; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

type detailBenchResult struct {
	pods int
	// before is the console with live reads limited as before issue 18
	// (50/s, burst 100: the kubeconfig's client limit), after with the
	// defaults; each measured idle (one client) and under load.
	before, after detailLatency
	// unlimited is live reads without a practical limit (100,000/s): what
	// the machine allows, to show what the default limit costs.
	unlimited detailLatency
	// nodeIdle and nodeLoaded are node details (served from the watch
	// cache since issue 18) with the defaults.
	nodeIdle, nodeLoaded latencies
}

type detailLatency struct{ idle, loaded latencies }

type latencies struct{ p50, p99 time.Duration }

var (
	detailBenchOnce sync.Once
	detailBench     detailBenchResult
)

// detailClients is how many clients read detail pages at once under load
// (issue 18: 32).
const detailClients = 32

// BenchmarkConsoleDetail measures detail pages (GET /api/clusters/...,
// HTTP and JSON included) on one real control plane with
// BOSUN_BENCH_PODS pods (default 2,500) on 20 nodes: p50 and p99 of pod
// details read by one client (idle) and by 32 clients at once (loaded),
// with live reads limited as before issue 18 (50/s, burst 100, the
// kubeconfig's limit), with the defaults and practically unlimited, and
// node details (served from the watch cache) idle and loaded. The baseline is the same console idle
// in the same run: loaded/idle ratios, and before/after.
func BenchmarkConsoleDetail(b *testing.B) {
	detailBenchOnce.Do(func() { detailBench = runDetailBench(b) })
	r := detailBench
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(r.before.idle.p50), "before-idle-p50-ms")
	b.ReportMetric(ms(r.before.loaded.p50), "before-loaded-p50-ms")
	b.ReportMetric(ms(r.before.loaded.p99), "before-loaded-p99-ms")
	b.ReportMetric(ms(r.after.idle.p50), "pod-idle-p50-ms")
	b.ReportMetric(ms(r.after.loaded.p50), "pod-loaded-p50-ms")
	b.ReportMetric(ms(r.after.loaded.p99), "pod-loaded-p99-ms")
	b.ReportMetric(ms(r.unlimited.loaded.p50), "unlimited-loaded-p50-ms")
	b.ReportMetric(ms(r.nodeLoaded.p50), "node-loaded-p50-ms")
	b.ReportMetric(float64(r.before.loaded.p50)/float64(r.before.idle.p50), "before-loaded/idle-p50")
	b.ReportMetric(float64(r.after.loaded.p50)/float64(r.after.idle.p50), "pod-loaded/idle-p50")
	b.ReportMetric(float64(r.before.loaded.p50)/float64(r.after.loaded.p50), "x-faster-loaded-p50")
	b.Logf("console detail bench: 1 cluster, %d pods, %d clients under load", r.pods, detailClients)
	b.Logf("pod detail, live reads at 50/s burst 100 (before): idle p50 %s p99 %s; loaded p50 %s p99 %s",
		r.before.idle.p50, r.before.idle.p99, r.before.loaded.p50, r.before.loaded.p99)
	b.Logf("pod detail, live reads with their own limiter at the defaults (%d/s, burst %d): idle p50 %s p99 %s; loaded p50 %s p99 %s",
		console.DefaultLiveQPS, console.DefaultLiveBurst, r.after.idle.p50, r.after.idle.p99, r.after.loaded.p50, r.after.loaded.p99)
	b.Logf("pod detail, live reads practically unlimited (100,000/s): idle p50 %s p99 %s; loaded p50 %s p99 %s",
		r.unlimited.idle.p50, r.unlimited.idle.p99, r.unlimited.loaded.p50, r.unlimited.loaded.p99)
	b.Logf("node detail from the watch cache: idle p50 %s p99 %s; loaded p50 %s p99 %s", r.nodeIdle.p50, r.nodeIdle.p99, r.nodeLoaded.p50, r.nodeLoaded.p99)
}

func runDetailBench(b *testing.B) detailBenchResult {
	r := detailBenchResult{pods: benchEnv("BOSUN_BENCH_PODS", 2500)}
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		b.Fatalf("finding binaries (run make tools): %v", err)
	}
	cp, err := controlplane.Start(context.Background(), controlplane.Options{Name: "bench-detail", Binaries: bins, UnsafeNoFsync: true, StartTimeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cp.Stop() })
	if err := populate(cp.RESTConfig(), r.pods); err != nil {
		b.Fatal(err)
	}
	// The sources as `bosun console` makes them, with the kubeconfig's
	// client limit.
	srcs, err := console.ClustersFromKubeconfig(writeKubeconfig(b, map[string]*rest.Config{"bench": cp.RESTConfig()}), nil)
	if err != nil {
		b.Fatal(err)
	}
	pods := func(i int) string {
		return fmt.Sprintf("/api/clusters/bench/namespaces/bench-ns-%d/pods/pod-%d", i%10, i)
	}
	nodes := func(i int) string { return fmt.Sprintf("/api/clusters/bench/nodes/node-%d", i%20) }
	for _, run := range []struct {
		opts console.Options
		into *detailLatency
	}{
		{console.Options{Clusters: srcs, LiveQPS: 50, LiveBurst: 100}, &r.before},
		{console.Options{Clusters: srcs}, &r.after},
		{console.Options{Clusters: srcs, LiveQPS: 100000, LiveBurst: 100000}, &r.unlimited},
	} {
		url, stop := startBenchConsole(b, run.opts)
		run.into.idle = measureDetails(b, url, 1, 100, r.pods, pods)
		run.into.loaded = measureDetails(b, url, detailClients, 25, r.pods, pods)
		if run.into == &r.after {
			r.nodeIdle = measureDetails(b, url, 1, 100, r.pods, nodes)
			r.nodeLoaded = measureDetails(b, url, detailClients, 25, r.pods, nodes)
		}
		stop() // one console at a time
	}
	return r
}

// startBenchConsole starts a console, waits for it to sync and serves it
// until stop is called.
func startBenchConsole(b *testing.B, opts console.Options) (url string, stop func()) {
	opts.UsageInterval = -1
	c, err := console.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	c.Start(ctx)
	wctx, done := context.WithTimeout(ctx, 5*time.Minute)
	defer done()
	if err := c.WaitSynced(wctx); err != nil {
		b.Fatal(err)
	}
	h, err := c.Handler(console.Auth{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL, func() { srv.Close(); cancel() }
}

// measureDetails has clients read detail pages at once, each reading
// its share one after another, page(i) for i spread over n objects, and returns the p50 and p99 of all
// the reads. A page that is not read live (pods) or not from the cache
// (nodes) fails the benchmark: a timed-out read would be fast and wrong.
func measureDetails(b *testing.B, base string, clients, each, n int, page func(i int) string) latencies {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				i := (w*7919 + j*104729) % n
				t0 := time.Now()
				resp, err := hc.Get(base + page(i))
				if err != nil {
					b.Error(err)
					return
				}
				var d console.Detail
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
				took := time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusOK || (!d.Live && !d.Cached) {
					b.Errorf("GET %s: %s, live %v cached %v, note %q, %v", page(i), resp.Status, d.Live, d.Cached, d.YAMLNote, err)
					return
				}
				mu.Lock()
				lat = append(lat, took)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	hc.CloseIdleConnections()
	if len(lat) == 0 {
		b.Fatal("no detail page was read")
	}
	return latencies{p50: percentile(lat, 50), p99: percentile(lat, 99)}
}
