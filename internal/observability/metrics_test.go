package observability

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agent/janitor"
)

const repoRoot = "../.."

func scanRepo(t *testing.T) []Metric {
	t.Helper()
	ms, err := ScanMetrics(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func readDoc(t *testing.T) []DocMetric {
	t.Helper()
	f, err := os.Open(repoRoot + "/docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := ParseMetricsDoc(f)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// docs/metrics.md and the metrics the code registers agree: every
// registered metric has a row with its type and labels, and every row of a
// component's table is registered. A metric added later (a new provider's,
// a new controller's) fails here with the rows to add.
func TestMetricsDocumented(t *testing.T) {
	registered := scanRepo(t)
	rows := readDoc(t)
	doc := map[string]DocMetric{}
	for _, r := range rows {
		if prev, dup := doc[r.Name]; dup {
			t.Errorf("docs/metrics.md:%d: %s documented again (first at line %d)", r.Line, r.Name, prev.Line)
		}
		doc[r.Name] = r
	}
	var missing []string
	reg := map[string]bool{}
	for _, m := range registered {
		reg[m.Name] = true
		r, ok := doc[m.Name]
		switch {
		case !ok:
			missing = append(missing, DocRow(m)+"  <- "+m.Pos)
		case r.Kind == DocPlanned:
			t.Errorf("docs/metrics.md:%d: %s is listed as planned but %s registers it: move the row to its component's table", r.Line, m.Name, m.Pos)
		case r.Kind == DocExternal:
			t.Errorf("docs/metrics.md:%d: %s is listed as external but %s registers it", r.Line, m.Name, m.Pos)
		default:
			if r.Type != m.Type {
				t.Errorf("docs/metrics.md:%d: %s is a %s (%s), the document says %s", r.Line, m.Name, m.Type, m.Pos, r.Type)
			}
			if !slices.Equal(sorted(r.Labels), sorted(m.Labels)) {
				t.Errorf("docs/metrics.md:%d: %s has labels %v (%s), the document says %v", r.Line, m.Name, m.Labels, m.Pos, r.Labels)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/metrics.md lacks %d registered metric(s); add these rows to the component's table (type and labels from the code, meaning from the help text):\n%s",
			len(missing), strings.Join(missing, "\n"))
	}
	for _, r := range rows {
		if r.Kind == DocRegistered && !reg[r.Name] {
			t.Errorf("docs/metrics.md:%d: %s is documented but no component registers it (renamed or removed? move it to Planned if its exporter is not built yet)", r.Line, r.Name)
		}
	}
}

var (
	metricName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// Units that are not base units (seconds, bytes, ratios, cores).
	nonBaseUnit = regexp.MustCompile(`_(milliseconds|microseconds|nanoseconds|ms|minutes|hours|days|kilobytes|megabytes|gigabytes|kb|mb|gb|percent|millicores)(_|$)`)
)

// Bosun's metrics follow Prometheus' naming conventions: a bosun_ prefix,
// snake case, base units, _total on counters and only on counters.
func TestMetricNamingConventions(t *testing.T) {
	for _, m := range scanRepo(t) {
		if !strings.HasPrefix(m.Name, "bosun_") {
			t.Errorf("%s: %s lacks the bosun_ prefix", m.Pos, m.Name)
		}
		if !metricName.MatchString(m.Name) {
			t.Errorf("%s: %s is not snake case", m.Pos, m.Name)
		}
		if m.Type == "counter" && !strings.HasSuffix(m.Name, "_total") {
			t.Errorf("%s: counter %s does not end in _total", m.Pos, m.Name)
		}
		if m.Type != "counter" && strings.HasSuffix(m.Name, "_total") {
			t.Errorf("%s: %s %s ends in _total, which is for counters", m.Pos, m.Type, m.Name)
		}
		if nonBaseUnit.MatchString(m.Name) {
			t.Errorf("%s: %s uses a unit that is not a base unit (seconds, bytes, ratio)", m.Pos, m.Name)
		}
		if m.Type == "histogram" && strings.Contains(m.Name, "duration") && !strings.HasSuffix(m.Name, "_seconds") {
			t.Errorf("%s: duration histogram %s is not in seconds", m.Pos, m.Name)
		}
		if m.Help == "" {
			t.Errorf("%s: %s has no help text", m.Pos, m.Name)
		}
		for _, l := range m.Labels {
			if !metricName.MatchString(l) {
				t.Errorf("%s: %s label %q is not snake case", m.Pos, m.Name, l)
			}
		}
	}
}

// recorder is a Registerer that keeps what is registered.
type recorder struct{ cs []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error   { r.cs = append(r.cs, c); return nil }
func (r *recorder) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recorder) Unregister(prometheus.Collector) bool    { return false }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// The source scan sees what the constructors really register: every
// descriptor of the agent controllers' metrics is among the scanned names.
func TestScanMatchesRegistries(t *testing.T) {
	scanned := map[string]bool{}
	for _, m := range scanRepo(t) {
		scanned[m.Name] = true
	}
	rec := &recorder{}
	downscaler.NewMetrics(rec)
	janitor.NewMetrics(rec)
	if _, err := capacity.NewCapacityMetrics(rec); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range rec.cs {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			n++
			if !scanned[m[1]] {
				t.Errorf("%s is registered but the source scan did not find it", m[1])
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d descriptors registered; the constructors changed?", n)
	}
}

func TestScanMetricsFixtures(t *testing.T) {
	got, err := ScanMetrics("testdata/scan/good")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bosun_aws_api_requests_total counter [operation code]", "bosun_aws_up gauge []"}
	var have []string
	for _, m := range got {
		have = append(have, fmt.Sprint(m.Name, " ", m.Type, " ", m.Labels))
	}
	if !slices.Equal(have, want) {
		t.Errorf("scan of testdata/scan/good = %q, want %q", have, want)
	}
	_, err = ScanMetrics("testdata/scan/bad")
	if err == nil {
		t.Fatal("scan of testdata/scan/bad: no error")
	}
	for _, want := range []string{"internal/x/metrics.go:7: Name is not a string literal or constant", "internal/x/metrics.go:9: desc d (bosun_x_unused) is never used in a const metric"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
