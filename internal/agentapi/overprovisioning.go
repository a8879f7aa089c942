package agentapi

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// Names and labels of the overprovisioner's pause pods (L12).
const (
	// PriorityClassName is the class of the pause pods; the
	// overprovisioner creates it only when missing.
	PriorityClassName = "overprovisioning"
	// Priority is the pause pods' priority: below every workload, so any
	// pending pod preempts them.
	Priority = int32(-10)
	// LabelManaged marks a pause pod and names its target.
	LabelManaged = "overprovisioning.bosun.dev/target"
	// ClusterTarget is the target of the nodes no dedicated pool owns.
	ClusterTarget = "cluster"
)

// PauseOwnership are the ownership labels of every pause pod, besides
// LabelManaged: production clusters refuse pods without an application
// and a team (L55, enforced by admission), and the headroom belongs to the
// platform team that runs the agent.
var PauseOwnership = map[string]string{"application": "bosun-overprovisioning", "team": "platform"}

// TargetFor names the target whose pause pods keep headroom for a node
// with these labels and taints: "pool-<pool>" for a node of a dedicated
// pool (role label dedicated and a pool label), with the pool's node
// selector and tolerations for the node's taints (L06); "cluster" for any
// other node without a NoSchedule or NoExecute taint; "" for a node
// tainted for another reason (a system pool, say), which gets none. Lint
// calls it too, so the fleet's checks and the controller agree.
func TargetFor(labels map[string]string, taints []corev1.Taint) string {
	if labels[fleet.LabelRole] == fleet.RoleDedicated && labels[fleet.LabelPool] != "" {
		return "pool-" + labels[fleet.LabelPool]
	}
	if hasNoSchedule(taints) {
		return ""
	}
	return ClusterTarget
}

// PoolTarget is TargetFor the nodes of a fleet's node pool: "pool-<name>",
// "cluster" or "" (no headroom).
func PoolTarget(p *fleet.NodePool) string {
	taints := make([]corev1.Taint, 0, len(p.Taints))
	for _, t := range p.Taints {
		taints = append(taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return TargetFor(p.NodeLabels(), taints)
}

// hasNoSchedule reports a taint that reserves the node; the conditions
// Kubernetes itself sets for a while (not-ready, unreachable, ...) do not.
func hasNoSchedule(taints []corev1.Taint) bool {
	for _, t := range taints {
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") || strings.HasPrefix(t.Key, "node.cloudprovider.kubernetes.io/") {
			continue
		}
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// DeploymentName is the name of a target's pause Deployment.
func DeploymentName(target string) string { return "overprovisioning-" + strings.ToLower(target) }
