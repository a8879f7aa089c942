package overprovisioner

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
	"github.com/bosun-platform/bosun/internal/fleet"
)

// The controller reads the agent's shared, trimmed caches: sizing and
// targets come out the same from trimmed pods and nodes as from the API's
// (provisioner's TestCacheTransformKeepsWhatControllersRead does the same
// for the capacity controllers).
func TestSizingFromTrimmedCaches(t *testing.T) {
	node := func(name string, mutate ...func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{fleet.LabelRole: "worker", fleet.LabelPool: "general"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3920m"), corev1.ResourceMemory: resource.MustParse("14Gi")},
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")},
				Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				Images:      []corev1.ContainerImage{{Names: []string{"app:1"}}},
			},
		}
		for _, m := range mutate {
			m(n)
		}
		return n
	}
	nodes := []*corev1.Node{
		node("a"), node("b"),
		node("gpu", func(n *corev1.Node) {
			n.Labels[fleet.LabelRole], n.Labels[fleet.LabelPool] = fleet.RoleDedicated, "gpu"
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
		}),
		node("system", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "CriticalAddonsOnly", Effect: corev1.TaintEffectNoExecute}}
		}),
		node("cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
	}
	pod := func(i int, node, cpu, mem string, mutate ...func(*corev1.Pod)) *corev1.Pod {
		req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("p", i), Namespace: "shop", Labels: map[string]string{"app": "web"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{
				{Name: "app", Image: "app:1", Resources: corev1.ResourceRequirements{Requests: req, Limits: req}},
				{Name: "log", Image: "log:1", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}},
			}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true}}},
		}
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	pods := []*corev1.Pod{
		pod(1, "a", "500m", "1Gi"),
		pod(2, "b", "1500m", "512Mi"),
		pod(3, "gpu", "3", "8Gi"),
		pod(4, "a", "3", "12Gi", func(p *corev1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" }),
		pod(5, "b", "3", "12Gi", func(p *corev1.Pod) { p.Labels[LabelManaged] = "cluster" }),
		pod(6, "a", "3500m", "13Gi", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
		pod(7, "", "3900m", "14Gi", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
	}
	cachedNodes := make([]*corev1.Node, len(nodes))
	for i, n := range nodes {
		obj, err := agentcache.CacheTransform(n.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		cachedNodes[i] = obj.(*corev1.Node)
	}
	cachedPods := make([]*corev1.Pod, len(pods))
	for i, p := range pods {
		obj, err := agentcache.CacheTransform(p.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		cachedPods[i] = obj.(*corev1.Pod)
	}
	type sized struct {
		name, cpu, mem string
		cores          int64
		taints         []corev1.Taint
		selector       map[string]string
	}
	size := func(nodes []*corev1.Node, pods []*corev1.Pod) []sized {
		var out []sized
		for _, include := range []bool{false, true} {
			for _, t := range targetsOf(nodes, include) {
				cpu, mem := podSize(t, pods)
				var cores int64
				for _, n := range t.nodes {
					cores += n.Status.Allocatable.Cpu().MilliValue()
				}
				out = append(out, sized{t.name, cpu.String(), mem.String(), cores, t.taints, t.selector})
			}
		}
		return out
	}
	got, want := size(cachedNodes, cachedPods), size(nodes, pods)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("from the caches: %+v\nfrom the API: %+v", got, want)
	}
	if len(want) != 4 || want[0].cpu != "1661m" || want[1].cpu != "3311m" || want[2].cores != 11760 {
		t.Errorf("unexpected fixture result %+v", want)
	}
}
