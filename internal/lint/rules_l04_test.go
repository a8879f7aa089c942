package lint

import (
	"strings"
	"testing"
)

// L04 knows every current family: burstable, GPU, storage and Graviton
// types (which failed as "not in the catalogue" with a hint to split the
// pool by size) raise no L04 finding in a pool of one size.
func TestL04KnowsEveryFamily(t *testing.T) {
	for _, types := range []string{"t3.xlarge", "g5.xlarge", "i4i.large", "m7g.large", "t3.xlarge, t3a.xlarge, m6i.xlarge", "m7g.large, m6g.large, t4g.large", "g5.2xlarge, g6.2xlarge"} {
		fsys := exampleFS(t)
		edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: ["+types+"]")
		rep := lintFS(t, fsys)
		for _, f := range rep.Findings {
			if f.Lesson == "L04" {
				t.Errorf("[%s]: %s %s: %s", types, f.Severity, f.Rule, f.Message)
			}
		}
	}
}

// A type the catalogue lacks is a warning with its own hint, never an
// error: lint does not fail on it.
func TestL04UnknownTypeWarns(t *testing.T) {
	fsys := exampleFS(t)
	edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: [m9z.xlarge]")
	rep := lintFS(t, fsys)
	got := byRule(rep, "L04-equal-instance-sizes")
	if len(got) != 1 {
		t.Fatalf("want one L04 finding, got %+v", got)
	}
	f := got[0]
	if f.Severity != SeverityWarning || strings.Contains(f.Hint, "split the pool") || !strings.Contains(f.Hint, "bosun catalogue") {
		t.Errorf("finding %+v: want a warning whose hint points to bosun catalogue", f)
	}
	for _, f := range rep.Findings {
		if f.Lesson == "L04" && f.Severity == SeverityError {
			t.Errorf("error for an unknown type: %+v", f)
		}
	}
}

// Mixing architectures is an error of its own, also when the sizes match;
// mixing sizes of one architecture is not an architecture error.
func TestL04ArchitectureIsItsOwnError(t *testing.T) {
	for _, c := range []struct {
		types       string
		arch, sizes int
	}{
		{"m6i.large, m7g.large", 1, 0},
		{"m6i.large, m7g.xlarge", 1, 1},
		{"m6i.large, m6i.xlarge", 0, 1},
	} {
		fsys := exampleFS(t)
		edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: ["+c.types+"]")
		rep := lintFS(t, fsys)
		arch, sizes := byRule(rep, "L04-single-architecture"), byRule(rep, "L04-equal-instance-sizes")
		if len(arch) != c.arch || len(sizes) != c.sizes {
			t.Errorf("[%s]: %d architecture and %d size findings, want %d and %d: %+v %+v", c.types, len(arch), len(sizes), c.arch, c.sizes, arch, sizes)
		}
		for _, f := range append(arch, sizes...) {
			if f.Severity != SeverityError {
				t.Errorf("[%s]: %s is a %s", c.types, f.Rule, f.Severity)
			}
		}
	}
}
