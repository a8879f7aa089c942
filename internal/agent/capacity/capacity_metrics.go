package capacity

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Reasons a node is removed, the reason label of
// bosun_provisioner_nodes_removed_total.
const (
	ReasonEmpty         = "empty"
	ReasonUnderutilized = "underutilized"
	ReasonReapOnDemand  = "reap-on-demand"
)

// CapacityMetrics are the Prometheus metrics of the scale-down controller
// and the on-demand reaper: each gets them from NewCapacityMetrics with
// the agent's registry, the same collectors.
type CapacityMetrics struct {
	// Removed counts nodes removed (instance deleted) by reason and
	// lifecycle; dry_run="true" counts what would have been removed.
	Removed *prometheus.CounterVec
	// DrainFailures counts drains that failed (a PDB refused an eviction
	// until the drain timeout, or an API error) by controller; the node
	// was uncordoned and stays.
	DrainFailures *prometheus.CounterVec
	// ReapAborted counts reaps given up before the on-demand node was
	// touched, by reason (spot-unavailable, replacement-timeout).
	ReapAborted *prometheus.CounterVec
	// OnDemandRatio is the share of the cluster's running instances that
	// are on-demand (L22: should return to 0 once spot is back).
	OnDemandRatio prometheus.Gauge
	// Unneeded is the number of nodes the scale-down currently finds
	// unneeded (whether or not their unneeded time has passed).
	Unneeded prometheus.Gauge
	// Needed is the number of nodes the scale-down keeps, by reason
	// (the Needed constants): why nodes that look idle stay.
	Needed *prometheus.GaugeVec
}

// NewCapacityMetrics creates the metrics and registers them with reg (nil:
// not registered), or returns the ones registered with reg before: the
// scale-down and the reaper share them.
func NewCapacityMetrics(reg prometheus.Registerer) (*CapacityMetrics, error) {
	m := &CapacityMetrics{
		Removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_provisioner_nodes_removed_total",
			Help: "Nodes removed by scale-down or the on-demand reaper, by reason and lifecycle; dry_run=true counts what would have been removed.",
		}, []string{"reason", "lifecycle", "dry_run"}),
		DrainFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_provisioner_drain_failures_total",
			Help: "Drains that failed (eviction refused by a PodDisruptionBudget until the timeout, or an API error); the node was uncordoned and stays.",
		}, []string{"controller"}),
		ReapAborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bosun_provisioner_reap_aborted_total",
			Help: "On-demand reaps given up before the on-demand node was drained, by reason.",
		}, []string{"reason"}),
		OnDemandRatio: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_provisioner_on_demand_nodes_ratio",
			Help: "Share of the cluster's running instances that are on-demand.",
		}),
		Unneeded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bosun_provisioner_unneeded_nodes",
			Help: "Nodes the scale-down finds unneeded (empty or under-utilized, pods movable).",
		}),
		Needed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bosun_provisioner_needed_nodes",
			Help: "Nodes the scale-down keeps, by reason: min-size, utilization, pending-pod, pod-not-evictable, pdb, no-place (no other node fits a pod within its constraints).",
		}, []string{"reason"}),
	}
	// The scale-down and the reaper each call this with the agent's
	// registry: the second gets the first's collectors.
	var err error
	if m.Removed, err = controller.Register(reg, m.Removed); err != nil {
		return nil, err
	}
	if m.DrainFailures, err = controller.Register(reg, m.DrainFailures); err != nil {
		return nil, err
	}
	if m.ReapAborted, err = controller.Register(reg, m.ReapAborted); err != nil {
		return nil, err
	}
	if m.OnDemandRatio, err = controller.Register(reg, m.OnDemandRatio); err != nil {
		return nil, err
	}
	if m.Unneeded, err = controller.Register(reg, m.Unneeded); err != nil {
		return nil, err
	}
	if m.Needed, err = controller.Register(reg, m.Needed); err != nil {
		return nil, err
	}
	return m, nil
}

// CountRemoved counts a node removed (or, dry-run, that would be) for
// reason.
func (m *CapacityMetrics) CountRemoved(reason string, lc provider.Lifecycle, dryRun bool) {
	m.Removed.WithLabelValues(reason, string(lc), strconv.FormatBool(dryRun)).Inc()
}
