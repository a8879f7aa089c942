package console

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// cached is what the informers store instead of the object: its identity,
// its Item, and the few fields cost and detail pages need. Typed Go
// objects cost 3-4 KB each (a Pod struct alone is over 1 KB before any
// field is set); this keeps the cache well under that. Nodes and
// Namespaces, which are few, are kept whole (trimmed), and their detail
// pages are served from here; for every other kind the detail page fetches
// the full object live.
type cached struct {
	Item            *Item
	resourceVersion string
	// Pod holds what cost needs of a pod.
	Pod *podFacts
	// Node is the trimmed Node (nodes are few; pricing reads labels and
	// capacity, the detail page all of it).
	Node *corev1.Node
	// Namespace is the trimmed Namespace (namespaces are few; the detail
	// page shows it).
	Namespace *corev1.Namespace
	// Event holds an event's text and its subject.
	Event *eventFacts
}

// DeepCopyObject implements runtime.Object. Cached values are never
// modified after the transform, so a shallow copy is a deep enough copy.
func (c *cached) DeepCopyObject() runtime.Object {
	cp := *c
	return &cp
}

// GetObjectKind implements runtime.Object; summaries carry no type meta.
func (c *cached) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// cached implements metav1.Object from its Item, so the informer's store
// can key it, without the 232 bytes of an embedded ObjectMeta per object.
// Setters are no-ops: summaries are immutable once made.
var _ metav1.Object = (*cached)(nil)

func (c *cached) GetNamespace() string                          { return c.Item.Namespace }
func (c *cached) SetNamespace(string)                           {}
func (c *cached) GetName() string                               { return c.Item.Name }
func (c *cached) SetName(string)                                {}
func (c *cached) GetGenerateName() string                       { return "" }
func (c *cached) SetGenerateName(string)                        {}
func (c *cached) GetUID() types.UID                             { return c.Item.UID }
func (c *cached) SetUID(types.UID)                              {}
func (c *cached) GetResourceVersion() string                    { return c.resourceVersion }
func (c *cached) SetResourceVersion(string)                     {}
func (c *cached) GetGeneration() int64                          { return 0 }
func (c *cached) SetGeneration(int64)                           {}
func (c *cached) GetSelfLink() string                           { return "" }
func (c *cached) SetSelfLink(string)                            {}
func (c *cached) GetCreationTimestamp() metav1.Time             { return metav1.NewTime(c.Item.Created) }
func (c *cached) SetCreationTimestamp(metav1.Time)              {}
func (c *cached) GetDeletionTimestamp() *metav1.Time            { return nil }
func (c *cached) SetDeletionTimestamp(*metav1.Time)             {}
func (c *cached) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (c *cached) SetDeletionGracePeriodSeconds(*int64)          {}
func (c *cached) GetLabels() map[string]string                  { return c.Item.Labels }
func (c *cached) SetLabels(map[string]string)                   {}
func (c *cached) GetAnnotations() map[string]string             { return nil }
func (c *cached) SetAnnotations(map[string]string)              {}
func (c *cached) GetFinalizers() []string                       { return nil }
func (c *cached) SetFinalizers([]string)                        {}
func (c *cached) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (c *cached) SetOwnerReferences([]metav1.OwnerReference)    {}
func (c *cached) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (c *cached) SetManagedFields([]metav1.ManagedFieldsEntry)  {}

type containerRequest struct {
	Name   string
	CPU    float64 // cores
	MemGiB float64
}

type podFacts struct {
	Phase      corev1.PodPhase
	Containers []containerRequest
}

type eventFacts struct {
	Summary EventSummary
	Subject corev1.ObjectReference
	At      metav1.Time
}

// transform returns the informer transform for kind k of this cluster: it
// trims the object (L48: bounded memory), summarizes it and keeps only
// what the console reads. It is idempotent, as client-go may hand it an
// object it has already transformed.
func (c *cluster) transform(k Kind) cache.TransformFunc {
	return func(obj any) (any, error) {
		switch obj.(type) {
		case *cached, cache.DeletedFinalStateUnknown:
			return obj, nil
		}
		if _, err := trim(obj); err != nil {
			return nil, err
		}
		it, ok := summarize(c.src.Name, k, obj)
		if !ok {
			return obj, nil
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return obj, nil
		}
		out := &cached{Item: it, resourceVersion: m.GetResourceVersion()}
		switch o := obj.(type) {
		case *corev1.Pod:
			out.Pod = podFactsOf(o)
		case *corev1.Node:
			out.Node = o
		case *corev1.Namespace:
			out.Namespace = o
		case *corev1.Event:
			at := o.LastTimestamp
			if at.IsZero() {
				at = metav1.NewTime(o.EventTime.Time)
			}
			out.Event = &eventFacts{Subject: o.InvolvedObject, At: at, Summary: EventSummary{
				Type: o.Type, Reason: o.Reason, Message: o.Message, Count: o.Count, Last: at.UTC().Format("2006-01-02 15:04:05")}}
		}
		return out, nil
	}
}

// whole returns the object itself when the cache keeps it whole (Nodes and
// Namespaces, trimmed), or nil when it keeps only a summary.
func (c *cached) whole() runtime.Object {
	switch {
	case c.Node != nil:
		return c.Node
	case c.Namespace != nil:
		return c.Namespace
	}
	return nil
}

func podFactsOf(p *corev1.Pod) *podFacts {
	f := &podFacts{Phase: p.Status.Phase, Containers: make([]containerRequest, 0, len(p.Spec.Containers))}
	for _, ctr := range p.Spec.Containers {
		f.Containers = append(f.Containers, containerRequest{
			Name:   ctr.Name,
			CPU:    ctr.Resources.Requests.Cpu().AsApproximateFloat64(),
			MemGiB: ctr.Resources.Requests.Memory().AsApproximateFloat64() / (1 << 30),
		})
	}
	return f
}
