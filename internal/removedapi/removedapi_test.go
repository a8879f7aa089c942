package removedapi

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The table is k8s.io/api's own lifecycle data: facts any release notes
// confirm must be in it (L30).
func TestTableHasKnownRemovals(t *testing.T) {
	for gvk, want := range map[schema.GroupVersionKind]Version{
		{Group: "extensions", Version: "v1beta1", Kind: "Ingress"}:                      {1, 22},
		{Group: "policy", Version: "v1beta1", Kind: "PodDisruptionBudget"}:              {1, 25},
		{Group: "batch", Version: "v1beta1", Kind: "CronJob"}:                           {1, 25},
		{Group: "flowcontrol.apiserver.k8s.io", Version: "v1beta3", Kind: "FlowSchema"}: {1, 32},
	} {
		got, ok := RemovedBy(Version{1, 40})[gvk]
		if !ok || got.Removed != want {
			t.Errorf("%s: %+v (found %v), want removed in %s", gvk, got, ok, want)
		}
	}
	if _, ok := RemovedBy(Version{1, 24})[schema.GroupVersionKind{Group: "batch", Version: "v1beta1", Kind: "CronJob"}]; ok {
		t.Error("batch/v1beta1 CronJob counted as removed by 1.24 (removed in 1.25)")
	}
	for _, r := range Table() {
		if r.GVK.Group == "apps" && r.GVK.Version == "v1" {
			t.Errorf("apps/v1 %s listed as removed", r.GVK.Kind)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{"1.33": {1, 33}, "v1.33.4": {1, 33}, "1.30+": {1, 30}} {
		if got, err := ParseVersion(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "one.two", "1.x"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestCheckObjects(t *testing.T) {
	u := func(apiVersion, kind, ns, name string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		o.SetNamespace(ns)
		o.SetName(name)
		return o
	}
	objs := []*unstructured.Unstructured{
		u("batch/v1beta1", "CronJob", "apps", "nightly"),
		u("batch/v1", "CronJob", "apps", "hourly"),
	}
	got := CheckObjects(objs, Version{1, 25})
	if len(got) != 1 || got[0].Examples[0] != "apps/nightly" || got[0].Replacement.Version != "v1" {
		t.Fatalf("findings %+v, want batch/v1beta1 CronJob apps/nightly with its replacement", got)
	}
	if got := CheckObjects(objs, Version{1, 24}); len(got) != 0 {
		t.Errorf("1.24: %+v, want none", got)
	}
}
