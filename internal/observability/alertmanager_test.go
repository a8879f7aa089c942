package observability

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/render"
)

// amConfig is the part of an Alertmanager configuration the routing
// example test reads.
type amConfig struct {
	Route struct {
		Receiver string `json:"receiver"`
		Routes   []struct {
			Receiver string   `json:"receiver"`
			Matchers []string `json:"matchers"`
		} `json:"routes"`
	} `json:"route"`
	Receivers []struct {
		Name         string           `json:"name"`
		SlackConfigs []map[string]any `json:"slack_configs"`
	} `json:"receivers"`
	InhibitRules []struct {
		SourceMatchers []string `json:"source_matchers"`
		TargetMatchers []string `json:"target_matchers"`
	} `json:"inhibit_rules"`
}

var matcher = regexp.MustCompile(`^(\w+)(=~|=)"([^"]*)"$`)

// route returns the receiver Alertmanager picks for an alert with labels,
// for routes of first-match equality matchers (what the example uses).
func (c amConfig) route(t *testing.T, labels map[string]string) string {
	for _, r := range c.Route.Routes {
		all := true
		for _, m := range r.Matchers {
			p := matcher.FindStringSubmatch(m)
			if p == nil || p[2] != "=" {
				t.Fatalf("route matcher %q: the example uses name=\"value\" only", m)
			}
			if labels[p[1]] != p[3] {
				all = false
			}
		}
		if all {
			return r.Receiver
		}
	}
	return c.Route.Receiver
}

// workloadTeams are the team labels of the pod templates rendered for a
// cluster.
func workloadTeams(res *render.Result) []string {
	seen := map[string]bool{}
	for _, o := range res.Objects {
		team, _, _ := unstructured.NestedString(o.Object.Object, "spec", "template", "metadata", "labels", "team")
		if team != "" {
			seen[team] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// L18: the routing example sends each team's alerts to the team's own
// receiver and the rest to the platform team; webhook URLs come from files,
// and the inhibitions name alerts that exist.
func TestAlertmanagerRoutesEachTeam(t *testing.T) {
	for _, res := range renderFleet(t) {
		var cfg amConfig
		found := false
		for _, o := range res.Objects {
			if o.Object.GetKind() != "ConfigMap" || o.Object.GetName() != "bosun-alertmanager-routes" {
				continue
			}
			text, _, _ := unstructured.NestedString(o.Object.Object, "data", "alertmanager.yaml")
			if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
				t.Fatalf("%s: alertmanager.yaml: %v", res.Cluster.ID, err)
			}
			found = true
		}
		if !found {
			t.Fatalf("%s: no bosun-alertmanager-routes ConfigMap", res.Cluster.ID)
		}
		receivers := map[string]bool{}
		for _, r := range cfg.Receivers {
			receivers[r.Name] = true
			for _, s := range r.SlackConfigs {
				if _, inline := s["api_url"]; inline {
					t.Errorf("%s: receiver %s has an inline webhook URL; read it from a file (api_url_file)", res.Cluster.ID, r.Name)
				}
			}
		}
		teams := workloadTeams(res)
		if len(teams) < 2 {
			t.Fatalf("%s: workloads of %d teams; the example should route several", res.Cluster.ID, len(teams))
		}
		for _, team := range teams {
			got := cfg.route(t, map[string]string{"team": team, "alertname": "ContainerCPUNearLimit"})
			if got != team {
				t.Errorf("%s: an alert of team %s goes to receiver %q, want its own", res.Cluster.ID, team, got)
			}
		}
		if got := cfg.route(t, map[string]string{"team": "nobody"}); got != cfg.Route.Receiver || !receivers[got] {
			t.Errorf("%s: an alert of an unknown team goes to %q, want the default receiver", res.Cluster.ID, got)
		}
		for _, r := range cfg.Route.Routes {
			if !receivers[r.Receiver] {
				t.Errorf("%s: route to undefined receiver %s", res.Cluster.ID, r.Receiver)
			}
		}
		alerts := map[string]bool{}
		for _, g := range rulesOf(t, res)[0].File.Groups {
			for _, r := range g.Rules {
				alerts[r.Alert] = true
			}
		}
		for _, ir := range cfg.InhibitRules {
			for _, m := range append(ir.SourceMatchers, ir.TargetMatchers...) {
				p := matcher.FindStringSubmatch(m)
				if p == nil || p[1] != "alertname" {
					continue
				}
				for _, name := range strings.Split(p[3], "|") {
					if !alerts[name] {
						t.Errorf("%s: inhibit rule names alert %s, which the rules do not have", res.Cluster.ID, name)
					}
				}
			}
		}
	}
}
