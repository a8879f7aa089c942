package scaleup

import (
	"bufio"
	"context"
	"fmt"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/agent/provisioner"
)

// scale registers the base nodes, then creates the pods as fast as the
// clients go; one in GrowthEvery only fits new nodes, so the provisioner
// keeps deciding while pods keep arriving. Figures: the provisioner's own
// pending-to-requested histogram (p50, p99) and memory.
func (r *runner) scale(ctx context.Context, autoscaler string) ([]Result, error) {
	sc := r.sc.Scale
	// The provisioner's histogram, with fine buckets so quantiles are
	// within a few percent (its own buckets are for dashboards).
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bosun_provisioner_pending_to_requested_seconds",
		Buckets: prometheus.ExponentialBucketsRange(0.01, 600, 240),
	}, nil)
	var times *decisionTimes
	t, err := r.startTrial(ctx, autoscaler, "", func(p *provisioner.Provisioner) {
		p.Metrics.Latency = latency
		p.Decided = func(pod *corev1.Pod, at time.Time) { times.decide(pod, at) }
	})
	if err != nil {
		return nil, err
	}
	defer t.stop()
	if times, err = t.watchFailedScheduling(t.runCtx); err != nil {
		return nil, err
	}
	clients, err := t.clients(max(sc.Clients, 1))
	if err != nil {
		return nil, err
	}
	var agent *agentProcess
	if r.opts.Agent != nil {
		if agent, err = t.startAgent(r.opts.Agent, r.opts.AgentProfiles); err != nil {
			return nil, err
		}
		defer agent.stop()
	}
	t.progress("creating %d pods with %d clients (one in %d needs new nodes)", sc.Pods, len(clients), sc.GrowthEvery)
	start := time.Now()
	var created, failed atomic.Int64
	next := atomic.Int64{}
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for _, cs := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= sc.Pods || ctx.Err() != nil {
					return
				}
				if _, err := cs.CoreV1().Pods(benchNamespace).Create(ctx, r.scalePod(i), metav1.CreateOptions{}); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				created.Add(1)
			}
		}()
	}
	ticks := 0
	stopTicker := t.tick(5*time.Second, func() {
		pending, _ := t.unscheduled(ctx)
		if agent == nil {
			t.progress("%d pods created, %d not yet bound", created.Load(), pending)
			return
		}
		t.progress("%d pods created, %d not yet bound; agent RSS %s", created.Load(), pending, agent.rss())
		if ticks++; ticks%6 == 0 { // every 30 s
			name := fmt.Sprintf("heap-%03ds.pb.gz", int(time.Since(agent.started).Seconds()))
			if err := agent.saveHeapProfile(ctx, name, false); err != nil {
				t.progress("agent heap profile: %v", err)
			}
		}
	})
	wg.Wait()
	createdIn := time.Since(start)
	if failed.Load() > 0 {
		stopTicker()
		return nil, fmt.Errorf("%d pod creations failed, first: %w", failed.Load(), firstErr)
	}
	t.progress("%d pods created in %s; waiting for all of them to be bound", sc.Pods, createdIn.Round(time.Second))
	err = waitFor(ctx, r.sc.Timeout.Std(10*time.Minute), time.Second, func() (bool, error) {
		n, err := t.unscheduled(ctx)
		return n == 0, err
	})
	stopTicker()
	if err != nil {
		return nil, fmt.Errorf("waiting for every pod to be bound, %w", err)
	}
	allBound := time.Since(start)

	h, err := histogram(latency)
	if err != nil {
		return nil, err
	}
	if h.GetSampleCount() == 0 {
		return nil, fmt.Errorf("the provisioner observed no pending-to-requested latency: no pod needed new capacity (growth workload too small?)")
	}
	p50, p90, p99 := quantile(h, 0.50), quantile(h, 0.90), quantile(h, 0.99)
	mean := h.GetSampleSum() / float64(h.GetSampleCount())
	precision := "starts when the provisioner saw the pod turn unschedulable (the PodScheduled=False condition's transition time, stored to the second, refined by the informer event within that second)"
	out := times.results(autoscaler)
	out = append(out,
		seconds("provisioner-metric-p50", autoscaler, p50).note(fmt.Sprintf("the provisioner's own histogram, %d observations, mean %.2f s; %s", h.GetSampleCount(), mean, precision)),
		seconds("provisioner-metric-p90", autoscaler, p90),
		seconds("provisioner-metric-p99", autoscaler, p99).
			note(fmt.Sprintf("provisioner passes every %s and early (batched: 100 ms idle, 250 ms max from the first arrival) when pods turn unschedulable; one observation per pod, at the first pass that decided for it: capacity asked for it, or the pod counted on capacity already booting (pods-released-capacity-taken counts those decisions that did not hold)", r.sc.Provisioner.Interval.Std(time.Second))),
		seconds("pods-created", autoscaler, createdIn.Seconds()).note(fmt.Sprintf("%d pods on %d base nodes, %d clients", sc.Pods, sc.Nodes, len(clients))),
		seconds("pods-created-to-all-bound", autoscaler, allBound.Seconds()),
	)
	e2e, err := t.growthBound(ctx, autoscaler)
	if err != nil {
		return nil, err
	}
	out = append(out, e2e...)
	if t.prov != nil {
		out = append(out, released(t.prov.Metrics.Released, autoscaler)...)
	}
	if agent != nil {
		out = append(out, agent.memory(ctx, autoscaler)...)
		agent.stop() // one agent at a time
		return append(out, t.restartedAgent(ctx, r.opts.Agent, autoscaler)...), nil
	}
	return append(out, r.memory(autoscaler)...), nil
}

// scalePod is the i-th pod of the scale scenario: the growth workload for
// one in GrowthEvery, the base workload otherwise.
func (r *runner) scalePod(i int) *corev1.Pod {
	w, app := r.sc.Workload, "base"
	if i%r.sc.Scale.GrowthEvery == 0 {
		w, app = r.sc.Scale.Growth, "growth"
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", app, i), Namespace: benchNamespace, Labels: map[string]string{"app": app}},
		Spec:       podSpec(w),
	}
}

// clients returns n clientsets with their own connections, so pod
// creation is not bound to one HTTP/2 connection.
func (t *trial) clients(n int) ([]kubernetes.Interface, error) {
	out := make([]kubernetes.Interface, 0, n)
	for range n {
		cfg := controller.ProtobufConfig(t.cp.RESTConfig())
		cfg.QPS, cfg.Burst = 5000, 5000
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("client for the benchmark cluster, %w", err)
		}
		out = append(out, cs)
	}
	return out, nil
}

// unscheduled counts the benchmark's pods not bound to a node yet.
func (t *trial) unscheduled(ctx context.Context) (int, error) {
	pods, err := t.cs.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=", ResourceVersion: "0"})
	if err != nil {
		return 0, fmt.Errorf("listing unscheduled pods, %w", err)
	}
	return len(pods.Items), nil
}

// tick calls f every interval until the returned function is called.
func (t *trial) tick(interval time.Duration, f func()) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				f()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// memory reports, when `bosun agent` was not run, this process's resident
// memory and Go heap: the
// provisioner with its informers, the local cloud and the benchmark's own
// clients (the control plane runs in other processes and is not included).
func (r *runner) memory(autoscaler string) []Result {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	what := "this bosun process: Bosun's provisioner and its informers, the local cloud with every instance, and the benchmark's pod generators and clients; " +
		"an upper bound of the provisioner's own cost, not `bosun agent` with all its controllers"
	out := []Result{{Name: "process-heap-in-use", Autoscaler: autoscaler, MB: ptrTo(float64(ms.HeapInuse) / (1 << 20)), Note: "Go heap after GC, " + what}}
	if rss, err := ProcStatus(os.Getpid(), "VmRSS:"); err == nil {
		mb := float64(rss) / (1 << 20)
		out = append(out, Result{Name: "process-rss", Autoscaler: autoscaler, MB: ptrTo(mb), Target: "< 150 MB", Met: ptrTo(mb < 150), Note: what})
	}
	return out
}

// ProcStatus reads a size field ("VmRSS:", "VmHWM:") of a process's
// /proc status, in bytes.
func ProcStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the memory of process %d, %w", pid, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %s %q, %w", field, rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// histogram reads the (label-less) histogram's current state.
func histogram(v *prometheus.HistogramVec) (*dto.Histogram, error) {
	var m dto.Metric
	if err := v.WithLabelValues().(prometheus.Metric).Write(&m); err != nil {
		return nil, fmt.Errorf("reading the latency histogram, %w", err)
	}
	return m.GetHistogram(), nil
}

// quantile interpolates the q-quantile linearly within its bucket, as
// Prometheus's histogram_quantile does.
func quantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if c >= rank {
			if c == prevCount {
				return b.GetUpperBound()
			}
			return prevBound + (b.GetUpperBound()-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b.GetUpperBound(), c
	}
	return prevBound
}
