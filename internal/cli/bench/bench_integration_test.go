//go:build integration

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

// report is the part of `--format json` scripts rely on.
type report struct {
	Scenario string `json:"scenario"`
	Results  []struct {
		Name       string   `json:"name"`
		Autoscaler string   `json:"autoscaler"`
		Seconds    *float64 `json:"seconds"`
		MB         *float64 `json:"mb"`
		Skipped    string   `json:"skipped"`
	} `json:"results"`
	ClusterAutoscaler string `json:"clusterAutoscaler"`
}

func runScaleUp(t *testing.T, args ...string) report {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"scaleup", "--format", "json"}, args...))
	cmd.SilenceUsage = true
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("bosun bench scaleup %v: %v\nprogress:\n%s", args, err, errOut.String())
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	return r
}

func seconds(t *testing.T, r report, name string) float64 {
	t.Helper()
	for _, res := range r.Results {
		if res.Name == name && res.Seconds != nil {
			return *res.Seconds
		}
	}
	t.Fatalf("no figure %s in %+v", name, r.Results)
	return 0
}

// Scenario ice end to end: every spot group fails, on-demand is requested
// long before any provision timeout, and the pods run.
func TestScaleUpICE(t *testing.T) {
	r := runScaleUp(t, "--scenario", "ice")
	if r.Scenario != "ice" || !strings.HasPrefix(r.ClusterAutoscaler, "skipped:") {
		t.Errorf("scenario %q, cluster-autoscaler %q", r.Scenario, r.ClusterAutoscaler)
	}
	od := seconds(t, r, "pods-created-to-on-demand-requested")
	running := seconds(t, r, "pods-created-to-running")
	fallback := seconds(t, r, "first-capacity-error-to-on-demand-requested")
	if od <= 0 || od > 60 || running < od || fallback <= 0 || fallback > od {
		t.Errorf("on-demand requested %.2fs, fallback %.2fs, running %.2fs", od, fallback, running)
	}
}

// A small scale run: the provisioner's latency quantiles and memory come
// out.
func TestScaleUpSmallScale(t *testing.T) {
	// --agent=false: the test binary is not bosun, so this process's
	// memory is reported.
	r := runScaleUp(t, "--scenario", "scale", "--nodes", "20", "--pods", "400", "--agent=false")
	p50, p99 := seconds(t, r, "pending-to-requested-p50"), seconds(t, r, "pending-to-requested-p99")
	if p50 <= 0 || p99 < p50 {
		t.Errorf("p50 %.3f, p99 %.3f", p50, p99)
	}
	found := false
	for _, res := range r.Results {
		if res.Name == "process-rss" && res.MB != nil && *res.MB > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("no RSS figure in %+v", r.Results)
	}
}
