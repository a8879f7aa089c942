package observability

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Kinds of rows in docs/metrics.md, by the section they are in.
const (
	// DocRegistered rows document a metric a Bosun component registers.
	DocRegistered = "registered"
	// DocExternal rows document a metric of another exporter (kube-state-metrics,
	// cAdvisor, Prometheus itself) that the rules or dashboards read.
	DocExternal = "external"
	// DocPlanned rows document a Bosun metric that rules already read but
	// whose exporter is not built yet.
	DocPlanned = "planned"
)

// DocMetric is one row of a metrics table in docs/metrics.md:
// | `name` | type | `label`, `label` | meaning |.
type DocMetric struct {
	Name, Type string
	Labels     []string
	Meaning    string
	// Kind is DocRegistered, DocExternal or DocPlanned: rows under a "##"
	// heading that starts with "External" are external, "Planned" planned,
	// any other registered.
	Kind string
	// Line is the row's line number.
	Line int
}

// ParseMetricsDoc reads the metric tables of docs/metrics.md: every table
// row whose first cell is a metric name in backticks. A row with fewer than
// four cells is an error naming its line.
func ParseMetricsDoc(r io.Reader) ([]DocMetric, error) {
	var out []DocMetric
	kind := DocRegistered
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if h, ok := strings.CutPrefix(text, "## "); ok {
			switch {
			case strings.HasPrefix(h, "External"):
				kind = DocExternal
			case strings.HasPrefix(h, "Planned"):
				kind = DocPlanned
			default:
				kind = DocRegistered
			}
			continue
		}
		if !strings.HasPrefix(text, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		if len(cells) < 4 {
			return nil, fmt.Errorf("docs/metrics.md:%d: expected | `metric` | type | labels | meaning |", line)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		m := DocMetric{
			Name:    strings.Trim(cells[0], "`"),
			Type:    cells[1],
			Labels:  docLabels(cells[2]),
			Meaning: strings.Join(cells[3:], "|"),
			Kind:    kind,
			Line:    line,
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// docLabels reads "`a`, `b`" (or "none").
func docLabels(cell string) []string {
	var out []string
	for _, part := range strings.Split(cell, ",") {
		p := strings.Trim(strings.TrimSpace(part), "`")
		if p == "" || p == "none" || p == "—" {
			continue
		}
		out = append(out, p)
	}
	return out
}

// DocRow formats a registered metric as a docs/metrics.md row, for a
// failure message the reader can paste.
func DocRow(m Metric) string {
	labels := "none"
	if len(m.Labels) > 0 {
		labels = "`" + strings.Join(m.Labels, "`, `") + "`"
	}
	return fmt.Sprintf("| `%s` | %s | %s | %s |", m.Name, m.Type, labels, m.Help)
}
