package console

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// csvWriter is encoding/csv's writer with every cell neutralised for
// spreadsheets: names, labels and event reasons come from the clusters, and
// a cell such as =HYPERLINK(...) would run as a formula where the export is
// opened. Cells starting with =, +, -, @, a tab or a carriage return get a
// leading single quote (OWASP's advice on CSV injection); numbers, which
// the console writes itself, are left as they are.
type csvWriter struct{ *csv.Writer }

func newCSVWriter(w io.Writer) csvWriter { return csvWriter{csv.NewWriter(w)} }

// Write writes one row, neutralised.
func (cw csvWriter) Write(row []string) error {
	out := make([]string, len(row))
	for i, cell := range row {
		out[i] = csvCell(cell)
	}
	return cw.Writer.Write(out)
}

// WriteAll writes rows, neutralised, and flushes.
func (cw csvWriter) WriteAll(rows [][]string) error {
	for _, row := range rows {
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvCell returns cell safe to open in a spreadsheet.
func csvCell(cell string) string {
	if cell == "" || !strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return cell
	}
	if _, err := strconv.ParseFloat(cell, 64); err == nil {
		return cell
	}
	return "'" + cell
}

// ItemsCSV writes a result as CSV: one row per item with the fixed columns
// of `kubectl get` plus one column per label key asked for. stale is true
// for items of a cluster that is down.
func ItemsCSV(w io.Writer, res Result, labelCols []string) error {
	cw := newCSVWriter(w)
	header := []string{"cluster", "kind", "namespace", "name", "ready", "status", "restarts", "node", "created", "stale"}
	for _, l := range labelCols {
		header = append(header, "label:"+l)
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("writing CSV, %w", err)
	}
	for _, g := range res.Groups {
		for _, it := range g.Items {
			row := []string{it.Cluster, it.Kind, it.Namespace, it.Name, it.Ready, it.Status,
				strconv.Itoa(int(it.Restarts)), it.Node, it.Created.UTC().Format(time.RFC3339), strconv.FormatBool(g.Stale)}
			for _, l := range labelCols {
				row = append(row, it.Labels[l])
			}
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("writing CSV, %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV, %w", err)
	}
	return nil
}

// CostCSV writes one aggregation of a cost report: by is cluster,
// namespace, team, app, node or pod. Figures are USD per hour.
func CostCSV(w io.Writer, r CostReport, by string) error {
	cw := newCSVWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	var rows [][]string
	switch by {
	case "cluster", "":
		rows = append(rows, []string{"cluster", "node_usd_h", "allocated_usd_h", "idle_usd_h", "slack_usd_h", "spot_nodes", "on_demand_nodes", "override_nodes", "spot_savings_usd_h", "spot_savings_pct", "usage_known"})
		for _, c := range append(append([]ClusterCost(nil), r.Clusters...), r.Total) {
			rows = append(rows, []string{c.Cluster, f(c.NodeUSD), f(c.AllocatedUSD), f(c.IdleUSD), f(c.SlackUSD), strconv.Itoa(c.SpotNodes),
				strconv.Itoa(c.OnDemandNodes), strconv.Itoa(c.OverrideNodes), f(c.SpotSavingsUSD), f(c.SpotSavingsPct), strconv.FormatBool(c.UsageKnown)})
		}
	case "namespace", "team", "app":
		src := map[string][]CostRow{"namespace": r.ByNamespace, "team": r.ByTeam, "app": r.ByApp}[by]
		rows = append(rows, []string{"cluster", by, "pods", "cost_usd_h", "slack_usd_h"})
		for _, row := range src {
			rows = append(rows, []string{row.Cluster, row.Key, strconv.Itoa(row.Pods), f(row.CostUSD), f(row.SlackUSD)})
		}
	case "node":
		rows = append(rows, []string{"cluster", "node", "instance_type", "lifecycle", "region", "price_source", "usd_h", "on_demand_usd_h", "cpu_usd_core_h", "mem_usd_gib_h", "allocated_usd_h", "idle_usd_h"})
		for _, n := range r.Nodes {
			rows = append(rows, []string{n.Cluster, n.Node, n.InstanceType, n.Lifecycle, n.Region, n.PriceSource, f(n.HourlyUSD), f(n.OnDemandUSD),
				f(n.CPUHourly), f(n.MemGiBHourly), f(n.AllocatedUSD), f(n.IdleUSD)})
		}
	case "pod":
		rows = append(rows, []string{"cluster", "namespace", "pod", "node", "team", "app", "cpu_request", "cpu_used", "mem_request_gib", "mem_used_gib", "cost_usd_h", "slack_usd_h"})
		for _, p := range r.Pods {
			rows = append(rows, []string{p.Cluster, p.Namespace, p.Pod, p.Node, p.Team, p.App, f(p.CPUReq), f(p.CPUUsed), f(p.MemReqGiB), f(p.MemUsedGB), f(p.HourlyUSD), f(p.SlackUSD)})
		}
	default:
		return fmt.Errorf("cost CSV by %q: want cluster, namespace, team, app, node or pod: %w", by, errBadRequest)
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("writing CSV, %w", err)
	}
	return nil
}
