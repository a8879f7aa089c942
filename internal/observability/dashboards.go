package observability

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/bosun-platform/bosun/internal/render"
)

// DashboardLabel marks a ConfigMap whose .json keys are Grafana dashboards,
// as Grafana's sidecar finds them.
const DashboardLabel = "grafana_dashboard"

// Dashboard is a Grafana dashboard found in rendered manifests.
type Dashboard struct {
	// Source names the ConfigMap and key.
	Source string
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is a dashboard panel; rows may nest panels.
type Panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Targets []Target `json:"targets"`
	Panels  []Panel  `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// FindDashboards returns the dashboards in a cluster's rendered objects:
// every .json key of the ConfigMaps labelled grafana_dashboard.
func FindDashboards(res *render.Result) ([]Dashboard, error) {
	var out []Dashboard
	for _, o := range res.Objects {
		u := o.Object
		if u.GetKind() != "ConfigMap" {
			continue
		}
		if _, ok := u.GetLabels()[DashboardLabel]; !ok {
			continue
		}
		data, _, err := unstructuredStringMap(u.Object, "data")
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", u.GetNamespace(), u.GetName(), err)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !strings.HasSuffix(k, ".json") {
				continue
			}
			d := Dashboard{Source: fmt.Sprintf("ConfigMap %s/%s %s", u.GetNamespace(), u.GetName(), k)}
			if err := json.Unmarshal([]byte(data[k]), &d); err != nil {
				return nil, fmt.Errorf("%s: not a JSON dashboard: %w", d.Source, err)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// Queries returns every panel query of the dashboard, nested rows
// included, keyed by "panel title/refId".
func (d Dashboard) Queries() map[string]string {
	out := map[string]string{}
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Expr != "" {
					out[p.Title+"/"+t.RefID] = t.Expr
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?|\$\{[a-zA-Z_][a-zA-Z0-9_]*(:[a-z]+)?\}|\$[a-zA-Z_][a-zA-Z0-9_]*`)

// ExpandGrafanaVars replaces Grafana's variables in a query with values
// that keep it valid PromQL ($__rate_interval and friends with 5m, other
// variables with "x"), so PromQL tools can check it.
func ExpandGrafanaVars(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.Contains(v, "__") {
			return "5m"
		}
		return "x"
	})
}
