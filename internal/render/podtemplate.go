package render

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// podTemplatePaths says where each kind keeps its pod template.
var podTemplatePaths = map[string][]string{
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
}

// PodTemplate returns the pods the object runs: a Pod's own metadata and
// spec, or the pod template of a workload kind (Deployment, StatefulSet,
// DaemonSet, ReplicaSet, ReplicationController, Job, CronJob). It reports
// false for other kinds and for a template that does not decode.
func (o *Object) PodTemplate() (*corev1.PodTemplateSpec, bool) {
	kind := o.Object.GetKind()
	var raw map[string]any
	if kind == "Pod" {
		raw = map[string]any{"metadata": o.Object.Object["metadata"], "spec": o.Object.Object["spec"]}
	} else if path, ok := podTemplatePaths[kind]; ok {
		m, found, err := unstructured.NestedMap(o.Object.Object, path...)
		if !found || err != nil {
			return nil, false
		}
		raw = m
	} else {
		return nil, false
	}
	pod := &corev1.PodTemplateSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, pod); err != nil {
		return nil, false
	}
	return pod, true
}
