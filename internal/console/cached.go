package console

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// cached is what the informers store instead of the object: its identity,
// its Item, and the few fields cost and detail pages need. Typed Go
// objects cost 3-4 KB each (a Pod struct alone is over 1 KB before any
// field is set); this keeps the cache well under that. The detail page
// fetches the full object live.
type cached struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Item *Item
	// Pod holds what cost needs of a pod.
	Pod *podFacts
	// Node is the trimmed Node (nodes are few; pricing reads labels and
	// capacity).
	Node *corev1.Node
	// Event holds an event's text and its subject.
	Event *eventFacts
}

// DeepCopyObject implements runtime.Object. Cached values are never
// modified after the transform, so a shallow copy is a deep enough copy.
func (c *cached) DeepCopyObject() runtime.Object {
	cp := *c
	return &cp
}

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
		out := &cached{
			ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()},
			Item:       it,
		}
		switch o := obj.(type) {
		case *corev1.Pod:
			out.Pod = podFactsOf(o)
		case *corev1.Node:
			out.Node = o
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
