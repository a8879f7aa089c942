package console

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// DefaultUsageWindow is how much usage history is kept by default.
const DefaultUsageWindow = 24 * time.Hour

// Right-sizing rules (L38), documented in docs/cost.md.
const (
	// Headroom is added to the usage figure to recommend a request.
	Headroom = 0.15
	// TooHighFactor: a request above this many times the recommendation
	// is too high.
	TooHighFactor = 1.5
	// MinCPURecommended and MinMemGiBRecommended floor a recommendation
	// (10 millicores, 32 MiB).
	MinCPURecommended    = 0.01
	MinMemGiBRecommended = 32.0 / 1024
)

// The verdicts of a right-sizing row.
const (
	VerdictOK        = "ok"
	VerdictTooHigh   = "request too high"
	VerdictTooLow    = "request too low"
	VerdictNoRequest = "no request"
)

// RightSizing is one container of one workload, its usage over the usage
// window against its request (L38). CPU is in cores, memory in GiB.
type RightSizing struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	// Workload is the pods' top controller as Kind/name (Deployment/web),
	// or Pod/name for a pod without one.
	Workload  string `json:"workload"`
	Container string `json:"container"`
	// Pods is how many pods contributed samples in the window; Samples is
	// how many readings in all.
	Pods    int `json:"pods"`
	Samples int `json:"samples"`

	CPURequest     float64 `json:"cpuRequest"`
	CPUP95         float64 `json:"cpuP95"`
	CPUMax         float64 `json:"cpuMax"`
	CPURecommended float64 `json:"cpuRecommended"`
	CPUVerdict     string  `json:"cpuVerdict"`

	MemRequestGiB     float64 `json:"memRequestGiB"`
	MemP95GiB         float64 `json:"memP95GiB"`
	MemMaxGiB         float64 `json:"memMaxGiB"`
	MemRecommendedGiB float64 `json:"memRecommendedGiB"`
	MemVerdict        string  `json:"memVerdict"`
}

// RightSizingReport is the right-sizing of every workload of the fleet.
type RightSizingReport struct {
	// WindowHours and IntervalSeconds describe the history kept.
	WindowHours     float64 `json:"windowHours"`
	IntervalSeconds float64 `json:"intervalSeconds"`
	// NoMetrics lists the clusters without a metrics API (no history).
	NoMetrics []string      `json:"noMetrics,omitempty"`
	Rows      []RightSizing `json:"rows"`
}

// RightSizing pools each workload's usage history by container and
// compares it with the current request: CPU by its 95th percentile, memory
// by its maximum (see rightSize).
func (c *Console) RightSizing() RightSizingReport {
	rep := RightSizingReport{WindowHours: c.window.Hours(), IntervalSeconds: c.usage.Seconds()}
	for _, cl := range c.clusters {
		if cl.usageSnapshot() == nil {
			rep.NoMetrics = append(rep.NoMetrics, cl.src.Name)
		}
		if cl.history == nil {
			continue
		}
		for _, wu := range cl.history.byWorkload() {
			row := rightSize(wu)
			row.Cluster = cl.src.Name
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep
}

// rightSize turns a pooled window into a row:
//
//   - CPU is judged by the 95th percentile: above the request a container
//     is throttled, not killed, so rare peaks may exceed it;
//   - memory by the maximum: above the request a pod is the first evicted
//     under node pressure, and above its limit it is OOM-killed;
//   - the recommendation is that figure plus Headroom (15%), floored at
//     10m CPU and 32 MiB;
//   - the request is too low when the figure exceeds it, too high when it
//     exceeds TooHighFactor (1.5) times the recommendation.
func rightSize(wu workloadUsage) RightSizing {
	ns, workload, _ := strings.Cut(wu.Workload, "/")
	r := RightSizing{
		Namespace: ns, Workload: workload, Container: wu.Container, Pods: wu.Pods, Samples: wu.Samples,
		CPURequest: wu.Request.CPU, CPUP95: Percentile(wu.CPU, 95), CPUMax: wu.CPU[len(wu.CPU)-1],
		MemRequestGiB: wu.Request.MemGiB, MemP95GiB: Percentile(wu.Mem, 95), MemMaxGiB: wu.Mem[len(wu.Mem)-1],
	}
	r.CPURecommended = max(r.CPUP95*(1+Headroom), MinCPURecommended)
	r.MemRecommendedGiB = max(r.MemMaxGiB*(1+Headroom), MinMemGiBRecommended)
	r.CPUVerdict = verdict(r.CPURequest, r.CPUP95, r.CPURecommended)
	r.MemVerdict = verdict(r.MemRequestGiB, r.MemMaxGiB, r.MemRecommendedGiB)
	return r
}

func verdict(request, used, recommended float64) string {
	switch {
	case request <= 0:
		return VerdictNoRequest
	case used > request:
		return VerdictTooLow
	case request > TooHighFactor*recommended:
		return VerdictTooHigh
	default:
		return VerdictOK
	}
}

// RightSizingCSV writes the report's rows as CSV.
func RightSizingCSV(w io.Writer, rep RightSizingReport) error {
	cw := newCSVWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	if err := cw.Write([]string{"cluster", "namespace", "workload", "container", "pods", "samples",
		"cpu_request", "cpu_p95", "cpu_max", "cpu_recommended", "cpu_verdict",
		"mem_request_gib", "mem_p95_gib", "mem_max_gib", "mem_recommended_gib", "mem_verdict"}); err != nil {
		return fmt.Errorf("writing CSV, %w", err)
	}
	for _, r := range rep.Rows {
		if err := cw.Write([]string{r.Cluster, r.Namespace, r.Workload, r.Container, strconv.Itoa(r.Pods), strconv.Itoa(r.Samples),
			f(r.CPURequest), f(r.CPUP95), f(r.CPUMax), f(r.CPURecommended), r.CPUVerdict,
			f(r.MemRequestGiB), f(r.MemP95GiB), f(r.MemMaxGiB), f(r.MemRecommendedGiB), r.MemVerdict}); err != nil {
			return fmt.Errorf("writing CSV, %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV, %w", err)
	}
	return nil
}
