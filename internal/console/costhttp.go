package console

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *server) costCSV(w http.ResponseWriter, r *http.Request) {
	by := r.FormValue("by")
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="bosun-cost-%s.csv"`, orDefault(by, "cluster")))
	if err := CostCSV(w, s.c.Cost(), by); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// rightSizing serves the right-sizing page and its JSON (L38).
func (s *server) rightSizing(api bool) http.HandlerFunc {
	return reportHandler(s, api, "rightsizing", "Right-sizing", s.c.RightSizing)
}

func (s *server) rightSizingCSV(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="bosun-rightsizing.csv"`)
	if err := RightSizingCSV(w, s.c.RightSizing()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// chart serves the SVG charts: cost-by-team.svg, cost-by-app.svg,
// cost-by-cluster.svg and nodes-by-lifecycle.svg.
func (s *server) chart(w http.ResponseWriter, r *http.Request) {
	rep := s.c.Cost()
	var bars []Bar
	title, format := "", "$%.2f/month"
	rowBars := func(rows []CostRow) []Bar {
		out := make([]Bar, 0, len(rows))
		for _, row := range rows {
			label := row.Key
			if row.Cluster != "" {
				label = row.Cluster + "/" + row.Key
			}
			out = append(out, Bar{Label: label, Value: row.CostUSD * HoursPerMonth})
		}
		return out
	}
	switch r.PathValue("chart") {
	case "cost-by-team.svg":
		title, bars = "Cost by team (USD/month)", rowBars(rep.ByTeam)
	case "cost-by-app.svg":
		title, bars = "Cost by application (USD/month)", rowBars(rep.ByApp)
	case "cost-by-cluster.svg":
		title = "Node cost by cluster (USD/month)"
		for _, c := range rep.Clusters {
			bars = append(bars, Bar{Label: c.Cluster, Value: c.NodeUSD * HoursPerMonth})
		}
	case "nodes-by-lifecycle.svg":
		title, format = "Nodes by lifecycle", "%.0f"
		for _, c := range rep.Clusters {
			bars = append(bars,
				Bar{Label: c.Cluster + " spot", Value: float64(c.SpotNodes), Class: LifecycleSpot},
				Bar{Label: c.Cluster + " on-demand", Value: float64(c.OnDemandNodes), Class: LifecycleOnDemand})
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_ = WriteBarChart(w, title, bars, format)
}

// metrics serves cost and fleet figures in the Prometheus text format,
// computed at scrape time from the caches.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(costCollector{s.c})
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

var (
	descNodeCost = prometheus.NewDesc("bosun_console_cluster_node_cost_usd_per_hour", "Price of the cluster's nodes (L51).", []string{"cluster"}, nil)
	descIdle     = prometheus.NewDesc("bosun_console_cluster_idle_cost_usd_per_hour", "Node cost not allocated to pods.", []string{"cluster"}, nil)
	descSlack    = prometheus.NewDesc("bosun_console_cluster_slack_cost_usd_per_hour", "Cost of requested minus used resources (L38, L51).", []string{"cluster"}, nil)
	descSavings  = prometheus.NewDesc("bosun_console_cluster_spot_savings_usd_per_hour", "On-demand price of spot nodes minus their price (L53).", []string{"cluster"}, nil)
	descNodes    = prometheus.NewDesc("bosun_console_cluster_nodes", "Nodes by lifecycle.", []string{"cluster", "lifecycle"}, nil)
	descTeam     = prometheus.NewDesc("bosun_console_team_cost_usd_per_hour", "Cost allocated to a team.", []string{"team"}, nil)
	descApp      = prometheus.NewDesc("bosun_console_app_cost_usd_per_hour", "Cost allocated to an application.", []string{"app"}, nil)
	descUp       = prometheus.NewDesc("bosun_console_cluster_up", "1 when the cluster's API server answers, 0 when it is down.", []string{"cluster"}, nil)
	descObjects  = prometheus.NewDesc("bosun_console_cluster_objects", "Objects in the console's cache.", []string{"cluster"}, nil)
)

type costCollector struct{ c *Console }

func (costCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeCost, descIdle, descSlack, descSavings, descNodes, descTeam, descApp, descUp, descObjects} {
		ch <- d
	}
}

func (cc costCollector) Collect(ch chan<- prometheus.Metric) {
	rep := cc.c.Cost()
	for _, c := range rep.Clusters {
		ch <- prometheus.MustNewConstMetric(descNodeCost, prometheus.GaugeValue, c.NodeUSD, c.Cluster)
		ch <- prometheus.MustNewConstMetric(descIdle, prometheus.GaugeValue, c.IdleUSD, c.Cluster)
		ch <- prometheus.MustNewConstMetric(descSlack, prometheus.GaugeValue, c.SlackUSD, c.Cluster)
		ch <- prometheus.MustNewConstMetric(descSavings, prometheus.GaugeValue, c.SpotSavingsUSD, c.Cluster)
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(c.SpotNodes), c.Cluster, LifecycleSpot)
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(c.OnDemandNodes), c.Cluster, LifecycleOnDemand)
	}
	for _, row := range rep.ByTeam {
		ch <- prometheus.MustNewConstMetric(descTeam, prometheus.GaugeValue, row.CostUSD, row.Key)
	}
	for _, row := range rep.ByApp {
		ch <- prometheus.MustNewConstMetric(descApp, prometheus.GaugeValue, row.CostUSD, row.Key)
	}
	for _, st := range cc.c.Clusters() {
		up := 1.0
		if st.State == StateDown {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, st.Name)
		ch <- prometheus.MustNewConstMetric(descObjects, prometheus.GaugeValue, float64(st.Objects), st.Name)
	}
}
