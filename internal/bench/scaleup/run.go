package scaleup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bosun-platform/bosun/internal/controlplane"
)

// Options configure a benchmark run.
type Options struct {
	// Binaries are the control-plane programs (controlplane.FindBinaries).
	Binaries controlplane.Binaries
	// ClusterAutoscaler is the path of a cluster-autoscaler binary. Empty
	// skips the side-by-side run (and the report says so); a path that
	// does not exist is an error before anything starts.
	ClusterAutoscaler string
	// KeepGoing reports a failed run as skipped with its error and runs
	// the rest, instead of stopping at the first failure.
	KeepGoing bool
	// Progress receives one line per step (the command's stderr).
	Progress io.Writer
	// Agent, if set, is the command that runs `bosun agent` (the bosun
	// executable and "agent"): the scale scenario runs it against its
	// cluster with every controller, in dry-run so it does not fight the
	// provisioner measured in this process, and reports its RSS. Nil
	// reports this process's memory instead, saying what it includes.
	Agent []string
	// AgentProfiles, if set with Agent, is a directory for the agent's heap
	// profiles: every 30 s while pods arrive and at the end of the run.
	AgentProfiles string
}

// runner plays one scenario.
type runner struct {
	sc   *Scenario
	opts Options
}

func (r *runner) progressf(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// CheckClusterAutoscaler fails clearly when path is given but is not an
// executable file.
func CheckClusterAutoscaler(path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--cluster-autoscaler %s: %w", path, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("--cluster-autoscaler %s: not an executable file", path)
	}
	return nil
}

// Run plays the scenario with Bosun's provisioner and, if a
// cluster-autoscaler binary is given, again with it, and returns the
// figures. An error means a run failed (without KeepGoing) or could not
// start.
func Run(ctx context.Context, sc *Scenario, opts Options) (*Report, error) {
	if err := CheckClusterAutoscaler(opts.ClusterAutoscaler); err != nil {
		return nil, err
	}
	r := &runner{sc: sc, opts: opts}
	rep := &Report{Scenario: sc.Name, Description: sc.Description, Machine: machine()}
	autoscalers := []string{AutoscalerBosun}
	switch {
	case opts.ClusterAutoscaler == "":
		rep.ClusterAutoscaler = "skipped: no --cluster-autoscaler PATH given (only Bosun's provisioner ran)"
	case sc.Measure == MeasureScale || sc.Measure == MeasureReaper:
		rep.ClusterAutoscaler = fmt.Sprintf("skipped: the %s scenario measures Bosun's own controllers only", sc.Measure)
	default:
		autoscalers = append(autoscalers, AutoscalerCA)
		rep.ClusterAutoscaler = "ran " + opts.ClusterAutoscaler + " in place of Bosun's provisioner; its figures are listed under cluster-autoscaler"
	}
	for _, a := range autoscalers {
		results, err := r.measure(ctx, a)
		if err != nil {
			if !opts.KeepGoing || ctx.Err() != nil {
				return rep, fmt.Errorf("scenario %s with %s, %w", sc.Name, a, err)
			}
			r.progressf("[%s] failed: %v (--keep-going: reporting it as skipped)", a, err)
			results = append(results, Result{Name: sc.Name, Autoscaler: a, Skipped: "failed: " + err.Error()})
		}
		rep.Results = append(rep.Results, results...)
	}
	if sc.Measure == MeasurePeak {
		rep.Results = append(rep.Results, peakAgainstClusterAutoscaler(rep.Results)...)
	}
	return rep, nil
}

func (r *runner) measure(ctx context.Context, autoscaler string) ([]Result, error) {
	switch r.sc.Measure {
	case MeasureFallback:
		return r.fallback(ctx, autoscaler)
	case MeasurePeak:
		return r.peak(ctx, autoscaler)
	case MeasureReaper:
		return r.reaper(ctx, autoscaler)
	case MeasureScale:
		return r.scale(ctx, autoscaler)
	}
	return nil, errors.New("unknown measure " + r.sc.Measure)
}
