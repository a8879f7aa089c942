// Package placement decides where a pod may run as kube-scheduler's
// filters would (resources with init containers and overhead, nodeSelector
// and required node affinity, taints) and packs pods on template nodes.
// The provisioner, the scale-down, the reaper and the overprovisioner's
// burst release share it, so they agree on where a pod fits.
package placement

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// AnnotationSafeToEvict is cluster-autoscaler's per-pod override: "false"
// keeps the pod's node, "true" lets a pod with local storage (or in
// kube-system without a PDB) move.
const AnnotationSafeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict"

// Fits reports whether the pod may be placed on the node template, apart
// from resources: required node affinity and nodeSelector (which cover
// zone constraints) and NoSchedule/NoExecute taints. It uses the
// scheduler's own helpers so Bosun and kube-scheduler agree.
func Fits(pod *corev1.Pod, node *corev1.Node) bool { return NewFitter(pod).Fits(node) }

// Fitter is fits for one pod against many nodes: the pod's nodeSelector
// and required node affinity are parsed once, not once per node (a pass
// that tries thousands of pending pods on a thousand nodes otherwise
// allocates gigabytes of label selectors).
type Fitter struct {
	pod      *corev1.Pod
	affinity nodeaffinity.RequiredNodeAffinity
}

// NewFitter parses the pod's required node affinity once.
func NewFitter(pod *corev1.Pod) Fitter {
	return Fitter{pod: pod, affinity: nodeaffinity.GetRequiredNodeAffinity(pod)}
}

// Fits is Fits(f.pod, node); it allocates nothing for a pod without
// required node affinity terms.
func (f Fitter) Fits(node *corev1.Node) bool {
	ok, err := f.affinity.Match(node)
	if err != nil || !ok {
		return false
	}
	return Tolerates(f.pod, node.Spec.Taints)
}

// Tolerates reports whether the pod Tolerates the NoSchedule and NoExecute
// taints among these, as the scheduler's TaintToleration filter does
// (corev1helpers.FindMatchingUntoleratedTaint, without its copy of the
// filtered taints).
func Tolerates(pod *corev1.Pod, taints []corev1.Taint) bool {
	for i := range taints {
		t := &taints[i]
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) &&
			!corev1helpers.TolerationsTolerateTaint(pod.Spec.Tolerations, t) {
			return false
		}
	}
	return true
}

// Resources is what a pod asks for: CPU (millicores), memory (bytes) and
// one pod slot, as the scheduler counts it (init containers, overhead).
type Resources struct {
	CPU, Mem, Pods int64
}

// PodRequests is resourcehelper.PodRequests's CPU and memory. Passes call
// it for every pod on every node, so the common pod (no init containers,
// overhead or pod-level resources) is summed here without the maps
// PodRequests builds; the sum is the same (Quantity.Add, as PodRequests
// adds them).
func PodRequests(pod *corev1.Pod) Resources {
	if len(pod.Spec.InitContainers) > 0 || pod.Spec.Overhead != nil || pod.Spec.Resources != nil {
		rl := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
		return Resources{CPU: milli(rl, corev1.ResourceCPU), Mem: value(rl, corev1.ResourceMemory), Pods: 1}
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
	return Resources{CPU: cpu.MilliValue(), Mem: mem.Value(), Pods: 1}
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

// Add returns r plus o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPU: r.CPU + o.CPU, Mem: r.Mem + o.Mem, Pods: r.Pods + o.Pods}
}

// Within reports whether r fits in free.
func (r Resources) Within(free Resources) bool {
	return r.CPU <= free.CPU && r.Mem <= free.Mem && r.Pods <= free.Pods
}

// Minus returns r less o.
func (r Resources) Minus(o Resources) Resources {
	return Resources{CPU: r.CPU - o.CPU, Mem: r.Mem - o.Mem, Pods: r.Pods - o.Pods}
}

// NodeAllocatable is what a template node offers the scheduler.
func NodeAllocatable(node *corev1.Node) Resources {
	a := node.Status.Allocatable
	pods := resource.NewQuantity(110, resource.DecimalSI)
	if q, ok := a[corev1.ResourcePods]; ok {
		pods = &q
	}
	return Resources{CPU: milli(a, corev1.ResourceCPU), Mem: value(a, corev1.ResourceMemory), Pods: pods.Value()}
}

// DaemonOverhead sums the requests of the DaemonSets whose pods would run
// on the node: every new node pays them before any pending pod.
func DaemonOverhead(node *corev1.Node, daemonSets []*corev1.PodTemplateSpec) Resources {
	var total Resources
	for _, t := range daemonSets {
		pod := &corev1.Pod{Spec: t.Spec}
		if Fits(pod, node) {
			total = total.Add(PodRequests(pod))
		}
	}
	return total
}

// BinPack places pods, largest first, on as few new nodes of the template
// as possible (first fit), using at most maxNodes. It returns how many
// nodes it needs, which pods it placed, and the fraction of the nodes'
// CPU and memory left unused (the waste).
func BinPack(pods []*corev1.Pod, node *corev1.Node, overhead Resources, maxNodes int) (nodes int, placed []*corev1.Pod, waste float64) {
	capacity := NodeAllocatable(node).Minus(overhead)
	if capacity.CPU <= 0 || capacity.Mem <= 0 || capacity.Pods <= 0 || maxNodes <= 0 {
		return 0, nil, 0
	}
	var free []Resources
	for _, p := range pods {
		if !NewFitter(p).Fits(node) {
			continue
		}
		r := PodRequests(p)
		if !r.Within(capacity) {
			continue
		}
		done := false
		for i := range free {
			if r.Within(free[i]) {
				free[i] = free[i].Minus(r)
				done = true
				break
			}
		}
		if !done {
			if len(free) == maxNodes {
				continue
			}
			free = append(free, capacity.Minus(r))
		}
		placed = append(placed, p)
	}
	if len(free) == 0 {
		return 0, nil, 0
	}
	var unusedCPU, unusedMem float64
	for _, f := range free {
		unusedCPU += float64(f.CPU) / float64(capacity.CPU)
		unusedMem += float64(f.Mem) / float64(capacity.Mem)
	}
	n := float64(len(free))
	return len(free), placed, (unusedCPU + unusedMem) / (2 * n)
}

// Requests is what the pod asks the scheduler for, as placement counts
// it: CPU in millicores and memory in bytes (init containers, overhead).
func Requests(pod *corev1.Pod) (cpu, mem int64) {
	r := PodRequests(pod)
	return r.CPU, r.Mem
}

// Allocatable is what the node offers the scheduler: CPU in millicores,
// memory in bytes and pod slots (110 when the node does not say).
func Allocatable(node *corev1.Node) (CPU, Mem, Pods int64) {
	a := NodeAllocatable(node)
	return a.CPU, a.Mem, a.Pods
}
