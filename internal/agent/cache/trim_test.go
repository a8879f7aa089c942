package cache_test

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/utils/ptr"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
)

// apiPod is a pod as the API server returns it once admitted, scheduled
// and running (kwok's status): defaulted fields, the service account
// token volume, default tolerations, five conditions, container status.
func apiPod(i int, mutate ...func(*corev1.Pod)) *corev1.Pod {
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
	at := metav1.NewTime(time.Date(2026, 11, 22, 4, 29, 0, 0, time.UTC))
	cond := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: at}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("web-7d9f8b6c5-%05d", i), GenerateName: "web-7d9f8b6c5-", Namespace: "bench",
			UID: types.UID(fmt.Sprintf("c40710f9-caa5-408d-8a58-%012d", i)), ResourceVersion: fmt.Sprint(3603 + i), Generation: 1,
			CreationTimestamp: at, Labels: map[string]string{"app": "web", "pod-template-hash": "7d9f8b6c5"},
			Annotations:     map[string]string{corev1.LastAppliedConfigAnnotation: `{"apiVersion":"v1","kind":"Pod"}`, "prometheus.io/scrape": "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8b6c5", UID: "0d1f3b6a-0000-4000-8000-000000000001", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &at}},
		},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "kube-api-access-gqp2t", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr.To[int32](420),
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
				},
			}}}},
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/pause:3.10", ImagePullPolicy: corev1.PullIfNotPresent,
				Env:                      []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
				Ports:                    []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Resources:                corev1.ResourceRequirements{Requests: req, Limits: req.DeepCopy()},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				VolumeMounts:             []corev1.VolumeMount{{Name: "kube-api-access-gqp2t", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
			}},
			RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: ptr.To[int64](30), DNSPolicy: corev1.DNSClusterFirst,
			ServiceAccountName: "default", DeprecatedServiceAccount: "default", NodeName: fmt.Sprintf("base-a-i-%08x", i%1000),
			NodeSelector:    map[string]string{"bench.bosun.dev/tier": "base"},
			SecurityContext: &corev1.PodSecurityContext{}, SchedulerName: "default-scheduler",
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			Priority: ptr.To[int32](0), EnableServiceLinks: ptr.To(true), PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority),
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{cond(corev1.PodInitialized), cond(corev1.PodReady), cond(corev1.ContainersReady),
				cond(corev1.PodReadyToStartContainers), cond(corev1.PodScheduled)},
			HostIP: "10.0.0.1", HostIPs: []corev1.HostIP{{IP: "10.0.0.1"}}, PodIP: "10.244.0.3", PodIPs: []corev1.PodIP{{IP: "10.244.0.3"}},
			StartTime: &at, QOSClass: corev1.PodQOSGuaranteed,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "registry.k8s.io/pause:3.10", Ready: true, Started: ptr.To(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// pending makes the pod one the scheduler could not place.
func pending(p *corev1.Pod) {
	p.Spec.NodeName = ""
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSGuaranteed, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message:            "0/1000 nodes are available: 1000 node(s) didn't match Pod's node affinity/selector. preemption: 0/1000 nodes are available",
		LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 22, 4, 30, 1, 0, time.UTC)),
	}}}
}

// readerPods are pods with every field some controller reads, set or not.
func readerPods() []*corev1.Pod {
	vol := func(name string, src corev1.VolumeSource) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: src})
		}
	}
	annotate := func(k, v string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Annotations[k] = v } }
	q := resource.MustParse
	return []*corev1.Pod{
		apiPod(0),
		apiPod(1, pending),
		apiPod(2, pending, func(p *corev1.Pod) { p.Status.NominatedNodeName = "base-a-i-00000001" }),
		apiPod(3, pending, func(p *corev1.Pod) { p.Status.Conditions = nil }), // not tried by the scheduler yet
		apiPod(4, pending, func(p *corev1.Pod) {
			p.Status.Conditions[0].Status, p.Status.Conditions[0].Reason = corev1.ConditionFalse, "SchedulerError"
		}),
		apiPod(5, vol("scratch", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}})),
		apiPod(6, vol("host", corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}})),
		apiPod(7, vol("data", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-7"}})),
		apiPod(8, vol("cfg", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}})),
		apiPod(9, annotate(placement.AnnotationSafeToEvict, "false")),
		apiPod(10, annotate(placement.AnnotationSafeToEvict, "true"), vol("scratch", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}})),
		apiPod(11, annotate(corev1.MirrorPodAnnotationKey, "abc")),
		apiPod(12, func(p *corev1.Pod) { p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = "DaemonSet", "agent" }),
		apiPod(13, func(p *corev1.Pod) { p.OwnerReferences = nil }),
		apiPod(14, func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil }),
		apiPod(15, func(p *corev1.Pod) {
			p.Namespace = metav1.NamespaceSystem
			p.Labels = map[string]string{"k8s-app": "kube-dns"}
		}),
		apiPod(16, func(p *corev1.Pod) {
			p.Namespace = metav1.NamespaceSystem
			p.Labels = map[string]string{"k8s-app": "metrics"}
		}),
		apiPod(17, func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }),
		apiPod(18, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		apiPod(19, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
		apiPod(20, pending, func(p *corev1.Pod) {
			p.Spec.Priority, p.Spec.PriorityClassName = ptr.To[int32](-10), "overprovisioning"
		}),
		apiPod(21, func(p *corev1.Pod) { p.Labels["overprovisioning.bosun.dev/target"] = "cluster" }),
		apiPod(22, pending, func(p *corev1.Pod) { // init containers, a sidecar, overhead
			p.Spec.InitContainers = []corev1.Container{
				{Name: "init", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("64Mi")}}},
				{Name: "proxy", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("250m"), corev1.ResourceMemory: q("1Gi")}}},
			}
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: q("50m")}
		}),
		apiPod(23, pending, func(p *corev1.Pod) { // pod-level resources
			p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("3"), corev1.ResourceMemory: q("3Gi")}}
		}),
		apiPod(24, pending, func(p *corev1.Pod) { // several containers, odd quantities
			c := p.Spec.Containers[0]
			c.Name, c.Resources.Requests = "sidecar", corev1.ResourceList{corev1.ResourceCPU: q("500u"), corev1.ResourceMemory: q("1.5")}
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: q("500u"), corev1.ResourceMemory: q("100M")}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}),
		apiPod(25, pending, func(p *corev1.Pod) { // required and preferred node affinity, pod anti-affinity
			p.Spec.NodeSelector = nil
			p.Spec.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
						{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"local-b"}}}},
						{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"growth-a-i-00000001"}}}},
					}},
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "node.bosun.dev/lifecycle", Operator: corev1.NodeSelectorOpIn, Values: []string{"spot"}}}}}},
				},
				PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					TopologyKey: "kubernetes.io/hostname", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}},
			}
		}),
		apiPod(26, pending, func(p *corev1.Pod) { // tolerates the dedicated pool
			p.Spec.NodeSelector = map[string]string{"node.bosun.dev/pool": "gpu"}
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule})
		}),
		apiPod(27, pending, func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"node.bosun.dev/pool": "gpu"} }),
		apiPod(28, disrupted(corev1.PodReasonPreemptionByScheduler), func(p *corev1.Pod) { p.Labels["overprovisioning.bosun.dev/target"] = "cluster" }),
		apiPod(29, disrupted("EvictionByEvictionAPI"), func(p *corev1.Pod) { p.Labels["overprovisioning.bosun.dev/target"] = "cluster" }),
		apiPod(30, pending, disrupted("DeletionByPodGC")),
	}
}

// disrupted gives the pod the DisruptionTarget condition the API server
// (eviction), the scheduler (preemption) or the pod GC sets before it goes.
func disrupted(reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: reason, Message: "going", LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 22, 4, 30, 2, 0, time.UTC))})
	}
}

// readerNodes are nodes with every field a controller reads.
func readerNodes() []*corev1.Node {
	node := func(name string, mutate ...func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "7",
				Labels:        map[string]string{"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "local-b", "bench.bosun.dev/tier": "base", "node.bosun.dev/application-group": "scale", "node.bosun.dev/role": "worker", "node.bosun.dev/pool": "base-a"},
				Annotations:   map[string]string{"node.alpha.kubernetes.io/ttl": "60", corev1.LastAppliedConfigAnnotation: "{}"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
			Spec: corev1.NodeSpec{ProviderID: "local:///local-b/" + name, PodCIDR: "10.244.0.0/24"},
			Status: corev1.NodeStatus{
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3920m"), corev1.ResourceMemory: resource.MustParse("14819Mi"), corev1.ResourcePods: resource.MustParse("110")},
				Conditions: []corev1.NodeCondition{
					{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
					{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
				},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
				Images:    []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 320000}},
				NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.33.4", OSImage: "bosun-local"},
			},
		}
		for _, m := range mutate {
			m(n)
		}
		return n
	}
	return []*corev1.Node{
		node("base-a-i-00000001"),
		node("growth-a-i-00000001", func(n *corev1.Node) { n.Labels["bench.bosun.dev/tier"] = "growth" }),
		node("base-a-i-00000002", func(n *corev1.Node) { n.Labels["topology.kubernetes.io/zone"] = "local-a" }),
		node("not-ready", func(n *corev1.Node) { n.Status.Conditions[1].Status = corev1.ConditionFalse }),
		node("no-conditions", func(n *corev1.Node) { n.Status.Conditions = nil }),
		node("cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
		node("draining", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: capacity.TaintScaleDown, Value: "1763785740", Effect: corev1.TaintEffectNoSchedule}}
		}),
		node("reaping", func(n *corev1.Node) {
			n.Annotations[capacity.AnnotationReapStarted], n.Annotations[capacity.AnnotationReapSpotGroup] = "2026-11-22T04:30:00Z", "bench/base-b"
		}),
		node("gpu", func(n *corev1.Node) {
			n.Labels["node.bosun.dev/pool"], n.Labels["node.bosun.dev/role"] = "gpu", "dedicated"
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}, {Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}}
		}),
		node("deleted", func(n *corev1.Node) { now := metav1.Now(); n.DeletionTimestamp = &now }),
	}
}

func readerPDBs() []*policyv1.PodDisruptionBudget {
	return []*policyv1.PodDisruptionBudget{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "bench", UID: "pdb-1"},
			Spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(5)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}},
		{ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: metav1.NamespaceSystem, UID: "pdb-2"},
			Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}}}},
	}
}

// podReaders are everything the capacity controllers read of a pod (the
// overprovisioner's and the janitor's readers are checked in their
// packages): each must read the same from a trimmed pod as from the
// API's. A controller that starts reading another field adds its reader
// here, and the test tells whether CacheTransform keeps it.
var podReaders = map[string]func(p *corev1.Pod, nodes []*corev1.Node) any{
	"identity (events, requested, settle)": func(p *corev1.Pod, _ []*corev1.Node) any {
		return []string{p.Namespace, p.Name, string(p.UID), p.ResourceVersion, p.Spec.NodeName, p.Status.NominatedNodeName}
	},
	"deleting":      func(p *corev1.Pod, _ []*corev1.Node) any { return p.DeletionTimestamp != nil },
	"podRequests":   func(p *corev1.Pod, _ []*corev1.Node) any { return placement.PodRequests(p) },
	"priority":      func(p *corev1.Pod, _ []*corev1.Node) any { return corev1helpers.PodPriority(p) },
	"unschedulable": func(p *corev1.Pod, _ []*corev1.Node) any { return len(provisioner.UnschedulablePods([]*corev1.Pod{p})) },
	"pending since (record)": func(p *corev1.Pod, _ []*corev1.Node) any {
		if p.Spec.NodeName != "" {
			return nil
		}
		var out []any
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				out = append(out, c.Status, c.Reason, c.LastTransitionTime.Time)
			}
		}
		return out
	},
	"displaced (provisioner)": func(p *corev1.Pod, _ []*corev1.Node) any { return provisioner.Displaced(p) },
	"terminal":                func(p *corev1.Pod, _ []*corev1.Node) any { return capacity.Terminal(p) },
	"daemonSetPod":            func(p *corev1.Pod, _ []*corev1.Node) any { return capacity.DaemonSetPod(p) },
	"mirrorPod":               func(p *corev1.Pod, _ []*corev1.Node) any { return capacity.MirrorPod(p) },
	"movable":                 func(p *corev1.Pod, _ []*corev1.Node) any { return len(capacity.Movable([]*corev1.Pod{p})) },
	"phase":                   func(p *corev1.Pod, _ []*corev1.Node) any { return p.Status.Phase },
	"labels (PDBs)":           func(p *corev1.Pod, _ []*corev1.Node) any { return p.Labels },
	"blocker": func(p *corev1.Pod, _ []*corev1.Node) any {
		return []string{capacity.EvictionRules{}.Blocker(p, readerPDBs()), capacity.EvictionRules{EvictKubeSystemWithoutPDB: true}.Blocker(p, readerPDBs())}
	},
	"matchingPDBs": func(p *corev1.Pod, _ []*corev1.Node) any {
		var names []string
		for _, pdb := range capacity.MatchingPDBs(p, readerPDBs()) {
			names = append(names, pdb.Name)
		}
		return names
	},
	"fits": func(p *corev1.Pod, nodes []*corev1.Node) any {
		var out []bool
		for _, n := range nodes {
			out = append(out, placement.Fits(p, n))
		}
		return out
	},
	"utilization": func(p *corev1.Pod, nodes []*corev1.Node) any {
		var out []float64
		for _, n := range nodes {
			out = append(out, capacity.Utilization(n, []*corev1.Pod{p}))
		}
		return out
	},
}

// nodeReaders are everything the capacity controllers read of a node.
var nodeReaders = map[string]func(n *corev1.Node) any{
	"identity": func(n *corev1.Node) any { return []string{n.Name, string(n.UID), n.ResourceVersion, n.Spec.ProviderID} },
	"labels":   func(n *corev1.Node) any { return n.Labels },
	"annotations": func(n *corev1.Node) any {
		return []string{n.Annotations[capacity.AnnotationReapStarted], n.Annotations[capacity.AnnotationReapSpotGroup]}
	},
	"ready":       func(n *corev1.Node) any { return capacity.NodeReady(n) },
	"busy":        func(n *corev1.Node) any { return capacity.Busy(n) },
	"allocatable": func(n *corev1.Node) any { return placement.NodeAllocatable(n) },
	"taints":      func(n *corev1.Node) any { return n.Spec.Taints },
	"cpu":         func(n *corev1.Node) any { return n.Status.Allocatable.Cpu().MilliValue() },
}

func trimmed[T any](t *testing.T, obj T) T {
	t.Helper()
	out, err := agentcache.CacheTransform(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out.(T)
}

// Every reader reads the same from a cached (trimmed) pod or node as from
// the API's: this fails when CacheTransform trims a field a controller
// reads.
func TestCacheTransformKeepsWhatControllersRead(t *testing.T) {
	full := readerNodes()
	var nodes []*corev1.Node
	for _, n := range full {
		nodes = append(nodes, trimmed(t, n.DeepCopy()))
	}
	for name, read := range nodeReaders {
		for i, n := range full {
			if got, want := read(nodes[i]), read(n); !reflect.DeepEqual(got, want) {
				t.Errorf("%s of node %s: cached %v, API %v", name, n.Name, got, want)
			}
		}
	}
	for _, p := range readerPods() {
		c := trimmed(t, p.DeepCopy())
		for name, read := range podReaders {
			// The cached pod against cached nodes, as the controllers see them.
			if got, want := read(c, nodes), read(p, full); !reflect.DeepEqual(got, want) {
				t.Errorf("%s of pod %s: cached %v, API %v", name, p.Name, got, want)
			}
		}
		if again := trimmed(t, c.DeepCopy()); !reflect.DeepEqual(again, c) {
			t.Errorf("pod %s: trimming a trimmed pod changed it:\n%+v\n%+v", p.Name, again, c)
		}
	}
}

// What no controller reads is gone.
func TestCacheTransformTrims(t *testing.T) {
	p := trimmed(t, apiPod(1))
	c := p.Spec.Containers[0]
	if p.ManagedFields != nil || p.Annotations != nil || p.GenerateName != "" || p.Spec.Volumes != nil ||
		c.Image != "" || c.Env != nil || c.Ports != nil || c.VolumeMounts != nil || c.Resources.Limits != nil ||
		p.Status.ContainerStatuses != nil || p.Status.Conditions != nil || p.Status.PodIP != "" || p.Spec.SchedulerName != "" {
		t.Errorf("not trimmed: %+v", p)
	}
	pend := trimmed(t, apiPod(2, pending))
	if cs := pend.Status.Conditions; len(cs) != 1 || cs[0].Message != "" {
		t.Errorf("a pending pod keeps only its PodScheduled condition, without the message: %+v", cs)
	}
	n := trimmed(t, readerNodes()[0])
	if n.ManagedFields != nil || n.Annotations[corev1.LastAppliedConfigAnnotation] != "" || n.Status.Images != nil || n.Status.Capacity != nil ||
		n.Status.Addresses != nil || n.Status.NodeInfo.KubeletVersion != "" || len(n.Status.Conditions) != 1 {
		t.Errorf("node not trimmed: %+v", n)
	}
}

// Pods of one workload share their labels, node selector, requests,
// tolerations, owners and containers.
func TestCacheTransformShares(t *testing.T) {
	a, b := trimmed(t, apiPod(1)), trimmed(t, apiPod(2))
	same := func(what string, x, y any) {
		if reflect.ValueOf(x).UnsafePointer() != reflect.ValueOf(y).UnsafePointer() {
			t.Errorf("%s not shared", what)
		}
	}
	same("labels", a.Labels, b.Labels)
	same("node selector", a.Spec.NodeSelector, b.Spec.NodeSelector)
	same("tolerations", a.Spec.Tolerations, b.Spec.Tolerations)
	same("owners", a.OwnerReferences, b.OwnerReferences)
	same("containers", a.Spec.Containers, b.Spec.Containers)
	same("requests", a.Spec.Containers[0].Resources.Requests, b.Spec.Containers[0].Resources.Requests)
	same("priority", a.Spec.Priority, b.Spec.Priority)
	if unsafe.StringData(a.Namespace) != unsafe.StringData(b.Namespace) {
		t.Error("namespace not shared")
	}
	other := trimmed(t, apiPod(3, func(p *corev1.Pod) { p.Labels["app"] = "api" }))
	if other.Labels["app"] != "api" || a.Labels["app"] != "web" {
		t.Errorf("different labels mixed up: %v, %v", other.Labels, a.Labels)
	}
	big := trimmed(t, apiPod(4, func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("129Mi")}
	}))
	if big.Spec.Containers[0].Resources.Requests.Memory().String() != "129Mi" {
		t.Errorf("different requests mixed up: %v", big.Spec.Containers[0].Resources.Requests)
	}
}

// footprint is the heap n pods hold, decoded from protobuf as the watch
// decodes them, kept as keep returns them.
func footprint(n int, keep func(*corev1.Pod) any) float64 {
	data := make([][]byte, n)
	for i := range data {
		data[i], _ = apiPod(i).Marshal()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := make([]any, n)
	for i := range kept {
		p := &corev1.Pod{}
		if err := p.Unmarshal(data[i]); err != nil {
			panic(err)
		}
		kept[i] = keep(p)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	runtime.KeepAlive(data)
	// less the slice of interfaces that holds them
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc) - float64(n*16)) / float64(n)
}

// A cached pod costs a fraction of the API's.
func TestCacheTransformFootprint(t *testing.T) {
	full := footprint(5000, func(p *corev1.Pod) any { return p })
	cached := footprint(5000, func(p *corev1.Pod) any { out, _ := agentcache.CacheTransform(p); return out })
	t.Logf("bytes per pod: API %.0f, cached %.0f", full, cached)
	if cached > full/2.5 {
		t.Errorf("a cached pod holds %.0f bytes, the API's %.0f: expected under 40%%", cached, full)
	}
}

// BenchmarkCacheTransform reports the heap a cached pod holds and the
// transform's cost per pod.
func BenchmarkCacheTransform(b *testing.B) {
	api := footprint(10000, func(p *corev1.Pod) any { return p })
	cached := footprint(10000, func(p *corev1.Pod) any { out, _ := agentcache.CacheTransform(p); return out })
	data, _ := apiPod(1).Marshal()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p := &corev1.Pod{}
		if err := p.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
		if _, err := agentcache.CacheTransform(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(api, "B/pod-api")
	b.ReportMetric(cached, "B/pod-cached")
}
