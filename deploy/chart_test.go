package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chartTemplates is the committed chart's templates directory.
const chartTemplates = "../charts/bosun-agent/templates"

// The committed chart is what the generator makes of deploy/agent today:
// one source of truth. Regenerate with `make chart`.
func TestChartUpToDate(t *testing.T) {
	files, err := AgentChartTemplates()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range files {
		want[f.Name] = true
		got, err := os.ReadFile(filepath.Join(chartTemplates, f.Name))
		if err != nil {
			t.Errorf("charts/bosun-agent/templates/%s: %v; run make chart", f.Name, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("charts/bosun-agent/templates/%s is stale: deploy/agent changed since it was generated; run make chart", f.Name)
		}
	}
	existing, err := filepath.Glob(filepath.Join(chartTemplates, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range existing {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(data), ChartGeneratedMarker) && !want[filepath.Base(p)] {
			t.Errorf("%s was generated from a manifest that is gone; run make chart", p)
		}
		if !strings.HasPrefix(string(data), ChartGeneratedMarker) {
			t.Errorf("%s is not generated: the chart's YAML templates come from deploy/agent (helpers go in _helpers.tpl)", p)
		}
	}
}

// Every manifest becomes a template; RBAC files only behind their
// controller's value; no template still names the shipped namespace.
func TestAgentChartTemplates(t *testing.T) {
	files, err := AgentChartTemplates()
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := agentFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(manifests) {
		t.Errorf("%d templates from %d manifests", len(files), len(manifests))
	}
	conditional := map[string]bool{}
	rbac, err := RBACFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rbac {
		conditional[filepath.Base(f)] = true
	}
	for _, f := range files {
		text := string(f.Data)
		if leftNamespace(text) {
			t.Errorf("%s still names %s", f.Name, shippedNamespace)
		}
		guarded := strings.Contains(text, "{{- if .Values.controllers.") || strings.Contains(text, "{{- if (or .Values.controllers.")
		if conditional[f.Name] != guarded {
			t.Errorf("%s: RBAC file %v, behind a controller value %v", f.Name, conditional[f.Name], guarded)
		}
	}
}
