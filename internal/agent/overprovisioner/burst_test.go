package overprovisioner

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// Fixtures for SelectRelease: 4-CPU, 16 GiB nodes; pause pods of 1 CPU.
func burstNode(name, pool string, dedicated bool) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{fleet.LabelPool: pool}}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
	if dedicated {
		n.Labels[fleet.LabelRole] = fleet.RoleDedicated
		n.Spec.Taints = []corev1.Taint{{Key: "node.bosun.dev/dedicated", Value: pool, Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}

func burstPod(name, cpu string, priority int32) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: k8stypes.UID("uid-" + name)}}
	p.Spec.Priority = ptr.To(priority)
	p.Spec.Containers = []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}
	return p
}

// bound is a running pod on node.
func bound(p *corev1.Pod, node string) *corev1.Pod {
	p.Spec.NodeName = node
	p.Status.Phase = corev1.PodRunning
	return p
}

// pause is a running pause pod of target on node.
func pause(name, node, target string) *corev1.Pod {
	p := bound(burstPod(name, "1", Priority), node)
	p.Labels = map[string]string{LabelManaged: target}
	return p
}

// pending is a pod the scheduler could not place.
func pending(p *corev1.Pod) *corev1.Pod {
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
	return p
}

func toleratesPool(p *corev1.Pod, pool string) *corev1.Pod {
	p.Spec.NodeSelector = map[string]string{fleet.LabelPool: pool}
	p.Spec.Tolerations = []corev1.Toleration{{Key: "node.bosun.dev/dedicated", Operator: corev1.TolerationOpEqual, Value: pool, Effect: corev1.TaintEffectNoSchedule}}
	return p
}

func terminating(p *corev1.Pod) *corev1.Pod {
	p.DeletionTimestamp = &metav1.Time{}
	return p
}

func names(pods []*corev1.Pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// L12, L06: SelectRelease deletes exactly the pause pods the pending pods
// need, where those pods may run, and counts room being freed once.
func TestSelectRelease(t *testing.T) {
	full := func(node string) *corev1.Pod { return bound(burstPod("app-"+node, "2", 0), node) } // leaves 2 CPU
	for _, c := range []struct {
		name     string
		nodes    []*corev1.Node
		pods     []*corev1.Pod
		released string // names of the pause pods deleted
		left     string // names of the pods left to the provisioner
	}{
		{
			name:  "nothing pending releases nothing",
			nodes: []*corev1.Node{burstNode("n1", "w", false)},
			pods:  []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster")},
		},
		{
			name:     "one pending pod of 1 CPU takes one pause pod of 1 CPU",
			nodes:    []*corev1.Node{burstNode("n1", "w", false)},
			pods:     []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"), pending(burstPod("hi", "1", 1000))},
			released: "p1",
		},
		{
			name:     "a pod of 1.5 CPU needs two pause pods of 1 CPU on one node",
			nodes:    []*corev1.Node{burstNode("n1", "w", false)},
			pods:     []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"), pending(burstPod("hi", "1500m", 1000))},
			released: "p1,p2",
		},
		{
			name:  "two pods of 500m share the room of one pause pod",
			nodes: []*corev1.Node{burstNode("n1", "w", false)},
			pods: []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"),
				pending(burstPod("hi-a", "500m", 1000)), pending(burstPod("hi-b", "500m", 1000))},
			released: "p1",
		},
		{
			name:  "a pod that fits in room already free releases nothing",
			nodes: []*corev1.Node{burstNode("n1", "w", false), burstNode("n2", "w", false)},
			pods: []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"),
				bound(burstPod("app-n2", "3", 0), "n2"), pending(burstPod("hi", "1", 1000))},
		},
		{
			name:  "room of a pause pod already terminating is counted once, not released again",
			nodes: []*corev1.Node{burstNode("n1", "w", false)},
			pods: []*corev1.Pod{full("n1"), terminating(pause("p1", "n1", "cluster")), pause("p2", "n1", "cluster"),
				pending(burstPod("hi", "1", 1000))},
		},
		{
			name:  "room the scheduler's preemption claimed for a nominated pod is not given to another",
			nodes: []*corev1.Node{burstNode("n1", "w", false)},
			pods: func() []*corev1.Pod {
				nominated := pending(burstPod("hi-nominated", "1", 1000))
				nominated.Status.NominatedNodeName = "n1"
				return []*corev1.Pod{full("n1"), terminating(pause("p1", "n1", "cluster")), pause("p2", "n1", "cluster"),
					nominated, pending(burstPod("hi", "1", 1000))}
			}(),
			released: "p2",
		},
		{
			name:  "a burst larger than the headroom takes all of it and leaves the rest to the provisioner",
			nodes: []*corev1.Node{burstNode("n1", "w", false)},
			pods: []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"),
				pending(burstPod("hi-a", "1", 1000)), pending(burstPod("hi-b", "1", 1000)), pending(burstPod("hi-c", "1", 1000))},
			released: "p1,p2",
			left:     "hi-c",
		},
		{
			name:     "a pod larger than a node with every pause pod gone releases nothing",
			nodes:    []*corev1.Node{burstNode("n1", "w", false)},
			pods:     []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"), pending(burstPod("hi", "3", 1000))},
			left:     "hi",
			released: "",
		},
		{
			name:  "L06: a dedicated pool's pause pods are not removed for a pod that does not tolerate the pool",
			nodes: []*corev1.Node{burstNode("d1", "checkout", true)},
			pods: []*corev1.Pod{bound(toleratesPool(burstPod("app-d1", "2", 0), "checkout"), "d1"),
				pause("p1", "d1", "pool-checkout"), pause("p2", "d1", "pool-checkout"), pending(burstPod("hi", "1", 1000))},
			left: "hi",
		},
		{
			name:  "L06: a dedicated pool's pause pods make room for the pool's own pods",
			nodes: []*corev1.Node{burstNode("d1", "checkout", true), burstNode("n1", "w", false)},
			pods: []*corev1.Pod{bound(toleratesPool(burstPod("app-d1", "2", 0), "checkout"), "d1"),
				pause("p1", "d1", "pool-checkout"), pause("p2", "d1", "pool-checkout"),
				full("n1"), pause("c1", "n1", "cluster"), pause("c2", "n1", "cluster"),
				pending(toleratesPool(burstPod("hi", "1", 1000), "checkout"))},
			released: "p1",
		},
		{
			name:     "a pod the scheduler has not tried yet is released for, ahead of its preemption",
			nodes:    []*corev1.Node{burstNode("n1", "w", false)},
			pods:     []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"), burstPod("new", "1", 1000)},
			released: "p1",
		},
		{
			name:  "a pod the scheduler nominated for a node is its preemption's, not the release's",
			nodes: []*corev1.Node{burstNode("n1", "w", false)},
			pods: func() []*corev1.Pod {
				p := pending(burstPod("hi", "1", 1000))
				p.Status.NominatedNodeName = "n1"
				return []*corev1.Pod{full("n1"), terminating(pause("p1", "n1", "cluster")), pause("p2", "n1", "cluster"), p}
			}(),
		},
		{
			name:  "a pod at the pause pods' priority does not release them",
			nodes: []*corev1.Node{burstNode("n1", "w", false)},
			pods: []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"),
				pending(burstPod("other-pause", "1", Priority))},
		},
		{
			name:  "the node needing the fewest pause pods is chosen",
			nodes: []*corev1.Node{burstNode("n1", "w", false), burstNode("n2", "w", false)},
			pods: []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pause("p2", "n1", "cluster"),
				bound(burstPod("app-n2", "2500m", 0), "n2"), pause("q1", "n2", "cluster"),
				pending(burstPod("hi", "1500m", 1000))},
			released: "q1",
		},
		{
			name: "a cordoned node's pause pods are not released",
			nodes: func() []*corev1.Node {
				n := burstNode("n1", "w", false)
				n.Spec.Unschedulable = true
				return []*corev1.Node{n}
			}(),
			pods: []*corev1.Pod{full("n1"), pause("p1", "n1", "cluster"), pending(burstPod("hi", "1", 1000))},
			left: "hi",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			rel := SelectRelease(c.nodes, c.pods)
			if got := names(rel.PausePods); got != c.released {
				t.Errorf("released %q, want %q", got, c.released)
			}
			if got := names(rel.Left); got != c.left {
				t.Errorf("left to the provisioner %q, want %q", got, c.left)
			}
			for p, node := range rel.Placed {
				if p.Status.NominatedNodeName != "" || p.Spec.NodeName != "" {
					t.Errorf("placed %s, which is not pending: %s", p.Name, fmt.Sprint(node))
				}
			}
		})
	}
}
