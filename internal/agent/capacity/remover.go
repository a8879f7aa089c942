package capacity

import (
	"fmt"

	"github.com/bosun-platform/bosun/internal/agent/controller"
)

// Remover is what the controllers that drain and remove nodes (the
// scale-down and the reaper) build from their Deps: the cluster's caches,
// the eviction rules, the background drains and the shared capacity
// metrics. Each embeds one, made by NewRemover, so both are wired the
// same way; the clock and the client they read from their Deps.
type Remover struct {
	Listers Listers
	Metrics *CapacityMetrics
	Rules   EvictionRules
	Drains  *Drains
}

// NewRemover checks that deps hold what a node remover needs (a provider,
// a client and a cluster-wide informer factory, which the caller starts)
// and returns the Remover with deps' defaults filled in. name is the
// controller's, for errors.
func NewRemover(name string, deps controller.Deps, rules EvictionRules) (Remover, controller.Deps, error) {
	if err := deps.Require(name, controller.FieldProvider, controller.FieldClient, controller.FieldFactory); err != nil {
		return Remover{}, deps, err
	}
	deps = deps.WithDefaults()
	metrics, err := NewCapacityMetrics(deps.Registry)
	if err != nil {
		return Remover{}, deps, fmt.Errorf("%s: %w", name, err)
	}
	return Remover{
		Listers: NewListers(deps.Factory),
		Metrics: metrics,
		Rules:   rules,
		Drains:  NewDrains(),
	}, deps, nil
}

// Wait blocks until the drains started by earlier passes have ended (for
// a single pass, and tests).
func (r *Remover) Wait() { r.Drains.Wait() }
