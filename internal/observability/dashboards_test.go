package observability

import (
	"testing"
)

// The example fleet ships the dashboards the issue asks for, each valid
// JSON with a unique uid, every panel titled, and every query reading only
// metrics that exist: registered by Bosun, recorded by a rule, or listed in
// docs/metrics.md as external or planned.
func TestDashboards(t *testing.T) {
	known := knownMetrics(t)
	want := map[string]bool{"bosun-fleet-capacity": false, "bosun-capacity-errors": false, "bosun-cost": false, "bosun-downscaler": false, "bosun-agent-health": false}
	for _, res := range renderFleet(t) {
		for _, rs := range rulesOf(t, res) {
			for _, g := range rs.File.Groups {
				for _, r := range g.Rules {
					if r.Record != "" {
						known[r.Record] = true
					}
				}
			}
		}
		ds, err := FindDashboards(res)
		if err != nil {
			t.Fatal(err)
		}
		uids := map[string]string{}
		for _, d := range ds {
			if d.UID == "" || d.Title == "" {
				t.Errorf("%s %s: dashboard without uid or title", res.Cluster.ID, d.Source)
			}
			if prev, dup := uids[d.UID]; dup {
				t.Errorf("%s: uid %s used by %s and %s", res.Cluster.ID, d.UID, prev, d.Source)
			}
			uids[d.UID] = d.Source
			if _, ok := want[d.UID]; ok {
				want[d.UID] = true
			}
			queries := d.Queries()
			if len(queries) == 0 {
				t.Errorf("%s: no queries", d.Source)
			}
			for where, expr := range queries {
				names, err := MetricNames(ExpandGrafanaVars(expr))
				if err != nil {
					t.Errorf("%s %s: %v", d.Source, where, err)
				}
				if len(names) == 0 {
					t.Errorf("%s %s: %q reads no metric", d.Source, where, expr)
				}
				for _, n := range names {
					if !known[n] {
						t.Errorf("%s panel %s reads %s, which no component registers, no rule records and docs/metrics.md does not list", d.Source, where, n)
					}
				}
			}
		}
	}
	for uid, found := range want {
		if !found {
			t.Errorf("dashboard %s not rendered in any cluster", uid)
		}
	}
}

func TestExpandGrafanaVars(t *testing.T) {
	for in, want := range map[string]string{
		`rate(x[$__rate_interval])`:         `rate(x[5m])`,
		`rate(x[${__interval}])`:            `rate(x[5m])`,
		`up{job="$job", ns=~"${ns:regex}"}`: `up{job="x", ns=~"x"}`,
	} {
		if got := ExpandGrafanaVars(in); got != want {
			t.Errorf("ExpandGrafanaVars(%q) = %q, want %q", in, got, want)
		}
	}
}
