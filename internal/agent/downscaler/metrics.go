package downscaler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the downscaler's Prometheus metrics.
type Metrics struct {
	scaledDown    *prometheus.GaugeVec
	replicasSaved *prometheus.GaugeVec
	cpuSaved      prometheus.Gauge
	memorySaved   prometheus.Gauge
	actions       *prometheus.CounterVec
	invalid       *prometheus.CounterVec
	passSeconds   prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		scaledDown: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_downscaler_scaled_down_objects", Help: "Objects currently held down by the downscaler, by kind.",
		}, []string{"kind"}),
		replicasSaved: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_downscaler_replicas_saved", Help: "Replicas not running because of the downscaler (original minus current), by kind.",
		}, []string{"kind"}),
		cpuSaved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_downscaler_cpu_requests_saved_cores", Help: "CPU requests of the replicas not running because of the downscaler.",
		}),
		memorySaved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_downscaler_memory_requests_saved_bytes", Help: "Memory requests of the replicas not running because of the downscaler.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_downscaler_actions_total", Help: "Scale-downs, restores and skipped restores, by kind; dry_run=true counts what would have been done.",
		}, []string{"action", "kind", "dry_run"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_downscaler_invalid_objects_total", Help: "Objects left alone because an annotation could not be parsed.",
		}, []string{"kind"}),
		passSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bosun_downscaler_pass_duration_seconds", Help: "Duration of one downscaler pass.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.scaledDown, m.replicasSaved, m.cpuSaved, m.memorySaved, m.actions, m.invalid, m.passSeconds)
	}
	return m
}

// tally sums what is currently held down, from the objects as the pass
// found them (the gauges lag one pass behind the pass's own writes).
type tally struct {
	objects, replicas map[string]float64
	cpu, memory       float64
}

func newTally() *tally {
	return &tally{objects: map[string]float64{}, replicas: map[string]float64{}}
}

func (t *tally) add(w *workload) {
	orig, ok, err := w.originalReplicas()
	if !ok || err != nil {
		return
	}
	t.objects[w.kind]++
	if w.noSavings {
		return
	}
	saved := float64(orig - w.replicas)
	if saved <= 0 {
		return
	}
	t.replicas[w.kind] += saved
	if w.template == nil {
		return
	}
	for _, ctr := range w.template.Spec.Containers {
		t.cpu += saved * ctr.Resources.Requests.Cpu().AsApproximateFloat64()
		t.memory += saved * ctr.Resources.Requests.Memory().AsApproximateFloat64()
	}
}

// kinds are every kind the gauges report, each on every pass.
var kinds = [...]string{"Deployment", "StatefulSet", "CronJob", "Job", "HorizontalPodAutoscaler", "Rollout", "ScaledObject"}

// observePass sets the gauges. Every pass sets every kind, so no series
// goes stale and none is dropped and created again each pass.
func (m *Metrics) observePass(t *tally, took time.Duration) {
	for _, kind := range kinds {
		m.scaledDown.WithLabelValues(kind).Set(t.objects[kind])
		m.replicasSaved.WithLabelValues(kind).Set(t.replicas[kind])
	}
	m.cpuSaved.Set(t.cpu)
	m.memorySaved.Set(t.memory)
	m.passSeconds.Observe(took.Seconds())
}
