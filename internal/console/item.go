package console

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Item is the compact, searchable summary of one object. Search and lists
// read Items only; detail pages read the trimmed object from the cache.
type Item struct {
	Cluster   string            `json:"cluster"`
	Kind      string            `json:"kind"`
	Namespace string            `json:"namespace,omitempty"`
	Name      string            `json:"name"`
	UID       types.UID         `json:"uid"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Status is the kubectl-style status: Running, Pending,
	// CrashLoopBackOff, Ready, NotReady, Active, Bound, ...
	Status string `json:"status,omitempty"`
	// Ready is "ready/desired" for pods and workloads.
	Ready    string `json:"ready,omitempty"`
	Restarts int32  `json:"restarts,omitempty"`
	// Node is the pod's node.
	Node string `json:"node,omitempty"`
	// Owner is the controller owner as Kind/name.
	Owner    string    `json:"owner,omitempty"`
	OwnerUID types.UID `json:"-"`
	Images   []string  `json:"images,omitempty"`
	Created  time.Time `json:"created"`
	// Since is when the object entered its current state, where known
	// (pods: the PodScheduled condition or creation; used for "pending >
	// 5 min").
	Since time.Time `json:"-"`
	// text is the lower-cased haystack for free-text search.
	text string
}

// Path returns the URL path of the item's detail page (without /api).
func (it *Item) Path() string {
	k, _ := LookupKind(it.Kind)
	if it.Namespace == "" {
		return fmt.Sprintf("/clusters/%s/%s/%s", it.Cluster, k.Plural, it.Name)
	}
	return fmt.Sprintf("/clusters/%s/namespaces/%s/%s/%s", it.Cluster, it.Namespace, k.Plural, it.Name)
}

// key identifies an item inside one cluster.
func itemKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// summarize builds the Item of a trimmed object.
func summarize(cluster string, kind Kind, obj any) (*Item, bool) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, false
	}
	it := &Item{
		Cluster: cluster, Kind: kind.Name, Namespace: m.GetNamespace(), Name: m.GetName(),
		UID: m.GetUID(), Labels: m.GetLabels(), Created: m.GetCreationTimestamp().Time,
	}
	it.Since = it.Created
	if ref := metav1.GetControllerOf(m); ref != nil {
		it.Owner, it.OwnerUID = ref.Kind+"/"+ref.Name, ref.UID
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		summarizePod(it, o)
	case *corev1.Node:
		it.Status = nodeStatus(o)
	case *corev1.Namespace:
		it.Status = string(o.Status.Phase)
	case *appsv1.Deployment:
		it.Ready = fmt.Sprintf("%d/%d", o.Status.ReadyReplicas, deref(o.Spec.Replicas, 1))
		it.Status = workloadStatus(o.Status.ReadyReplicas, deref(o.Spec.Replicas, 1))
		it.Images = images(o.Spec.Template.Spec)
	case *appsv1.StatefulSet:
		it.Ready = fmt.Sprintf("%d/%d", o.Status.ReadyReplicas, deref(o.Spec.Replicas, 1))
		it.Status = workloadStatus(o.Status.ReadyReplicas, deref(o.Spec.Replicas, 1))
		it.Images = images(o.Spec.Template.Spec)
	case *appsv1.ReplicaSet:
		it.Ready = fmt.Sprintf("%d/%d", o.Status.ReadyReplicas, deref(o.Spec.Replicas, 1))
		it.Status = workloadStatus(o.Status.ReadyReplicas, deref(o.Spec.Replicas, 1))
	case *appsv1.DaemonSet:
		it.Ready = fmt.Sprintf("%d/%d", o.Status.NumberReady, o.Status.DesiredNumberScheduled)
		it.Status = workloadStatus(o.Status.NumberReady, o.Status.DesiredNumberScheduled)
		it.Images = images(o.Spec.Template.Spec)
	case *batchv1.Job:
		it.Status = jobStatus(o)
		it.Images = images(o.Spec.Template.Spec)
	case *batchv1.CronJob:
		it.Status = "Active"
		if o.Spec.Suspend != nil && *o.Spec.Suspend {
			it.Status = "Suspended"
		}
		it.Images = images(o.Spec.JobTemplate.Spec.Template.Spec)
	case *corev1.Service:
		it.Status = string(o.Spec.Type)
	case *networkingv1.Ingress:
		it.Status = "Active"
	case *corev1.PersistentVolumeClaim:
		it.Status = string(o.Status.Phase)
	case *autoscalingv2.HorizontalPodAutoscaler:
		it.Ready = fmt.Sprintf("%d/%d", o.Status.CurrentReplicas, o.Spec.MaxReplicas)
	case *policyv1.PodDisruptionBudget:
		it.Ready = fmt.Sprintf("%d allowed", o.Status.DisruptionsAllowed)
	case *corev1.Event:
		it.Status = o.Reason
		it.Owner = o.InvolvedObject.Kind + "/" + o.InvolvedObject.Name
		it.OwnerUID = o.InvolvedObject.UID
	}
	it.text = haystack(it)
	return it, true
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func workloadStatus(ready, want int32) string {
	if ready >= want {
		return "Ready"
	}
	return "Progressing"
}

func images(spec corev1.PodSpec) []string {
	var out []string
	for _, c := range spec.InitContainers {
		out = append(out, c.Image)
	}
	for _, c := range spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

func jobStatus(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return "Complete"
		case batchv1.JobFailed:
			return "Failed"
		}
	}
	if j.Status.Active > 0 {
		return "Running"
	}
	return "Pending"
}

// nodeStatus is Ready or NotReady, with SchedulingDisabled when cordoned.
func nodeStatus(n *corev1.Node) string {
	s := "NotReady"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			s = "Ready"
		}
	}
	if n.Spec.Unschedulable {
		s += ",SchedulingDisabled"
	}
	return s
}

// summarizePod fills the kubectl-style status: a waiting or terminated
// container reason (CrashLoopBackOff, ImagePullBackOff, Error) wins over the
// phase, as in `kubectl get pods`.
func summarizePod(it *Item, p *corev1.Pod) {
	it.Node = p.Spec.NodeName
	it.Images = images(p.Spec)
	status := string(p.Status.Phase)
	if p.Status.Reason != "" {
		status = p.Status.Reason
	}
	ready := 0
	for _, cs := range p.Status.ContainerStatuses {
		it.Restarts += cs.RestartCount
		if cs.Ready {
			ready++
		}
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "ContainerCreating":
			status = cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "" && p.Status.Phase != corev1.PodSucceeded:
			status = cs.State.Terminated.Reason
		}
	}
	if p.DeletionTimestamp != nil {
		status = "Terminating"
	}
	it.Ready = fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
	it.Status = status
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && !c.LastTransitionTime.IsZero() {
			it.Since = c.LastTransitionTime.Time
		}
	}
}

// haystack is what free text searches: name, namespace, labels and
// images, lower-cased once when the object changes.
func haystack(it *Item) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(it.Name))
	b.WriteByte(' ')
	b.WriteString(strings.ToLower(it.Namespace))
	keys := make([]string, 0, len(it.Labels))
	for k := range it.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(' ')
		b.WriteString(strings.ToLower(k))
		b.WriteByte('=')
		b.WriteString(strings.ToLower(it.Labels[k]))
	}
	for _, im := range it.Images {
		b.WriteByte(' ')
		b.WriteString(strings.ToLower(im))
	}
	return b.String()
}
