package janitor

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the janitor's Prometheus metrics.
type Metrics struct {
	deletions     *prometheus.CounterVec
	notifications *prometheus.CounterVec
	deferred      *prometheus.CounterVec
	invalid       prometheus.Counter
	passSeconds   prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_janitor_deletions_total", Help: "Objects deleted (dry_run=true: would have been deleted), by resource.",
		}, []string{"resource", "dry_run"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_janitor_notifications_total", Help: "DeleteScheduled notices sent, by resource.",
		}, []string{"resource", "dry_run"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_janitor_deferred_deletions_total", Help: "Deletions put off to a later pass by the per-pass cap or the rate limit.",
		}, []string{"resource"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bosun_janitor_invalid_objects_total", Help: "Objects never deleted because their TTL or expiry could not be parsed.",
		}),
		passSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bosun_janitor_pass_duration_seconds", Help: "Duration of one janitor pass.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.deletions, m.notifications, m.deferred, m.invalid, m.passSeconds)
	}
	return m
}
