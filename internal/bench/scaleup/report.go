package scaleup

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
)

// Autoscalers a result can come from.
const (
	AutoscalerBosun = "bosun"
	AutoscalerCA    = "cluster-autoscaler"
)

// Report is what `bosun bench scaleup` prints.
type Report struct {
	// Scenario is the scenario's name.
	Scenario    string `json:"scenario"`
	Description string `json:"description,omitempty"`
	// Machine is where it ran (the figures move with the load).
	Machine Machine `json:"machine"`
	// Results are the figures, Bosun's first, then cluster-autoscaler's.
	Results []Result `json:"results"`
	// ClusterAutoscaler says whether the side-by-side run happened.
	ClusterAutoscaler string `json:"clusterAutoscaler"`
}

// Machine describes the host at the start of the run.
type Machine struct {
	CPUs int `json:"cpus"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures.
	LoadAverage string `json:"loadAverage,omitempty"`
	GoVersion   string `json:"goVersion"`
}

// Result is one figure. Latencies are in Seconds; memory in MB; events in
// Count. A skipped
// figure has Skipped set and no value.
type Result struct {
	// Name says what was measured ("pods-created-to-on-demand-requested").
	Name string `json:"name"`
	// Autoscaler is bosun or cluster-autoscaler.
	Autoscaler string   `json:"autoscaler"`
	Seconds    *float64 `json:"seconds,omitempty"`
	MB         *float64 `json:"mb,omitempty"`
	// Count is a number of events (such as PDB violations).
	Count *int `json:"count,omitempty"`
	// Target is the objective for this figure ("< 5 s"), and Met
	// whether the figure reaches it.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// Baseline names the result (or arithmetic) this one compares with,
	// BaselineSeconds its value and Ratio this / baseline.
	Baseline        string   `json:"baseline,omitempty"`
	BaselineSeconds *float64 `json:"baselineSeconds,omitempty"`
	Ratio           *float64 `json:"ratio,omitempty"`
	// Note qualifies the figure (how it was measured, what it includes).
	Note    string `json:"note,omitempty"`
	Skipped string `json:"skipped,omitempty"`
}

func ptrTo[T any](v T) *T { return &v }

func seconds(name, autoscaler string, s float64) Result {
	return Result{Name: name, Autoscaler: autoscaler, Seconds: ptrTo(s)}
}

func (r Result) target(text string, met bool) Result {
	r.Target, r.Met = text, ptrTo(met)
	return r
}

func (r Result) against(name string, baseline float64) Result {
	r.Baseline, r.BaselineSeconds = name, ptrTo(baseline)
	if r.Seconds != nil && baseline > 0 {
		r.Ratio = ptrTo(*r.Seconds / baseline)
	}
	return r
}

func (r Result) note(text string) Result {
	r.Note = text
	return r
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	return m
}

// WriteJSON prints the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report, %w", err)
	}
	return nil
}

// WriteText prints the report as a table, one figure a line, with its
// target and its baseline ratio.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "scenario %s", r.Scenario)
	if r.Description != "" {
		fmt.Fprintf(w, ": %s", strings.TrimSpace(r.Description))
	}
	fmt.Fprintf(w, "\nmachine: %d CPUs, load average %s, %s\n\n", r.Machine.CPUs, r.Machine.LoadAverage, r.Machine.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AUTOSCALER\tFIGURE\tVALUE\tTARGET\tBASELINE\tRATIO")
	for _, res := range r.Results {
		value, target, baseline, ratio := res.value(), "", "", ""
		if res.Target != "" {
			target = res.Target
			if res.Met != nil && *res.Met {
				target += " ok"
			} else if res.Met != nil {
				target += " MISSED"
			}
		}
		if res.Baseline != "" && res.BaselineSeconds != nil {
			baseline = fmt.Sprintf("%s %.2f s", res.Baseline, *res.BaselineSeconds)
		}
		if res.Ratio != nil {
			ratio = fmt.Sprintf("%.3g", *res.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", res.Autoscaler, res.Name, value, target, baseline, ratio)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the report, %w", err)
	}
	var notes []string
	for _, res := range r.Results {
		if res.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s %s: %s", res.Autoscaler, res.Name, res.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nnotes:\n%s\n", strings.Join(notes, "\n"))
	}
	_, err := fmt.Fprintf(w, "\ncluster-autoscaler: %s\n", r.ClusterAutoscaler)
	return err
}

func (r Result) value() string {
	switch {
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	case r.Seconds != nil:
		return fmt.Sprintf("%.2f s", *r.Seconds)
	case r.MB != nil:
		return fmt.Sprintf("%.0f MB", *r.MB)
	case r.Count != nil:
		return fmt.Sprint(*r.Count)
	}
	return "-"
}
