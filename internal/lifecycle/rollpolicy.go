package lifecycle

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Node pool rolls (L44, L45), pure part: given the pools and their nodes
// as read this pass, what the roll does now. The roll's state lives on the
// nodes, so a controller killed at any moment resumes where the nodes say
// (L42): a node is marked for replacement once (and its group surged), its
// drain start is recorded once (the force deadline counts from it), and
// its instance is terminated once.
const (
	// AnnotationRollMarked (RFC 3339 time) marks an outdated node chosen
	// for replacement; its group was surged by one node for it.
	AnnotationRollMarked = "lifecycle.bosun.dev/roll-marked"
	// AnnotationDrainStarted (RFC 3339 time) is when its drain began: the
	// node was cordoned and its pods are evicted, pass after pass, until
	// the drain deadline; then they are deleted.
	AnnotationDrainStarted = "lifecycle.bosun.dev/drain-started"
	// AnnotationTerminated (RFC 3339 time) says its instance was deleted;
	// the node goes with it.
	AnnotationTerminated = "lifecycle.bosun.dev/terminated"
)

// RollNode is one node of a pool as the roll sees it.
type RollNode struct {
	Name string
	Zone string
	// Hash is the node's template hash label.
	Hash          string
	Ready         bool
	Unschedulable bool
	Created       time.Time
	// Marked, DrainStarted and Terminated are the roll's annotations
	// (zero when absent).
	Marked, DrainStarted, Terminated time.Time
	// Pods counts the pods still to move off the node (not DaemonSet,
	// mirror or finished pods); ZonalVolumes the zones of the zonal
	// volumes they use (L45: a replacement must be Ready in that zone).
	Pods         int
	ZonalVolumes []string
}

// RollPool is one pool of the cluster with its nodes.
type RollPool struct {
	Name string
	// Group is the node group ID; Hash the pool's template hash now.
	Group string
	Hash  string
	Zones []string
	// TargetSize of the group in the cloud.
	TargetSize int
	Nodes      []RollNode
}

// RollInput is what one roll decision needs.
type RollInput struct {
	// Pools in the spec's order; one is rolled at a time.
	Pools []RollPool
	// NotReady counts NotReady nodes in the whole cluster (nodes being
	// terminated by the roll excluded); MaxNotReady is the threshold above
	// which the roll pauses.
	NotReady, MaxNotReady int
	// MaxSurge is the number of new nodes a pool may add before its old
	// ones go (0: one per zone of the pool).
	MaxSurge int
	// Deadline is how long a drain respects PDBs before it forces.
	Deadline time.Duration
	Now      time.Time
}

// RollStep is one action of a roll on one node.
type RollStep struct {
	// Action: mark (surge the group by one and mark the node), drain
	// (cordon, record the start, evict), evict (evict again), force
	// (delete the remaining pods), terminate (delete the instance).
	Action string
	Node   string
	Group  string
}

// Roll actions.
const (
	StepMark      = "mark"
	StepDrain     = "drain"
	StepEvict     = "evict"
	StepForce     = "force"
	StepTerminate = "terminate"
)

// RollPlan is what a roll does this pass.
type RollPlan struct {
	// Progress is nil when no pool has outdated nodes.
	Progress *RollProgress
	Steps    []RollStep
}

// PlanRoll decides the roll's steps for this pass.
func PlanRoll(in RollInput) RollPlan {
	left := 0
	var pool *RollPool
	for i := range in.Pools {
		if len(outdated(&in.Pools[i])) > 0 {
			left++
			if pool == nil {
				pool = &in.Pools[i]
			}
		}
	}
	if pool == nil {
		return RollPlan{}
	}
	old := outdated(pool)
	prog := &RollProgress{Pool: pool.Name, Outdated: len(old), Total: len(pool.Nodes), PoolsLeft: left}
	plan := RollPlan{Progress: prog}
	if in.NotReady > in.MaxNotReady {
		prog.Message = fmt.Sprintf("paused: %d NotReady nodes in the cluster, more than %d", in.NotReady, in.MaxNotReady)
		return plan
	}
	surge := in.MaxSurge
	if surge <= 0 {
		surge = max(1, len(pool.Zones))
	}
	var marked, unmarked []RollNode
	for _, n := range old {
		if n.Terminated.IsZero() {
			if n.Marked.IsZero() {
				unmarked = append(unmarked, n)
			} else {
				marked = append(marked, n)
			}
		}
	}
	var msgs []string
	// Surge first: mark up to surge nodes, spread over zones.
	if free := surge - len(marked); free > 0 && len(unmarked) > 0 {
		for _, n := range pickSpread(unmarked, marked, free) {
			plan.Steps = append(plan.Steps, RollStep{Action: StepMark, Node: n.Name, Group: pool.Group})
		}
	}
	// The surge is there when every instance the group wants runs a Ready
	// node (terminated nodes no longer count).
	ready := 0
	for _, n := range pool.Nodes {
		if n.Ready && n.Terminated.IsZero() {
			ready++
		}
	}
	surged := ready >= pool.TargetSize
	for _, n := range marked {
		switch {
		case n.DrainStarted.IsZero() && !surged:
			msgs = append(msgs, fmt.Sprintf("waiting for new nodes (%d of %d Ready)", ready, pool.TargetSize))
		case n.DrainStarted.IsZero() && !zoneCovered(pool, n):
			msgs = append(msgs, fmt.Sprintf("%s waits for a Ready new node in %s (zonal volume)", n.Name, strings.Join(n.ZonalVolumes, ", ")))
		case n.DrainStarted.IsZero():
			plan.Steps = append(plan.Steps, RollStep{Action: StepDrain, Node: n.Name, Group: pool.Group})
		case n.Pods == 0:
			plan.Steps = append(plan.Steps, RollStep{Action: StepTerminate, Node: n.Name, Group: pool.Group})
		case !in.Now.Before(n.DrainStarted.Add(in.Deadline)):
			plan.Steps = append(plan.Steps, RollStep{Action: StepForce, Node: n.Name, Group: pool.Group})
		default:
			plan.Steps = append(plan.Steps, RollStep{Action: StepEvict, Node: n.Name, Group: pool.Group})
		}
	}
	for _, s := range plan.Steps {
		msgs = append(msgs, s.Action+" "+s.Node)
	}
	prog.Message = strings.Join(dedupeStable(msgs), "; ")
	return plan
}

// outdated returns the pool's nodes built from an older template.
func outdated(p *RollPool) []RollNode {
	var out []RollNode
	for _, n := range p.Nodes {
		if n.Hash != p.Hash {
			out = append(out, n)
		}
	}
	return out
}

// zoneCovered: a node whose pods use zonal volumes is drained only once a
// new, Ready, schedulable node of the pool runs in one of those zones.
func zoneCovered(p *RollPool, n RollNode) bool {
	if len(n.ZonalVolumes) == 0 {
		return true
	}
	for _, m := range p.Nodes {
		if m.Hash == p.Hash && m.Ready && !m.Unschedulable {
			for _, z := range n.ZonalVolumes {
				if m.Zone == z {
					return true
				}
			}
		}
	}
	return false
}

// pickSpread picks up to k nodes, oldest first, preferring zones with the
// fewest nodes already marked.
func pickSpread(cands, marked []RollNode, k int) []RollNode {
	perZone := map[string]int{}
	for _, n := range marked {
		perZone[n.Zone]++
	}
	cands = append([]RollNode(nil), cands...)
	sort.SliceStable(cands, func(i, j int) bool {
		if !cands[i].Created.Equal(cands[j].Created) {
			return cands[i].Created.Before(cands[j].Created)
		}
		return cands[i].Name < cands[j].Name
	})
	var out []RollNode
	for len(out) < k && len(cands) > 0 {
		best := 0
		for i := range cands {
			if perZone[cands[i].Zone] < perZone[cands[best].Zone] {
				best = i
			}
		}
		out = append(out, cands[best])
		perZone[cands[best].Zone]++
		cands = append(cands[:best], cands[best+1:]...)
	}
	return out
}

func dedupeStable(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// MaxNotReady is the NotReady threshold of a cluster with nodes nodes:
// the config item ConfigMaxNotReady, else 10% of the nodes, at least 1.
func MaxNotReady(items map[string]string, nodes int) (int, error) {
	if v, ok := items[ConfigMaxNotReady]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("config item %s %q: expected a number of nodes, 0 or more", ConfigMaxNotReady, v)
		}
		return n, nil
	}
	return max(1, nodes/10), nil
}

// MaxSurge is the config item ConfigMaxSurge, 0 (one per zone) when unset.
func MaxSurge(items map[string]string) (int, error) {
	v, ok := items[ConfigMaxSurge]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("config item %s %q: expected a number of nodes, 1 or more", ConfigMaxSurge, v)
	}
	return n, nil
}
