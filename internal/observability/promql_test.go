package observability

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"selector", `up{job="bosun-agent"} == 0`, []string{"up"}},
		{"functions and aggregations are not metrics",
			`histogram_quantile(0.99, sum by (le) (rate(bosun_provisioner_pending_to_requested_seconds_bucket[10m]))) > 5`,
			[]string{"bosun_provisioner_pending_to_requested_seconds_bucket"}},
		{"label lists, matchers and strings are skipped",
			`max without (label_team) (label_replace(sum by (namespace, pod) (a{container!="", x=~"on|by"}) * on (namespace, pod) group_left (label_team) kube_pod_labels, "team", "$1", "label_team", "(.+)"))`,
			[]string{"a", "kube_pod_labels"}},
		{"keywords, durations, numbers and grafana variables",
			`sum(rate(x_total[$__rate_interval] offset 1h)) / 1e3 and bool y unless z or absent(w) > 14 * 86400`,
			[]string{"w", "x_total", "y", "z"}},
		{"aggregation with the clause after", `sum(bosun_console_cluster_nodes) by (lifecycle)`, []string{"bosun_console_cluster_nodes"}},
		{"recording rule names with colons", `cluster:cpu:ratio > 0.5`, []string{"cluster:cpu:ratio"}},
		{"time() is a function", `time() - max by (controller) (bosun_agent_last_success_timestamp_seconds)`, []string{"bosun_agent_last_success_timestamp_seconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MetricNames(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("MetricNames(%q) = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestMetricNamesErrors(t *testing.T) {
	for _, expr := range []string{`{__name__=~"bosun_.*"}`, `up{job="x`, `foo{a="b"`} {
		if _, err := MetricNames(expr); err == nil {
			t.Errorf("MetricNames(%q): no error", expr)
		}
	}
}
