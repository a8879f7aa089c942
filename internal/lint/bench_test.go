package lint

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// writeFleet writes a fleet of n clusters into dir: the example fleet's
// defaults, manifests, snippets and vars, with clusters made from
// aws-prod-eu1 and aws-staging-eu1 in production/staging pairs.
func writeFleet(tb testing.TB, dir string, n int) {
	tb.Helper()
	src := os.DirFS(exampleFleet)
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "clusters/") || strings.HasPrefix(p, "vars/aws") || !strings.Contains(p, "/") && !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, p), data)
	})
	if err != nil {
		tb.Fatal(err)
	}
	prod, err := os.ReadFile(filepath.Join(exampleFleet, "clusters/aws-prod-eu1.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	staging, err := os.ReadFile(filepath.Join(exampleFleet, "clusters/aws-staging-eu1.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i++ {
		pair := i / 2
		prodID, stagingID := fmt.Sprintf("prod-%03d", pair), fmt.Sprintf("staging-%03d", pair)
		text, id := string(prod), prodID
		r := strings.NewReplacer("aws-prod-eu1", prodID, "aws-staging-eu1", stagingID, "prod-eu1", prodID, "111111111111", fmt.Sprintf("1%011d", pair))
		if i%2 == 1 {
			text, id = string(staging), stagingID
			r = strings.NewReplacer("aws-staging-eu1", stagingID, "staging-eu1", stagingID, "222222222222", fmt.Sprintf("2%011d", pair))
		}
		if err := writeFile(filepath.Join(dir, "clusters", id+".yaml"), []byte(r.Replace(text))); err != nil {
			tb.Fatal(err)
		}
	}
}

func writeFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// renderLint loads, renders and lints the fleet in dir, as `bosun lint` does.
func renderLint(tb testing.TB, dir string) *Report {
	f, err := fleet.Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	rep, err := Run(context.Background(), f, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

func TestGeneratedFleetPassesLint(t *testing.T) {
	dir := t.TempDir()
	writeFleet(t, dir, 6)
	rep := renderLint(t, dir)
	if rep.Errors+rep.Warnings != 0 {
		t.Errorf("generated fleet: %d errors, %d warnings: %+v", rep.Errors, rep.Warnings, rep.Findings[0])
	}
}

// BenchmarkRenderLint measures load + render + lint of a fleet of 1 and of
// 150 clusters. The 150-cluster case also reports its time and allocated
// bytes as ratios against the 1-cluster baseline, measured in the same run.
func BenchmarkRenderLint(b *testing.B) {
	one, many := b.TempDir(), b.TempDir()
	writeFleet(b, one, 1)
	writeFleet(b, many, 150)
	b.Run("clusters=1", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			renderLint(b, one)
		}
	})
	b.Run("clusters=150", func(b *testing.B) {
		b.ReportAllocs()
		// The 1-cluster baseline runs interleaved with the measured runs
		// (timer stopped), so that load from other processes on a shared
		// machine hits both alike.
		var many150, base time.Duration
		var baseBytes uint64
		var last *Report
		for i := 0; i < b.N; i++ {
			start := time.Now()
			last = renderLint(b, many)
			many150 += time.Since(start)
			b.StopTimer()
			t, bytes := measure(b, one, 10)
			base += t
			baseBytes += bytes
			b.StartTimer()
		}
		b.StopTimer()
		if last.Errors != 0 {
			b.Fatalf("150-cluster fleet has %d lint errors", last.Errors)
		}
		_, bytes := measure(b, many, 1)
		b.ReportMetric(float64(many150)/float64(base), "x-time-vs-1")
		b.ReportMetric(float64(bytes)/(float64(baseBytes)/float64(b.N)), "x-alloc-vs-1")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapSys)/(1<<20), "MiB-heap-sys")
	})
}

// measure returns the mean time and allocated bytes of n runs.
func measure(b *testing.B, dir string, n int) (time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; i < n; i++ {
		renderLint(b, dir)
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return elapsed / time.Duration(n), (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// BenchmarkRenderLintConfigMap measures what `bosun lint` does on the
// example fleet (4 clusters) plus one static ConfigMap of 20,000 and of
// 80,000 keys (about 1 MB, the fleet of issue 18), both in every
// iteration, and reports the time of 80,000 keys as a ratio of 20,000
// (x-time-4x-keys): 4 is linear, 16 quadratic.
func BenchmarkRenderLintConfigMap(b *testing.B) {
	fleets := map[int]string{20000: b.TempDir(), 80000: b.TempDir()}
	for keys, dir := range fleets {
		writeFleet(b, dir, 2)
		var cm strings.Builder
		cm.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  namespace: default\ndata:\n")
		for i := 0; i < keys; i++ {
			fmt.Fprintf(&cm, "  k%05d: v%d\n", i, i)
		}
		if err := writeFile(filepath.Join(dir, "manifests/big/cm.yaml"), []byte(cm.String())); err != nil {
			b.Fatal(err)
		}
	}
	var t20, t80 time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		renderLint(b, fleets[20000])
		t20 += time.Since(start)
		start = time.Now()
		renderLint(b, fleets[80000])
		t80 += time.Since(start)
	}
	b.ReportMetric(float64(t20.Milliseconds())/float64(b.N), "ms-20k-keys")
	b.ReportMetric(float64(t80.Milliseconds())/float64(b.N), "ms-80k-keys")
	b.ReportMetric(float64(t80)/float64(t20), "x-time-4x-keys")
}
