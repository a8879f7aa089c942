package render

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestPodTemplate(t *testing.T) {
	containers := []any{map[string]any{"name": "app", "image": "app:1"}}
	template := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "x"}}, "spec": map[string]any{"containers": containers}}
	for _, c := range []struct {
		name string
		obj  map[string]any
		ok   bool
	}{
		{"a Deployment", map[string]any{"kind": "Deployment", "spec": map[string]any{"template": template}}, true},
		{"a CronJob", map[string]any{"kind": "CronJob", "spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": template}}}}, true},
		{"a Pod", map[string]any{"kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]}, true},
		{"a Deployment without a template", map[string]any{"kind": "Deployment", "spec": map[string]any{}}, false},
		{"a template that does not decode", map[string]any{"kind": "Job", "spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": "app"}}}}, false},
		{"a ConfigMap", map[string]any{"kind": "ConfigMap", "data": map[string]any{}}, false},
	} {
		pod, ok := (&Object{Object: &unstructured.Unstructured{Object: c.obj}}).PodTemplate()
		if ok != c.ok {
			t.Errorf("%s: ok %v, want %v", c.name, ok, c.ok)
			continue
		}
		if ok && (len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Image != "app:1" || pod.Labels["app"] != "x") {
			t.Errorf("%s: pod template %+v", c.name, pod)
		}
	}
}
