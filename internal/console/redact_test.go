package console

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Issue 18 item 1: whatever a live read returned, redact leaves no Secret
// or ConfigMap data and no last-applied copy, for single objects, typed
// lists and mixed lists, however the kind is spelt.
func TestRedactDropsDataWhateverTheKindsSpelling(t *testing.T) {
	const canary = "c2VjcmV0LWNhbmFyeQ=="
	obj := func(kind string) map[string]any {
		m := map[string]any{
			"metadata": map[string]any{"name": "x", "annotations": map[string]any{lastApplied: canary, "keep": "me"},
				"managedFields": []any{map[string]any{"manager": canary}}},
			"data": map[string]any{"password": canary}, "stringData": map[string]any{"token": canary},
			"binaryData": map[string]any{"blob": canary},
		}
		if kind != "-" {
			m["kind"] = kind
		}
		return m
	}
	cases := map[string]map[string]any{
		"Secret":                    obj("Secret"),
		"lower-case secret":         obj("secret"),
		"ConfigMap":                 obj("ConfigMap"),
		"no kind at all":            obj("-"),
		"SecretList":                {"kind": "SecretList", "items": []any{obj("-"), obj("-")}},
		"ConfigMapList":             {"kind": "ConfigMapList", "items": []any{obj("-")}},
		"List of mixed kinds":       {"kind": "List", "items": []any{obj("Secret"), obj("ConfigMap"), obj("-")}},
		"list of lists":             {"kind": "List", "items": []any{map[string]any{"kind": "SecretList", "items": []any{obj("-")}}}},
		"custom kind, metadata too": {"kind": "Widget", "metadata": obj("-")["metadata"]},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			y, err := renderYAML(Kind{Name: "Widget", GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}}, m)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(y, canary) {
				t.Errorf("rendered object contains the canary:\n%s", y)
			}
		})
	}
	// A custom object keeps its own fields, a data field included.
	w := map[string]any{"kind": "Widget", "metadata": map[string]any{"name": "w"}, "data": map[string]any{"size": "3"}}
	y, err := renderYAML(Kind{Name: "Widget"}, w)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(y, "size:") {
		t.Errorf("a Widget's data was dropped:\n%s", y)
	}
}

// Issue 18 item 1: group, version and plural from a URL are DNS names;
// anything that could walk the client's path elsewhere is refused.
func TestValidCustomGVR(t *testing.T) {
	for _, tt := range []struct {
		group, version, plural string
		ok                     bool
	}{
		{"example.com", "v1", "widgets", true},
		{"stable.example.com", "v1beta1", "crontabs", true},
		{"", "v1", "secrets", false},
		{"../api", "v1", "secrets", false},
		{"..", "v1", "secrets", false},
		{".", "v1", "secrets", false},
		{"example.com", "x/..", "secrets", false},
		{"example.com", "..", "secrets", false},
		{"example.com", "v1", "../secrets", false},
		{"example.com.", "v1", "widgets", false},
		{"example.com", "v1", "widgets.", false},
		{"example.com", "v1", "Widgets", false},
		{"%2e%2e", "v1", "widgets", false},
		{"example.com", "v1", "widgets%2F..", false},
	} {
		err := validCustomGVR(schema.GroupVersionResource{Group: tt.group, Version: tt.version, Resource: tt.plural})
		if (err == nil) != tt.ok {
			t.Errorf("validCustomGVR(%q, %q, %q) = %v, want ok=%v", tt.group, tt.version, tt.plural, err, tt.ok)
		}
	}
	for _, tt := range []struct {
		ns, name string
		ok       bool
	}{
		{"default", "w1", true},
		{"", "cluster-scoped.thing", true},
		{"default", "..", false},
		{"default", ".", false},
		{"default", "a/b", false},
		{"default", "a%2Fb", false},
		{"../kube-system", "w1", false},
		{"default", "", false},
	} {
		if err := validObjectRef(tt.ns, tt.name); (err == nil) != tt.ok {
			t.Errorf("validObjectRef(%q, %q) = %v, want ok=%v", tt.ns, tt.name, err, tt.ok)
		}
	}
}

// Issue 18 item 6: exported cells cannot run as spreadsheet formulas.
func TestCSVNeutralisesFormulas(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("http://evil","x")`: `'=HYPERLINK("http://evil","x")`,
		"+1+cmd|' /C calc'!A0":          "'+1+cmd|' /C calc'!A0",
		"-2+3":                          "'-2+3",
		"@SUM(A1)":                      "'@SUM(A1)",
		"\t=1":                          "'\t=1",
		"\r=1":                          "'\r=1",
		"-0.250000":                     "-0.250000",
		"web-1":                         "web-1",
		"":                              "",
	} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
	var buf bytes.Buffer
	res := Result{Groups: []ClusterGroup{{Items: []*Item{{Cluster: "a", Kind: "Event", Name: "e", Status: `=HYPERLINK("http://evil","x")`}}}}}
	if err := ItemsCSV(&buf, res, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `,=HYPERLINK`) || strings.Contains(buf.String(), `"=HYPERLINK`) {
		t.Errorf("CSV export carries a formula:\n%s", buf.String())
	}
}
