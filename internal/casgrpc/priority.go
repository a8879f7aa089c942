package casgrpc

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/provider"
)

// The ConfigMap cluster-autoscaler's priority expander reads, in the
// namespace cluster-autoscaler runs in.
const (
	PriorityExpanderConfigMapName = "cluster-autoscaler-priority-expander"
	PriorityExpanderKey           = "priorities"
)

// PriorityExpanderPriorities renders the priority expander's configuration
// for the groups: every group's Priority (from its fleet node pool) with a
// regular expression matching exactly its ID. Higher priorities win in
// both Bosun and cluster-autoscaler, so cluster-autoscaler tries the groups
// in the order Bosun's own fallback does (spot first, on-demand after).
func PriorityExpanderPriorities(groups []provider.NodeGroup) string {
	byPrio := map[int][]string{}
	for _, g := range groups {
		byPrio[g.Priority] = append(byPrio[g.Priority], "^"+regexp.QuoteMeta(g.ID)+"$")
	}
	prios := make([]int, 0, len(byPrio))
	for p := range byPrio {
		prios = append(prios, p)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(prios)))
	var b strings.Builder
	for _, p := range prios {
		res := byPrio[p]
		sort.Strings(res)
		fmt.Fprintf(&b, "%d:\n", p)
		for _, re := range res {
			fmt.Fprintf(&b, "  - '%s'\n", strings.ReplaceAll(re, "'", "''"))
		}
	}
	return b.String()
}

// PriorityExpanderConfigMap returns the priority expander's ConfigMap for
// the groups, in namespace (cluster-autoscaler's own, kube-system usually).
func PriorityExpanderConfigMap(namespace string, groups []provider.NodeGroup) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: PriorityExpanderConfigMapName, Namespace: namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "bosun"},
		},
		Data: map[string]string{PriorityExpanderKey: PriorityExpanderPriorities(groups)},
	}
}
