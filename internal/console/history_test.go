package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestPercentileNearestRank(t *testing.T) {
	var oneToTwenty []float64
	for i := 1; i <= 20; i++ {
		oneToTwenty = append(oneToTwenty, float64(i))
	}
	for _, tt := range []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"p95 of 1..20 is the 19th value (rank ceil(19))", oneToTwenty, 95, 19},
		{"p50 of 1..20 is the 10th value", oneToTwenty, 50, 10},
		{"p100 is the maximum", oneToTwenty, 100, 20},
		{"p95 of one value is that value", []float64{7}, 95, 7},
		{"p95 of 1..10 is the maximum (rank ceil(9.5) = 10)", oneToTwenty[:10], 95, 10},
		{"nothing gives 0", nil, 95, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.values, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.values, tt.p, got, tt.want)
			}
		})
	}
}

func cpuOnly(key string, milli float64) ContainerSample {
	return ContainerSample{Key: key, Workload: "shop/Deployment/web", Container: "main", Usage: Usage{CPU: milli / 1000, MemGiB: 1}}
}

// The window keeps the last `slots` readings; a reading without the
// container is a gap, not a zero; a container with nothing left in the
// window is forgotten; no series ever holds more than `slots` samples.
func TestHistoryWindowGapsAndBound(t *testing.T) {
	h := newHistory(4)
	h.record([]ContainerSample{cpuOnly("shop/a/main", 100)})
	h.record([]ContainerSample{cpuOnly("shop/a/main", 200)})
	h.record([]ContainerSample{cpuOnly("shop/b/main", 900)}) // a missing: a gap
	h.record([]ContainerSample{cpuOnly("shop/a/main", 400), cpuOnly("shop/b/main", 900)})
	h.record([]ContainerSample{cpuOnly("shop/a/main", 500)})
	got := map[string][]float64{}
	for _, s := range h.series {
		var v []float64
		h.each(s, func(x sample) { v = append(v, float64(x.milliCPU)) })
		got[s.workload+"|"+fmt.Sprint(s.first)] = v
	}
	// Readings 2..5 are in the window: a has 200, a gap, 400, 500 (100
	// fell out); b has 900 twice.
	if fmt.Sprint(got["shop/Deployment/web|1"]) != "[200 400 500]" || fmt.Sprint(got["shop/Deployment/web|3"]) != "[900 900]" {
		t.Fatalf("windows = %v, want a [200 400 500] and b [900 900]", got)
	}
	if s := h.series["shop/a/main"]; s.vals[0].memKiB != 1<<20 {
		t.Errorf("1 GiB stored as %d KiB, want %d", s.vals[0].memKiB, 1<<20)
	}
	for i := 0; i < 100; i++ {
		h.record([]ContainerSample{cpuOnly("shop/a/main", float64(i))})
	}
	if n, slots := h.size(); n != 1 || slots > 4 {
		t.Errorf("after b left the window: %d containers holding %d slots, want 1 holding at most 4", n, slots)
	}
	var last []float64
	h.each(h.series["shop/a/main"], func(x sample) { last = append(last, float64(x.milliCPU)) })
	if fmt.Sprint(last) != "[96 97 98 99]" {
		t.Errorf("a's window = %v, want the last four readings", last)
	}
	// A container that comes back after a window's absence starts afresh.
	for i := 0; i < 4; i++ {
		h.record(nil)
	}
	if n, _ := h.size(); n != 0 {
		t.Errorf("%d containers tracked after a whole window without readings, want 0", n)
	}
}

// Worked example (docs/cost.md): 20 readings of CPU 10m, 20m, ... 200m
// and memory 15Mi ... 300Mi. CPU p95 = 190m (19th of 20), recommended
// 190m x 1.15 = 218.5m; memory max = 300Mi, recommended 345Mi.
func TestRightSizeWorkedExample(t *testing.T) {
	h := newHistory(1440)
	for i := 1; i <= 20; i++ {
		u := Usage{CPU: float64(10*i) / 1000, MemGiB: float64(15*i) / 1024}
		h.record([]ContainerSample{
			{Key: "shop/web-1/main", Workload: "shop/Deployment/web", Container: "main", Usage: u, Request: Usage{CPU: 0.5, MemGiB: 0.25}},
			{Key: "shop/api-1/main", Workload: "shop/Deployment/api", Container: "main", Usage: u, Request: Usage{CPU: 0.25, MemGiB: 0.5}},
			{Key: "shop/job-1/main", Workload: "shop/CronJob/report", Container: "main", Usage: u},
		})
	}
	rows := map[string]RightSizing{}
	for _, wu := range h.byWorkload() {
		r := rightSize(wu)
		rows[r.Workload] = r
	}
	web := rows["Deployment/web"]
	near(t, "cpu p95", web.CPUP95, 0.190)
	near(t, "cpu recommended", web.CPURecommended, 0.2185)
	near(t, "mem max GiB", web.MemMaxGiB, 300.0/1024)
	near(t, "mem recommended GiB", web.MemRecommendedGiB, 345.0/1024)
	if web.Namespace != "shop" || web.Samples != 20 || web.Pods != 1 {
		t.Errorf("web = %+v, want namespace shop, 20 samples from 1 pod", web)
	}
	for _, tt := range []struct {
		workload, cpu, mem string
	}{
		// 500m > 1.5 x 218.5m; 256Mi < 300Mi used.
		{"Deployment/web", VerdictTooHigh, VerdictTooLow},
		// 250m is within 1.5 x 218.5m and above 190m; 512Mi <= 1.5 x 345Mi.
		{"Deployment/api", VerdictOK, VerdictOK},
		{"CronJob/report", VerdictNoRequest, VerdictNoRequest},
	} {
		if r := rows[tt.workload]; r.CPUVerdict != tt.cpu || r.MemVerdict != tt.mem {
			t.Errorf("%s: cpu %q, memory %q; want %q, %q", tt.workload, r.CPUVerdict, r.MemVerdict, tt.cpu, tt.mem)
		}
	}
}

// fakeMetrics is a MetricsSource whose readings a test sets.
type fakeMetrics struct {
	mu    sync.Mutex
	calls int
	usage UsageByContainer
	err   error
}

func (f *fakeMetrics) ContainerUsage(context.Context) (UsageByContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.usage, f.err
}

func (f *fakeMetrics) called() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// The console reads usage every interval of its injected clock, keeps a
// window of readings per container, attributes pods to their Deployment
// through the ReplicaSet, and serves right-sizing as a page, JSON and CSV.
func TestConsoleRightSizingFromMetricsSource(t *testing.T) {
	isController := true
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "d-1"}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f", Namespace: "shop", UID: "rs-1",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", UID: "d-1", Controller: &isController}}}}
	p1 := pod("shop", "web-7d9f-a", "n1", "1", "1Gi", nil)
	p2 := pod("shop", "web-7d9f-b", "n1", "1", "1Gi", nil)
	for _, p := range []*metav1.ObjectMeta{&p1.ObjectMeta, &p2.ObjectMeta} {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9f", UID: "rs-1", Controller: &isController}}
	}
	src := fakeCluster(t, "a", node("n1", "4", "16Gi", nil), dep, rs, p1, p2)
	fm := &fakeMetrics{usage: UsageByContainer{
		"shop/web-7d9f-a/main": {CPU: 0.1, MemGiB: 0.25},
		"shop/web-7d9f-b/main": {CPU: 0.2, MemGiB: 0.5},
		"shop/gone/main":       {CPU: 9, MemGiB: 9}, // not in the cache: left out
	}}
	src.Metrics = fm
	noMetrics := fakeCluster(t, "b")
	noMetrics.Metrics = &fakeMetrics{err: fmt.Errorf("listing pod metrics, %w", ErrNoMetricsAPI)}
	clk := clocktesting.NewFakeClock(t0)
	c, err := New(Options{Clusters: []ClusterSource{src, noMetrics}, Clock: clk, UsageInterval: time.Minute, UsageWindow: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	wctx, done := context.WithTimeout(ctx, 10*time.Second)
	defer done()
	if err := c.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	h, err := c.Handler(Auth{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// Twelve more readings: the 10-minute window holds the last ten.
	for i := 0; i < 12; i++ {
		n := fm.called()
		clk.Step(time.Minute)
		eventually(t, func() bool { return fm.called() > n }, "a reading")
	}
	eventually(t, func() bool {
		rows := c.RightSizing().Rows
		return len(rows) == 1 && rows[0].Samples == 20
	}, "ten readings of two pods in the window")
	var rep RightSizingReport
	if err := json.Unmarshal([]byte(fetch(t, srv.URL+"/api/rightsizing", http.StatusOK)), &rep); err != nil {
		t.Fatal(err)
	}
	r := rep.Rows[0]
	if r.Cluster != "a" || r.Namespace != "shop" || r.Workload != "Deployment/web" || r.Container != "main" || r.Pods != 2 {
		t.Errorf("row = %+v, want a/shop Deployment/web main from 2 pods", r)
	}
	// Ten readings of 100m and ten of 200m: p95 = 200m, recommended 230m;
	// a request of one core is above 1.5 x 230m: too high. Memory max
	// 512Mi, recommended 588.8Mi; 1Gi is above 1.5 x 588.8Mi = 883.2Mi:
	// too high.
	near(t, "cpu p95", r.CPUP95, 0.2)
	if r.CPUVerdict != VerdictTooHigh || r.MemVerdict != VerdictTooHigh {
		t.Errorf("verdicts = %q, %q; want both too high", r.CPUVerdict, r.MemVerdict)
	}
	if rep.WindowHours != 10.0/60 || rep.IntervalSeconds != 60 || len(rep.NoMetrics) != 1 || rep.NoMetrics[0] != "b" {
		t.Errorf("report = window %vh, interval %vs, no metrics %v; want 1/6 h, 60 s, [b]", rep.WindowHours, rep.IntervalSeconds, rep.NoMetrics)
	}
	csv := fetch(t, srv.URL+"/rightsizing.csv", http.StatusOK)
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "a,shop,Deployment/web,main,2,20,1.0000,0.2000,") {
		t.Errorf("CSV = %q, want a header and the Deployment's row", csv)
	}
	if page := fetch(t, srv.URL+"/rightsizing", http.StatusOK); !strings.Contains(page, "request too high") || !strings.Contains(page, "No metrics API") {
		t.Errorf("page lacks the verdict or the no-metrics warning:\n%s", page)
	}
	// Cost keeps using the latest reading (docs/cost.md).
	if rep := c.Cost(); !rep.Clusters[0].UsageKnown || rep.Clusters[1].UsageKnown {
		t.Errorf("usage known = %v, %v; want a yes, b no", rep.Clusters[0].UsageKnown, rep.Clusters[1].UsageKnown)
	}
}

// DynamicMetrics speaks the metrics API's wire format: a PodMetricsList
// from an HTTP server (as metrics-server would answer); a 404 is "no
// metrics API".
func TestDynamicMetricsReadsPodMetricsList(t *testing.T) {
	const list = `{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":[
	 {"metadata":{"name":"web-1","namespace":"shop"},"timestamp":"2026-03-02T10:00:00Z","window":"30s",
	  "containers":[{"name":"main","usage":{"cpu":"250000000n","memory":"524288Ki"}},{"name":"sidecar","usage":{"cpu":"5m","memory":"32Mi"}}]}]}`
	served := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !served || r.URL.Path != "/apis/metrics.k8s.io/v1beta1/pods" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"the server could not find the requested resource"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, list)
	}))
	t.Cleanup(srv.Close)
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	m := DynamicMetrics{Client: dyn}
	got, err := m.ContainerUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	near(t, "main cpu", got["shop/web-1/main"].CPU, 0.25)
	near(t, "main memory GiB", got["shop/web-1/main"].MemGiB, 0.5)
	near(t, "sidecar cpu", got["shop/web-1/sidecar"].CPU, 0.005)
	if len(got) != 2 {
		t.Errorf("usage = %v, want two containers", got)
	}
	served = false
	if _, err := m.ContainerUsage(context.Background()); !errors.Is(err, ErrNoMetricsAPI) {
		t.Errorf("error without the metrics API = %v, want ErrNoMetricsAPI", err)
	}
}

// The memory bound docs/cost.md states: at the defaults (24 h at one
// reading a minute, 1,440 slots) a container costs 8 B x 1,440 = 11,520 B
// of samples (which Go's allocator rounds up to its 12,288 B size class)
// plus a little bookkeeping, measured here on the heap: about 12.4 KB.
func TestHistoryBytesPerContainer(t *testing.T) {
	const containers, slots = 2000, 1440
	readings := make([]ContainerSample, containers)
	for i := range readings {
		readings[i] = ContainerSample{Key: fmt.Sprintf("namespace-%02d/web-7d9f5c6b8-%05d/main", i%50, i),
			Workload: fmt.Sprintf("namespace-%02d/Deployment/web-%03d", i%50, i%300), Container: "main",
			Usage: Usage{CPU: 0.25, MemGiB: 0.5}, Request: Usage{CPU: 1, MemGiB: 1}}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h := newHistory(slots)
	for i := 0; i < slots+10; i++ {
		h.record(readings)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perContainer := float64(after.HeapAlloc-before.HeapAlloc) / containers
	t.Logf("usage history: %.0f bytes per container at %d slots", perContainer, slots)
	if perContainer < 8*slots || perContainer > 13000 {
		t.Errorf("%.0f bytes per container, want 11,520 of samples and at most 13,000 in all", perContainer)
	}
	runtime.KeepAlive(h)
	runtime.KeepAlive(readings)
}
