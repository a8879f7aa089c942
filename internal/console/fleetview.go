package console

import (
	"strconv"
	"time"
)

// PendingProblemAfter is how long a pod may stay Pending before the fleet
// page lists it as a problem.
const PendingProblemAfter = 5 * time.Minute

// FleetRow is one cluster on the fleet page.
type FleetRow struct {
	ClusterStatus
	Nodes         int      `json:"nodes"`
	SpotNodes     int      `json:"spotNodes"`
	OnDemandNodes int      `json:"onDemandNodes"`
	NotReadyNodes int      `json:"notReadyNodes"`
	Pods          int      `json:"pods"`
	PendingPods   int      `json:"pendingPods"`
	LongPending   int      `json:"longPendingPods"`
	Problems      []string `json:"problems"`
}

// Fleet returns one row per cluster: versions, node counts by lifecycle,
// pending pods and problems (down, not-ready nodes, pods pending longer
// than PendingProblemAfter).
func (c *Console) Fleet() []FleetRow {
	now := c.clock.Now()
	var out []FleetRow
	for _, cl := range c.clusters {
		row := FleetRow{ClusterStatus: cl.status()}
		for _, it := range cl.match(Query{Kinds: []string{"Node", "Pod"}}, nil) {
			switch it.Kind {
			case "Node":
				row.Nodes++
				if c.cost.lifecycleOf(it.Labels) == LifecycleSpot {
					row.SpotNodes++
				} else {
					row.OnDemandNodes++
				}
				if anyEqual([]string{"NotReady"}, it.Status, false) {
					row.NotReadyNodes++
				}
			case "Pod":
				row.Pods++
				if it.Status == "Pending" {
					row.PendingPods++
					if now.Sub(it.Since) > PendingProblemAfter {
						row.LongPending++
					}
				}
			}
		}
		row.Problems = problems(row)
		out = append(out, row)
	}
	return out
}

func problems(r FleetRow) []string {
	var out []string
	if r.State == StateDown {
		out = append(out, "API server unreachable: "+r.Error)
	}
	if r.NotReadyNodes > 0 {
		out = append(out, plural(r.NotReadyNodes, "node")+" not ready")
	}
	if r.LongPending > 0 {
		out = append(out, plural(r.LongPending, "pod")+" pending for more than 5 min")
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// lifecycleOf returns spot or on-demand from node labels.
func (o CostOptions) lifecycleOf(labels map[string]string) string {
	for _, l := range o.CapacityTypeLabels {
		if v, ok := labels[l]; ok {
			if lc := normalizeLifecycle(v); lc != "" {
				return lc
			}
			break
		}
	}
	return LifecycleOnDemand
}
