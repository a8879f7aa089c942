package overprovisioner

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
)

// Release is what a burst release decides (L12, L33): the pause pods to
// delete at once, and where each pending pod is expected to run.
type Release struct {
	// PausePods are the pause pods to delete, in one batch.
	PausePods []*corev1.Pod
	// Placed maps each pending pod that fits, in room already free or
	// freed by PausePods, to its node.
	Placed map[*corev1.Pod]string
	// Left are the pending pods that would not fit even with every pause
	// pod gone: the provisioner's.
	Left []*corev1.Pod
}

// room is one node as the selection sees it: what is free for new pods
// and the pause pods that could make more.
type room struct {
	node           *corev1.Node
	cpu, mem, pods int64
	pause          []*corev1.Pod
}

// SelectRelease chooses the pause pods to delete so that the pending pods
// fit, from the cluster's state alone (nodes and every pod), so that a
// restarted agent decides the same and never releases twice:
//   - pending are the pods with a priority above the pause pods' and
//     without a node or a nominated node, that the scheduler could not
//     place (PodScheduled False Unschedulable) or has not tried yet: a
//     burst is released for as its pods are created, ahead of the
//     scheduler's preemption, which takes one pod per cycle and backs off
//     (a pod that fits in free room gets none);
//   - a node's free room is its allocatable minus the requests of the pods
//     bound to it and not terminating, minus the pods nominated to it (the
//     scheduler's own preemption claimed that room): a pause pod already
//     being deleted, by the scheduler or by an earlier release, frees room
//     once and is counted once;
//   - pending pods go first into room already free, then, largest first,
//     on the node that needs the fewest pause pods deleted, where the pod
//     may run as the provisioner's placement checks it (node selector,
//     required node affinity, taints; L06: a dedicated pool's pause pods
//     only ever make room for pods that tolerate the pool);
//   - room a deleted pause pod leaves over is used by the next pods before
//     another pause pod goes: no more headroom is released than the pods
//     need; pods that fit nowhere are Left for the provisioner.
//
// Pod (anti-)affinity and topology spread are not checked (the agent's
// pod cache does not keep them): a pod the scheduler then still cannot
// place on the freed room is left to preemption and the provisioner.
func SelectRelease(nodes []*corev1.Node, pods []*corev1.Pod) Release {
	rel := Release{Placed: map[*corev1.Pod]string{}}
	rooms := map[string]*room{}
	var order []*room
	for _, n := range nodes {
		if n.Spec.Unschedulable || n.DeletionTimestamp != nil || !capacity.NodeReady(n) {
			continue // a booting node's room is not there yet
		}
		cpu, mem, slots := placement.Allocatable(n)
		r := &room{node: n, cpu: cpu, mem: mem, pods: slots}
		rooms[n.Name] = r
		order = append(order, r)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].node.Name < order[j].node.Name })
	var pending []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		at := p.Spec.NodeName
		if at == "" {
			at = p.Status.NominatedNodeName
		}
		if r := rooms[at]; r != nil {
			cpu, mem := placement.Requests(p)
			r.cpu, r.mem, r.pods = r.cpu-cpu, r.mem-mem, r.pods-1
			if p.Spec.NodeName != "" && isPause(p) {
				r.pause = append(r.pause, p)
			}
			continue
		}
		if waiting(p) {
			pending = append(pending, p)
		}
	}
	for _, r := range order {
		// Largest first: one deletion frees the most.
		sort.SliceStable(r.pause, func(i, j int) bool { return larger(r.pause[i], r.pause[j]) })
	}
	sort.SliceStable(pending, func(i, j int) bool { return larger(pending[i], pending[j]) })

	// Room already free first: nothing is deleted for a pod that fits.
	var rest []*corev1.Pod
	for _, p := range pending {
		cpu, mem := placement.Requests(p)
		placed := false
		for _, r := range order {
			if r.cpu >= cpu && r.mem >= mem && r.pods >= 1 && placement.Fits(p, r.node) {
				r.cpu, r.mem, r.pods = r.cpu-cpu, r.mem-mem, r.pods-1
				rel.Placed[p] = r.node.Name
				placed = true
				break
			}
		}
		if !placed {
			rest = append(rest, p)
		}
	}
	// Then the fewest pause pods that make each remaining pod fit.
	for _, p := range rest {
		cpu, mem := placement.Requests(p)
		var best *room
		bestN := 0
		for _, r := range order {
			if len(r.pause) == 0 || !placement.Fits(p, r.node) {
				continue
			}
			if n, ok := r.needs(cpu, mem); ok && (best == nil || n < bestN) {
				best, bestN = r, n
			}
		}
		if best == nil {
			rel.Left = append(rel.Left, p)
			continue
		}
		for _, v := range best.pause[:bestN] {
			vc, vm := placement.Requests(v)
			best.cpu, best.mem, best.pods = best.cpu+vc, best.mem+vm, best.pods+1
			rel.PausePods = append(rel.PausePods, v)
		}
		best.pause = best.pause[bestN:]
		best.cpu, best.mem, best.pods = best.cpu-cpu, best.mem-mem, best.pods-1
		rel.Placed[p] = best.node.Name
	}
	return rel
}

// needs is the number of the node's pause pods (in order) to delete so
// that a pod of cpu and mem fits, or false when all of them are not
// enough.
func (r *room) needs(cpu, mem int64) (int, bool) {
	c, m, s := r.cpu, r.mem, r.pods
	for i := 0; ; i++ {
		if c >= cpu && m >= mem && s >= 1 {
			return i, true
		}
		if i == len(r.pause) {
			return 0, false
		}
		vc, vm := placement.Requests(r.pause[i])
		c, m, s = c+vc, m+vm, s+1
	}
}

// waiting reports a pod a burst release is for: above the pause pods'
// priority, without a node or a nominated node, not being deleted, and
// unschedulable or not tried by the scheduler yet.
func waiting(p *corev1.Pod) bool {
	if p.Spec.NodeName != "" || p.Status.NominatedNodeName != "" || p.DeletionTimestamp != nil ||
		p.Status.Phase != corev1.PodPending && p.Status.Phase != "" || corev1helpers.PodPriority(p) <= Priority {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return provisioner.Unschedulable(p)
		}
	}
	return true // not tried yet
}

// isPause reports one of the overprovisioner's pause pods.
func isPause(p *corev1.Pod) bool {
	return p.Labels[LabelManaged] != "" && corev1helpers.PodPriority(p) <= Priority
}

// larger orders pods by CPU, then memory requests, largest first, then by
// name, so the selection is deterministic.
func larger(a, b *corev1.Pod) bool {
	ac, am := placement.Requests(a)
	bc, bm := placement.Requests(b)
	if ac != bc {
		return ac > bc
	}
	if am != bm {
		return am > bm
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}
