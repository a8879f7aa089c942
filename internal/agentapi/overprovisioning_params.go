package agentapi

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Params are the replica rules, in cluster-proportional-autoscaler's
// format so existing configs carry over: the ConfigMap holds a "linear" or
// a "ladder" key with a JSON document.
type Params struct {
	Linear *Linear
	Ladder *Ladder
}

// Linear is cluster-proportional-autoscaler's linear mode: replicas = max(ceil(cores/coresPerReplica), ceil(nodes/nodesPerReplica)),
// then bounded by min and max; with preventSinglePointFailure, at least 2
// when there is more than one node.
type Linear struct {
	CoresPerReplica           float64 `json:"coresPerReplica"`
	NodesPerReplica           float64 `json:"nodesPerReplica"`
	Min                       int     `json:"min"`
	Max                       int     `json:"max"`
	PreventSinglePointFailure bool    `json:"preventSinglePointFailure"`
	IncludeUnschedulableNodes bool    `json:"includeUnschedulableNodes"`
}

// Ladder is cluster-proportional-autoscaler's ladder mode: each list is steps [threshold, replicas]; for cores and for
// nodes the step with the largest threshold not above the count applies,
// and the larger of the two results wins (0 below the first threshold).
type Ladder struct {
	CoresToReplicas           [][2]float64 `json:"coresToReplicas"`
	NodesToReplicas           [][2]float64 `json:"nodesToReplicas"`
	IncludeUnschedulableNodes bool         `json:"includeUnschedulableNodes"`
}

// ParseParams reads the ConfigMap data; where names the ConfigMap in
// errors. Exactly one of "linear" and "ladder" must be set.
func ParseParams(where string, data map[string]string) (Params, error) {
	lin, hasLin := data["linear"]
	lad, hasLad := data["ladder"]
	switch {
	case hasLin == hasLad:
		return Params{}, fmt.Errorf("%s: expected exactly one of the keys linear and ladder", where)
	case hasLin:
		var l Linear
		if err := strictJSON(lin, &l); err != nil {
			return Params{}, fmt.Errorf("%s: linear: %w", where, err)
		}
		if l.CoresPerReplica < 0 || l.NodesPerReplica < 0 || (l.CoresPerReplica == 0 && l.NodesPerReplica == 0) {
			return Params{}, fmt.Errorf("%s: linear: expected coresPerReplica or nodesPerReplica above 0", where)
		}
		if l.Min < 0 || (l.Max > 0 && l.Max < l.Min) {
			return Params{}, fmt.Errorf("%s: linear: min %d / max %d: expected 0 <= min <= max (max 0 = none)", where, l.Min, l.Max)
		}
		return Params{Linear: &l}, nil
	default:
		var l Ladder
		if err := strictJSON(lad, &l); err != nil {
			return Params{}, fmt.Errorf("%s: ladder: %w", where, err)
		}
		if len(l.CoresToReplicas) == 0 && len(l.NodesToReplicas) == 0 {
			return Params{}, fmt.Errorf("%s: ladder: expected coresToReplicas or nodesToReplicas", where)
		}
		for _, steps := range [][][2]float64{l.CoresToReplicas, l.NodesToReplicas} {
			sort.Slice(steps, func(i, j int) bool { return steps[i][0] < steps[j][0] })
		}
		return Params{Ladder: &l}, nil
	}
}

func strictJSON(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

// IncludeUnschedulable reports whether cordoned nodes count.
func (p Params) IncludeUnschedulable() bool {
	if p.Linear != nil {
		return p.Linear.IncludeUnschedulableNodes
	}
	return p.Ladder != nil && p.Ladder.IncludeUnschedulableNodes
}

// Replicas is the number of pause pods for a capacity of cores and nodes.
func (p Params) Replicas(cores float64, nodes int) int {
	if p.Linear != nil {
		return p.Linear.replicas(cores, nodes)
	}
	if p.Ladder != nil {
		return max(step(p.Ladder.CoresToReplicas, cores), step(p.Ladder.NodesToReplicas, float64(nodes)))
	}
	return 0
}

func (l Linear) replicas(cores float64, nodes int) int {
	r := 0
	if l.CoresPerReplica > 0 {
		r = max(r, int(math.Ceil(cores/l.CoresPerReplica)))
	}
	if l.NodesPerReplica > 0 {
		r = max(r, int(math.Ceil(float64(nodes)/l.NodesPerReplica)))
	}
	if l.PreventSinglePointFailure && nodes > 1 && r < 2 {
		r = 2
	}
	r = max(r, l.Min)
	if l.Max > 0 {
		r = min(r, l.Max)
	}
	return r
}

func step(steps [][2]float64, value float64) int {
	r := 0
	for _, s := range steps {
		if value >= s[0] {
			r = int(s[1])
		}
	}
	return r
}
