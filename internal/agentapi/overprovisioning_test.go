package agentapi

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/fleet"
)

func TestTargetFor(t *testing.T) {
	dedicated := map[string]string{fleet.LabelRole: fleet.RoleDedicated, fleet.LabelPool: "checkout"}
	reserved := []corev1.Taint{{Key: "node.bosun.dev/role", Value: "system", Effect: corev1.TaintEffectNoSchedule}}
	for _, c := range []struct {
		name   string
		labels map[string]string
		taints []corev1.Taint
		want   string
	}{
		{"a dedicated pool's node, tainted", dedicated, []corev1.Taint{{Key: "d", Value: "checkout", Effect: corev1.TaintEffectNoExecute}}, "pool-checkout"},
		{"a dedicated pool's node, untainted", dedicated, nil, "pool-checkout"},
		{"dedicated without a pool label", map[string]string{fleet.LabelRole: fleet.RoleDedicated}, nil, "cluster"},
		{"an untainted worker", map[string]string{fleet.LabelRole: fleet.RoleWorker, fleet.LabelPool: "w"}, nil, "cluster"},
		{"a PreferNoSchedule taint reserves nothing", nil, []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}}, "cluster"},
		{"a taint Kubernetes sets for a while", nil, []corev1.Taint{{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}}, "cluster"},
		{"a system node", map[string]string{fleet.LabelRole: fleet.RoleSystem, fleet.LabelPool: "system"}, reserved, ""},
		{"a tainted worker", map[string]string{fleet.LabelRole: fleet.RoleWorker, fleet.LabelPool: "gpu"}, reserved, ""},
	} {
		if got := TargetFor(c.labels, c.taints); got != c.want {
			t.Errorf("%s: TargetFor = %q, want %q", c.name, got, c.want)
		}
	}
}

// A fleet's pool gets the target its nodes will get.
func TestPoolTarget(t *testing.T) {
	system := fleet.Taint{Key: "node.bosun.dev/role", Value: "system", Effect: "NoSchedule"}
	for _, c := range []struct {
		pool fleet.NodePool
		want string
	}{
		{fleet.NodePool{Name: "checkout", Role: fleet.RoleDedicated, Taints: []fleet.Taint{{Key: "d", Value: "checkout", Effect: "NoSchedule"}}}, "pool-checkout"},
		{fleet.NodePool{Name: "default", Role: fleet.RoleWorker}, "cluster"},
		{fleet.NodePool{Name: "soft", Role: fleet.RoleWorker, Taints: []fleet.Taint{{Key: "x", Effect: "PreferNoSchedule"}}}, "cluster"},
		{fleet.NodePool{Name: "system", Role: fleet.RoleSystem, Taints: []fleet.Taint{system}}, ""},
	} {
		if got := PoolTarget(&c.pool); got != c.want {
			t.Errorf("pool %s: PoolTarget = %q, want %q", c.pool.Name, got, c.want)
		}
	}
}
