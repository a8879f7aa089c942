//go:build integration

package controlplane_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/controlplane"
)

// BenchmarkControlPlaneStart measures, in one run, the time from Start to
// ready of a bare control plane (etcd + kube-apiserver, the baseline) and of
// a full one (plus kube-scheduler, kube-controller-manager and kwok), the
// ratio full/bare, and the resident memory of each process after it has
// idled for a few seconds.
func BenchmarkControlPlaneStart(b *testing.B) {
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		b.Fatal(err)
	}
	var bare, full time.Duration
	rss := map[string]float64{}
	for i := 0; i < b.N; i++ {
		bare += timeStart(b, controlplane.Options{Name: "bench-bare", Binaries: bins}, nil)
		full += timeStart(b, controlplane.Options{
			Name: "bench-full", Binaries: bins,
			Scheduler: true, ControllerManager: true, Kwok: true,
		}, func(cp *controlplane.ControlPlane) {
			time.Sleep(5 * time.Second) // let start-up garbage settle
			for _, p := range cp.Processes() {
				mb, err := rssMB(p.PID)
				if err != nil {
					b.Fatalf("reading RSS of %s: %v", p.Name, err)
				}
				rss[p.Name] += mb
			}
		})
	}
	n := float64(b.N)
	b.ReportMetric(float64(bare.Milliseconds())/n, "bare-ms")
	b.ReportMetric(float64(full.Milliseconds())/n, "full-ms")
	b.ReportMetric(float64(full)/float64(bare), "full/bare")
	for name, total := range rss {
		b.ReportMetric(total/n, name+"-MB")
	}
	b.ReportMetric(0, "ns/op") // the per-op time mixes both starts; the metrics above are the figures
}

// timeStart starts a control plane, returns how long Start took, runs idle
// (outside the timing) and stops it.
func timeStart(b *testing.B, opts controlplane.Options, idle func(*controlplane.ControlPlane)) time.Duration {
	b.Helper()
	begin := time.Now()
	cp, err := controlplane.Start(context.Background(), opts)
	took := time.Since(begin)
	if err != nil {
		b.Fatal(err)
	}
	if idle != nil {
		idle(cp)
	}
	if err := cp.Stop(); err != nil {
		b.Fatal(err)
	}
	return took
}

// rssMB reads VmRSS of a process from /proc.
func rssMB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
