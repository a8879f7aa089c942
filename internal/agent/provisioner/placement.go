package provisioner

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// fits reports whether the pod may be placed on the node template, apart
// from resources: required node affinity and nodeSelector (which cover
// zone constraints) and NoSchedule/NoExecute taints. It uses the
// scheduler's own helpers so Bosun and kube-scheduler agree.
func fits(pod *corev1.Pod, node *corev1.Node) bool { return newFitter(pod).fits(node) }

// fitter is fits for one pod against many nodes: the pod's nodeSelector
// and required node affinity are parsed once, not once per node (a pass
// that tries thousands of pending pods on a thousand nodes otherwise
// allocates gigabytes of label selectors).
type fitter struct {
	pod      *corev1.Pod
	affinity nodeaffinity.RequiredNodeAffinity
}

func newFitter(pod *corev1.Pod) fitter {
	return fitter{pod: pod, affinity: nodeaffinity.GetRequiredNodeAffinity(pod)}
}

// fits is fits(f.pod, node); it allocates nothing for a pod without
// required node affinity terms.
func (f fitter) fits(node *corev1.Node) bool {
	ok, err := f.affinity.Match(node)
	if err != nil || !ok {
		return false
	}
	return tolerates(f.pod, node.Spec.Taints)
}

// tolerates reports whether the pod tolerates the NoSchedule and NoExecute
// taints among these, as the scheduler's TaintToleration filter does
// (corev1helpers.FindMatchingUntoleratedTaint, without its copy of the
// filtered taints).
func tolerates(pod *corev1.Pod, taints []corev1.Taint) bool {
	for i := range taints {
		t := &taints[i]
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) &&
			!corev1helpers.TolerationsTolerateTaint(pod.Spec.Tolerations, t) {
			return false
		}
	}
	return true
}

// requests is what a pod asks for: CPU (millicores), memory (bytes) and
// one pod slot, as the scheduler counts it (init containers, overhead).
type requests struct {
	cpu, mem, pods int64
}

// podRequests is resourcehelper.PodRequests's CPU and memory. Passes call
// it for every pod on every node, so the common pod (no init containers,
// overhead or pod-level resources) is summed here without the maps
// PodRequests builds; the sum is the same (Quantity.Add, as PodRequests
// adds them).
func podRequests(pod *corev1.Pod) requests {
	if len(pod.Spec.InitContainers) > 0 || pod.Spec.Overhead != nil || pod.Spec.Resources != nil {
		rl := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
		return requests{cpu: milli(rl, corev1.ResourceCPU), mem: value(rl, corev1.ResourceMemory), pods: 1}
	}
	var cpu, mem resource.Quantity
	for i := range pod.Spec.Containers {
		rl := pod.Spec.Containers[i].Resources.Requests
		if q, ok := rl[corev1.ResourceCPU]; ok {
			cpu.Add(q)
		}
		if q, ok := rl[corev1.ResourceMemory]; ok {
			mem.Add(q)
		}
	}
	return requests{cpu: cpu.MilliValue(), mem: mem.Value(), pods: 1}
}

func milli(rl corev1.ResourceList, name corev1.ResourceName) int64 {
	if q, ok := rl[name]; ok {
		return q.MilliValue()
	}
	return 0
}

func value(rl corev1.ResourceList, name corev1.ResourceName) int64 {
	if q, ok := rl[name]; ok {
		return q.Value()
	}
	return 0
}

func (r requests) add(o requests) requests {
	return requests{cpu: r.cpu + o.cpu, mem: r.mem + o.mem, pods: r.pods + o.pods}
}

func (r requests) within(free requests) bool {
	return r.cpu <= free.cpu && r.mem <= free.mem && r.pods <= free.pods
}

func (r requests) minus(o requests) requests {
	return requests{cpu: r.cpu - o.cpu, mem: r.mem - o.mem, pods: r.pods - o.pods}
}

// allocatable is what a template node offers the scheduler.
func allocatable(node *corev1.Node) requests {
	a := node.Status.Allocatable
	pods := resource.NewQuantity(110, resource.DecimalSI)
	if q, ok := a[corev1.ResourcePods]; ok {
		pods = &q
	}
	return requests{cpu: milli(a, corev1.ResourceCPU), mem: value(a, corev1.ResourceMemory), pods: pods.Value()}
}

// daemonOverhead sums the requests of the DaemonSets whose pods would run
// on the node: every new node pays them before any pending pod.
func daemonOverhead(node *corev1.Node, daemonSets []*corev1.PodTemplateSpec) requests {
	var total requests
	for _, t := range daemonSets {
		pod := &corev1.Pod{Spec: t.Spec}
		if fits(pod, node) {
			total = total.add(podRequests(pod))
		}
	}
	return total
}

// binPack places pods, largest first, on as few new nodes of the template
// as possible (first fit), using at most maxNodes. It returns how many
// nodes it needs, which pods it placed, and the fraction of the nodes'
// CPU and memory left unused (the waste).
func binPack(pods []*corev1.Pod, node *corev1.Node, overhead requests, maxNodes int) (nodes int, placed []*corev1.Pod, waste float64) {
	capacity := allocatable(node).minus(overhead)
	if capacity.cpu <= 0 || capacity.mem <= 0 || capacity.pods <= 0 || maxNodes <= 0 {
		return 0, nil, 0
	}
	var free []requests
	for _, p := range pods {
		if !newFitter(p).fits(node) {
			continue
		}
		r := podRequests(p)
		if !r.within(capacity) {
			continue
		}
		done := false
		for i := range free {
			if r.within(free[i]) {
				free[i] = free[i].minus(r)
				done = true
				break
			}
		}
		if !done {
			if len(free) == maxNodes {
				continue
			}
			free = append(free, capacity.minus(r))
		}
		placed = append(placed, p)
	}
	if len(free) == 0 {
		return 0, nil, 0
	}
	var unusedCPU, unusedMem float64
	for _, f := range free {
		unusedCPU += float64(f.cpu) / float64(capacity.cpu)
		unusedMem += float64(f.mem) / float64(capacity.mem)
	}
	n := float64(len(free))
	return len(free), placed, (unusedCPU + unusedMem) / (2 * n)
}

// Fits is fits for the overprovisioner's burst release, so both decide
// where a pod may run the same way (L12): required node affinity,
// nodeSelector and NoSchedule/NoExecute taints, not resources.
func Fits(pod *corev1.Pod, node *corev1.Node) bool { return fits(pod, node) }

// Requests is what the pod asks the scheduler for, as placement counts
// it: CPU in millicores and memory in bytes (init containers, overhead).
func Requests(pod *corev1.Pod) (cpu, mem int64) {
	r := podRequests(pod)
	return r.cpu, r.mem
}

// Allocatable is what the node offers the scheduler: CPU in millicores,
// memory in bytes and pod slots (110 when the node does not say).
func Allocatable(node *corev1.Node) (cpu, mem, pods int64) {
	a := allocatable(node)
	return a.cpu, a.mem, a.pods
}
