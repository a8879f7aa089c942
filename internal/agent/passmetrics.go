package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// passMetrics say whether each controller reconciles: the alert rules
// BosunAgentNotReconciling and BosunAgentReconcileFailures (and the
// downscaler's and janitor's failure alerts) read them.
type passMetrics struct {
	failures    *prometheus.CounterVec
	passes      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
}

func newPassMetrics(reg prometheus.Registerer, controllers []string) (*passMetrics, error) {
	m := &passMetrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_agent_passes_total", Help: "Passes a controller made, failed ones included.",
		}, []string{"controller"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_agent_pass_failures_total", Help: "Passes of a controller that returned an error.",
		}, []string{"controller"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_agent_last_success_timestamp_seconds", Help: "Unix time of a controller's last pass without error (absent until the first one, and on replicas that do not lead).",
		}, []string{"controller"}),
	}
	for _, c := range []prometheus.Collector{m.passes, m.failures, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Counters start at 0 so the first failure is an increase a rule sees.
	for _, c := range controllers {
		m.passes.WithLabelValues(c)
		m.failures.WithLabelValues(c)
	}
	return m, nil
}

// observe records one pass of controller ending at now.
func (m *passMetrics) observe(controller string, now time.Time, err error) {
	if m == nil {
		return
	}
	m.passes.WithLabelValues(controller).Inc()
	if err != nil {
		m.failures.WithLabelValues(controller).Inc()
		return
	}
	m.lastSuccess.WithLabelValues(controller).Set(float64(now.UnixNano()) / 1e9)
}
