package lint

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/fleet"
)

func TestBrokenFleetTripsEveryRule(t *testing.T) {
	f, err := fleet.Load("testdata/broken-fleet")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, fd := range rep.Findings {
		seen[fd.Rule] = true
	}
	for _, r := range Rules() {
		if !seen[r.Name] {
			t.Errorf("rule %s: no finding on the broken fleet", r.Name)
		}
	}
	if !seen["suppression-needs-reason"] {
		t.Error("suppression-needs-reason: no finding")
	}
	if rep.Errors == 0 {
		t.Error("no errors counted")
	}
}

func TestSuppressions(t *testing.T) {
	t.Run("a cluster suppression with a reason silences the rule for that cluster only", func(t *testing.T) {
		fsys := exampleFS(t)
		edit(t, fsys, "clusters/aws-staging-eu1.yaml", `account: "222222222222"`, `account: "111111111111"`)
		edit(t, fsys, prod, "nodePools:\n", "lint:\n  suppress:\n    - rule: L46\n      reason: the twin shares the account until the new one is approved\nnodePools:\n")
		rep := lintFS(t, fsys)
		if got := byRule(rep, "L46-test-twin"); len(got) != 0 {
			t.Errorf("still reported: %+v", got)
		}
		// The example's own suppressions (among them L56 for the access
		// requesters' RoleBinding in its two production clusters), plus
		// this one.
		if rep.Suppressed != 7 || rep.Errors != 0 {
			t.Errorf("suppressed %d errors %d, want 7 and 0", rep.Suppressed, rep.Errors)
		}
	})
	t.Run("an object annotation silences the rule for that object only", func(t *testing.T) {
		fsys := exampleFS(t)
		add(fsys, "manifests/test/pod.yaml", strings.Replace(badPod, "  namespace: shop\n", "  namespace: shop\n  annotations:\n    lint.bosun.dev/L58-requests-and-probes: a one-off debug pod\n", 1))
		rep := lintFS(t, fsys)
		if got := byRule(rep, "L58-requests-and-probes"); len(got) != 0 {
			t.Errorf("still reported: %+v", got)
		}
		if got := byRule(rep, "L37-pod-security"); len(got) == 0 {
			t.Error("other rules must still report the object")
		}
	})
}

func TestClusterFilter(t *testing.T) {
	f, err := fleet.Load("testdata/broken-fleet")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), f, Options{Clusters: []string{"prod-2"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range rep.Findings {
		if fd.Cluster != "prod-2" {
			t.Fatalf("finding about %s with --cluster prod-2", fd.Cluster)
		}
	}
	// L49 still compares prod-2 with prod-1, which is rendered but not reported.
	if len(byRule(rep, "L49-environment-drift")) == 0 {
		t.Error("L49 needs the whole fleet even when one cluster is linted")
	}
	if _, err := Run(context.Background(), f, Options{Clusters: []string{"nope"}}); err == nil {
		t.Error("unknown cluster: expected an error")
	}
}

func TestOutput(t *testing.T) {
	f, err := fleet.Load("testdata/broken-fleet")
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := Run(context.Background(), f, Options{Clusters: []string{"prod-1"}})
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Findings []map[string]any `json:"findings"`
		Errors   int              `json:"errors"`
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Errors != rep.Errors || len(decoded.Findings) != len(rep.Findings) {
		t.Errorf("json: %d errors %d findings, want %d %d", decoded.Errors, len(decoded.Findings), rep.Errors, len(rep.Findings))
	}
	for _, key := range []string{"rule", "lesson", "severity", "cluster", "file", "message", "hint"} {
		if _, ok := decoded.Findings[0][key]; !ok {
			t.Errorf("json finding lacks %q: %v", key, decoded.Findings[0])
		}
	}
	// Stable: the same fleet gives the same bytes.
	rep2, _ := Run(context.Background(), f, Options{Clusters: []string{"prod-1"}})
	var js2 bytes.Buffer
	_ = WriteJSON(&js2, rep2)
	if !bytes.Equal(js.Bytes(), js2.Bytes()) {
		t.Error("json output differs between two runs")
	}
	var text bytes.Buffer
	if err := WriteText(&text, rep, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "clusters/prod-1.yaml:11: error L07-system-pool: node pool \"system\": system pool is spot") ||
		!strings.Contains(text.String(), "    hint: ") {
		t.Errorf("text output:\n%s", text.String())
	}
}
