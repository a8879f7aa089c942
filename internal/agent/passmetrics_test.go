package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakePasser is a controller whose passes end with err.
type fakePasser struct {
	name string
	err  error
}

func (f fakePasser) Name() string                           { return f.name }
func (f fakePasser) Pass(context.Context) ([]string, error) { return nil, f.err }

// The alert rules BosunAgentNotReconciling and BosunAgentReconcileFailures
// read these: a failed pass counts as a failure and leaves the last success
// alone; a good one moves the timestamp to the clock's now.
func TestPassMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newPassMetrics(reg, []string{"downscaler", "janitor"})
	if err != nil {
		t.Fatal(err)
	}
	// Both series exist at 0 before any pass, so the first failure is an
	// increase.
	if got := value(m.failures.WithLabelValues("janitor")); got != 0 {
		t.Fatalf("janitor failures before any pass %v, want 0", got)
	}
	clk := clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))
	o := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), passes: m}
	ctrls := []running{{Controller: fakePasser{name: "downscaler"}}, {Controller: fakePasser{name: "janitor", err: errors.New("boom")}}}
	passAll(context.Background(), ctrls, o, clk)
	clk.Step(time.Minute)
	passAll(context.Background(), ctrls, o, clk)

	for _, tc := range []struct {
		c    *prometheus.CounterVec
		ctrl string
		want float64
		what string
	}{
		{m.passes, "downscaler", 2, "downscaler passes"},
		{m.failures, "downscaler", 0, "downscaler failures"},
		{m.passes, "janitor", 2, "janitor passes"},
		{m.failures, "janitor", 2, "janitor failures"},
	} {
		if got := value(tc.c.WithLabelValues(tc.ctrl)); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.what, got, tc.want)
		}
	}
	if got := value(m.lastSuccess.WithLabelValues("downscaler")); got != 1_800_000_060 {
		t.Errorf("downscaler last success %v, want 1800000060 (the second pass)", got)
	}
	if n := count(m.lastSuccess); n != 1 {
		t.Errorf("%d last-success series, want 1: the janitor never succeeded", n)
	}
}

// A pass cut short by shutdown is neither a failure nor a success.
func TestPassMetricsIgnoreShutdown(t *testing.T) {
	m, err := newPassMetrics(prometheus.NewRegistry(), []string{"janitor"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), passes: m}
	passAll(ctx, []running{{Controller: fakePasser{name: "janitor", err: context.Canceled}}}, o, clocktesting.NewFakeClock(time.Unix(0, 0)))
	if got := value(m.passes.WithLabelValues("janitor")); got != 0 {
		t.Errorf("passes %v after a cancelled pass, want 0", got)
	}
}

// value reads a counter's or gauge's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.GetCounter().GetValue()
	}
	return d.GetGauge().GetValue()
}

// count is the number of series a collector has.
func count(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}
