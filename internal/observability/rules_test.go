package observability

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// testedCluster is the cluster whose rendered rules the promtool fixtures
// in testdata/rules are written against.
const testedCluster = "local-prod"

func renderFleet(t testing.TB) []*render.Result {
	t.Helper()
	f, err := fleet.Load(repoRoot + "/examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	all, err := r.All(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func rulesOf(t testing.TB, res *render.Result) []RenderedRules {
	t.Helper()
	rs, err := FindRules(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		t.Fatalf("%s: no rule files rendered", res.Cluster.ID)
	}
	return rs
}

// The plain rules file and the PrometheusRule come from one snippet and
// never disagree; the PrometheusRule is rendered where the config item
// prometheus_operator says the operator runs.
func TestRulesOneSource(t *testing.T) {
	for _, res := range renderFleet(t) {
		rs := rulesOf(t, res)
		operator := res.Cluster.ConfigItems["prometheus_operator"] == "true"
		want := 1
		if operator {
			want = 2
		}
		if len(rs) != want {
			t.Errorf("%s: %d rule files, want %d (prometheus_operator=%v)", res.Cluster.ID, len(rs), want, operator)
			continue
		}
		for _, r := range rs[1:] {
			if !reflect.DeepEqual(r.File, rs[0].File) {
				t.Errorf("%s: %s and %s disagree", res.Cluster.ID, rs[0].Source, r.Source)
			}
		}
	}
}

// L18: every alert carries a severity and a team; rules about workloads
// take the team from the pod's team label.
func TestRulesLabels(t *testing.T) {
	severities := map[string]bool{"info": true, "warning": true, "critical": true}
	for _, res := range renderFleet(t) {
		for _, rs := range rulesOf(t, res) {
			for _, g := range rs.File.Groups {
				for _, r := range g.Rules {
					if r.Alert == "" {
						continue
					}
					if !severities[r.Labels["severity"]] {
						t.Errorf("%s %s: severity %q, want info, warning or critical", rs.Source, r.Alert, r.Labels["severity"])
					}
					team := r.Labels["team"]
					if team == "" {
						t.Errorf("%s %s: no team label (L18)", rs.Source, r.Alert)
					}
					if strings.Contains(r.Expr, "kube_pod_labels") && !strings.Contains(team, "$labels.team") {
						t.Errorf("%s %s: a workload rule whose team label %q is not the workload's (L18)", rs.Source, r.Alert, team)
					}
					if r.Annotations["summary"] == "" {
						t.Errorf("%s %s: no summary annotation", rs.Source, r.Alert)
					}
				}
			}
		}
	}
}

// knownMetrics are the metric names rules and dashboards may read: those
// Bosun registers, those docs/metrics.md lists as planned or external, and
// (added by the caller) those recorded by rules.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, m := range scanRepo(t) {
		known[m.Name] = true
		if m.Type == "histogram" || m.Type == "summary" {
			known[m.Name+"_sum"], known[m.Name+"_count"] = true, true
		}
		if m.Type == "histogram" {
			known[m.Name+"_bucket"] = true
		}
	}
	for _, r := range readDoc(t) {
		if r.Kind == DocExternal || r.Kind == DocPlanned {
			known[r.Name] = true
		}
	}
	return known
}

// Rules read only metrics that exist: registered by Bosun, documented as
// external or planned, or recorded by another rule.
func TestRulesUseExistingMetrics(t *testing.T) {
	known := knownMetrics(t)
	for _, res := range renderFleet(t) {
		for _, rs := range rulesOf(t, res) {
			for _, g := range rs.File.Groups {
				for _, r := range g.Rules {
					if r.Record != "" {
						known[r.Record] = true
					}
				}
			}
			for _, g := range rs.File.Groups {
				for _, r := range g.Rules {
					names, err := MetricNames(r.Expr)
					if err != nil {
						t.Errorf("%s %s%s: %v", rs.Source, r.Alert, r.Record, err)
					}
					for _, n := range names {
						if !known[n] {
							t.Errorf("%s %s%s reads %s, which no component registers and docs/metrics.md does not list as external or planned", rs.Source, r.Alert, r.Record, n)
						}
					}
				}
			}
		}
	}
}

// promtoolTestFile is the part of a `promtool test rules` file the
// coverage check reads.
type promtoolTestFile struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			EvalTime  string           `json:"eval_time"`
			Alertname string           `json:"alertname"`
			ExpAlerts []map[string]any `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func readPromtoolTests(t *testing.T) map[string]promtoolTestFile {
	t.Helper()
	paths, err := filepath.Glob("testdata/rules/*.test.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no promtool test files in testdata/rules (%v)", err)
	}
	out := map[string]promtoolTestFile{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f promtoolTestFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[p] = f
	}
	return out
}

// A rule without a test fails the suite: every alert of the tested
// cluster's rules has a promtool case where it fires and one where it stays
// silent, and every tested alert exists.
func TestEveryRuleTested(t *testing.T) {
	var rules map[string]bool
	for _, res := range renderFleet(t) {
		if res.Cluster.ID != testedCluster {
			continue
		}
		rules = map[string]bool{}
		for _, g := range rulesOf(t, res)[0].File.Groups {
			for _, r := range g.Rules {
				rules[r.Alert+r.Record] = true
			}
		}
	}
	if rules == nil {
		t.Fatalf("cluster %s not in the example fleet", testedCluster)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for p, f := range readPromtoolTests(t) {
		if len(f.RuleFiles) != 1 || f.RuleFiles[0] != "bosun.rules.yaml" {
			t.Errorf("%s: rule_files %v, want [bosun.rules.yaml] (the rendered file the test writes beside it)", p, f.RuleFiles)
		}
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTest {
				if !rules[a.Alertname] {
					t.Errorf("%s: test %q checks %s, which %s's rules do not have", p, tc.Name, a.Alertname, testedCluster)
				}
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	var names []string
	for n := range rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !fires[n] {
			t.Errorf("rule %s has no promtool case where it fires (testdata/rules/*.test.yaml)", n)
		}
		if !silent[n] {
			t.Errorf("rule %s has no promtool case where it stays silent (testdata/rules/*.test.yaml)", n)
		}
	}
}
