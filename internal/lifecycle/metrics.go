package lifecycle

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus series, per cluster.
type metrics struct {
	phase       *prometheus.GaugeVec
	version     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	errors      *prometheus.CounterVec
	outdated    *prometheus.GaugeVec
	passSeconds prometheus.Gauge
	e2e         *prometheus.CounterVec
}

var allPhases = []Phase{PhaseReconciled, PhaseApplying, PhaseRolling, PhaseBlocked, PhaseLintFailed, PhaseFailed}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_lifecycle_cluster_phase",
			Help: "1 for the phase each cluster is in, 0 for the others.",
		}, []string{"cluster", "phase"}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_lifecycle_cluster_version_info",
			Help: "Desired and applied version of each cluster (value 1); they differ while a change is on its way.",
		}, []string{"cluster", "desired", "applied"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_lifecycle_last_success_timestamp_seconds",
			Help: "When a pass over the cluster last succeeded (Unix time).",
		}, []string{"cluster"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_lifecycle_errors_total",
			Help: "Passes over the cluster that failed.",
		}, []string{"cluster"}),
		outdated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_lifecycle_outdated_nodes",
			Help: "Nodes of the pool being rolled still on an older template (L44).",
		}, []string{"cluster"}),
		passSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_lifecycle_pass_duration_seconds",
			Help: "Duration of the last pass over every due cluster.",
		}),
		e2e: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_lifecycle_e2e_runs_total",
			Help: "Runs of the e2e suite the controller started after a cluster reached a new version, by result (passed, failed, error).",
		}, []string{"cluster", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.phase, m.version, m.lastSuccess, m.errors, m.outdated, m.passSeconds, m.e2e)
	}
	return m
}

// observe records a cluster's status after a pass.
func (m *metrics) observe(st Status, failed bool, at float64) {
	for _, p := range allPhases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(st.Cluster, string(p)).Set(v)
	}
	m.version.DeletePartialMatch(prometheus.Labels{"cluster": st.Cluster})
	m.version.WithLabelValues(st.Cluster, st.DesiredVersion, st.AppliedVersion).Set(1)
	if failed {
		m.errors.WithLabelValues(st.Cluster).Inc()
	} else {
		m.lastSuccess.WithLabelValues(st.Cluster).Set(at)
	}
	n := 0
	if st.Roll != nil {
		n = st.Roll.Outdated
	}
	m.outdated.WithLabelValues(st.Cluster).Set(float64(n))
}
