package provisioner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the provisioner's Prometheus metrics.
type Metrics struct {
	// Latency is the time from a pod turning unschedulable to the first
	// pass that decided for it: capacity requested for it, or the pod
	// counted on capacity already booting (once per pod).
	Latency *prometheus.HistogramVec
	// Released counts pods that waited for capacity and were placed
	// again, by reason: launch-failed, instance-lost, capacity-taken (the
	// capacity registered and other pods took it: the count of decisions
	// that did not hold).
	Released *prometheus.CounterVec
	// Fallbacks counts capacity errors that sent pods to the next option,
	// by node group and reason (InsufficientInstanceCapacity,
	// VcpuLimitExceeded, ProvisionTimeout): the alert rules report
	// capacity errors per pool.
	Fallbacks *prometheus.CounterVec
	// ScaleUps counts scale-up decisions by group.
	ScaleUps *prometheus.CounterVec
	// Unavailable is the number of offerings currently skipped.
	Unavailable prometheus.Gauge
}

func newMetrics() *Metrics {
	return &Metrics{
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bosun_provisioner_pending_to_requested_seconds",
			Help:    "Time from a pod becoming unschedulable to the provisioner's first decision for it: capacity requested, or counted on capacity already booting.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}, nil),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_provisioner_fallbacks_total",
			Help: "Capacity errors that moved pending pods to the next node group option, by node group and reason.",
		}, []string{"group", "reason"}),
		Released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_provisioner_released_pods_total",
			Help: "Pods that waited for capacity and were placed again, by reason (launch-failed, instance-lost, capacity-taken).",
		}, []string{"reason"}),
		ScaleUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_provisioner_scale_ups_total",
			Help: "Scale-up decisions by node group.",
		}, []string{"group"}),
		Unavailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_provisioner_unavailable_offerings",
			Help: "Offerings (instance type, zone, lifecycle) skipped after a capacity error.",
		}),
	}
}

// Register adds the metrics to a registry.
func (m *Metrics) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Latency, m.Released, m.Fallbacks, m.ScaleUps, m.Unavailable} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) observeLatency(d time.Duration) { m.Latency.WithLabelValues().Observe(d.Seconds()) }
func (m *Metrics) fallback(group, reason string)  { m.Fallbacks.WithLabelValues(group, reason).Inc() }
func (m *Metrics) released(reason string)         { m.Released.WithLabelValues(reason).Inc() }
func (m *Metrics) scaleUp(group string)           { m.ScaleUps.WithLabelValues(group).Inc() }
func (m *Metrics) setUnavailable(n int)           { m.Unavailable.Set(float64(n)) }
