package ec2catalog

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	genOnce sync.Once
	genPath string
	genErr  error
)

// generator builds gen.go once for the tests.
func generator(t *testing.T) string {
	t.Helper()
	genOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ec2catalog-gen")
		if err != nil {
			genErr = err
			return
		}
		genPath = filepath.Join(dir, "gen")
		if b, err := exec.Command("go", "build", "-o", genPath, "gen.go").CombinedOutput(); err != nil {
			genErr = fmt.Errorf("go build gen.go: %w\n%s", err, b)
		}
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genPath
}

func TestCatalogue(t *testing.T) {
	cases := []struct {
		name      string
		vcpu      int
		gib       float64
		arch      string
		gpus, acc int
		category  string
	}{
		{"m5.large", 2, 8, ArchX86, 0, 0, "general"},
		{"m6i.xlarge", 4, 16, ArchX86, 0, 0, "general"},
		{"c6a.4xlarge", 16, 32, ArchX86, 0, 0, "compute"},
		{"r7i.24xlarge", 96, 768, ArchX86, 0, 0, "memory"},
		{"c5n.9xlarge", 36, 96, ArchX86, 0, 0, "compute"},
		{"m7g.2xlarge", 8, 32, ArchARM, 0, 0, "general"},
		{"m6in.8xlarge", 32, 128, ArchX86, 0, 0, "general"},
		// The types issue 16 found missing.
		{"t3.xlarge", 4, 16, ArchX86, 0, 0, "burstable"},
		{"g5.xlarge", 4, 16, ArchX86, 1, 0, "accelerated"},
		{"i4i.large", 2, 16, ArchX86, 0, 0, "storage"},
		{"m7g.large", 2, 8, ArchARM, 0, 0, "general"},
		// Odd shapes.
		{"t3.nano", 2, 0.5, ArchX86, 0, 0, "burstable"},
		{"t4g.medium", 2, 4, ArchARM, 0, 0, "burstable"},
		{"t2.micro", 1, 1, ArchX86, 0, 0, "burstable"},
		{"g4dn.12xlarge", 48, 192, ArchX86, 4, 0, "accelerated"},
		{"g5g.16xlarge", 64, 128, ArchARM, 2, 0, "accelerated"},
		{"p4d.24xlarge", 96, 1152, ArchX86, 8, 0, "accelerated"},
		{"p5.48xlarge", 192, 2048, ArchX86, 8, 0, "accelerated"},
		{"inf2.48xlarge", 192, 768, ArchX86, 0, 12, "accelerated"},
		{"trn1.32xlarge", 128, 512, ArchX86, 0, 16, "accelerated"},
		{"i3.large", 2, 15.25, ArchX86, 0, 0, "storage"},
		{"d2.8xlarge", 36, 244, ArchX86, 0, 0, "storage"},
		{"x1e.32xlarge", 128, 3904, ArchX86, 0, 0, "memory"},
		{"x2gd.medium", 1, 16, ArchARM, 0, 0, "memory"},
		{"z1d.3xlarge", 12, 96, ArchX86, 0, 0, "memory"},
		{"m6a.48xlarge", 192, 768, ArchX86, 0, 0, "general"},
		{"c7i-flex.large", 2, 4, ArchX86, 0, 0, "compute"},
		{"is4gen.medium", 1, 6, ArchARM, 0, 0, "storage"},
	}
	for _, c := range cases {
		it, ok := Lookup(c.name)
		if !ok {
			t.Errorf("%s: not in catalogue", c.name)
			continue
		}
		if it.VCPU != c.vcpu || it.MemoryGiB() != c.gib || it.Arch != c.arch || it.GPUs != c.gpus || it.Accelerators != c.acc || it.Category != c.category {
			t.Errorf("%s: got %d vCPU %g GiB %s %d GPUs %d accelerators %s, want %d %g %s %d %d %s", c.name,
				it.VCPU, it.MemoryGiB(), it.Arch, it.GPUs, it.Accelerators, it.Category, c.vcpu, c.gib, c.arch, c.gpus, c.acc, c.category)
		}
		if fam, _, _ := strings.Cut(c.name, "."); it.Family != fam {
			t.Errorf("%s: family %q", c.name, it.Family)
		}
		for _, r := range Regions() {
			if it.Price[r] <= 0 {
				t.Errorf("%s: no price in %s", c.name, r)
			}
		}
	}
	if _, ok := Lookup("m4.large"); ok {
		t.Error("m4.large: a previous generation, expected not in catalogue")
	}
	// Every family of generations 5-7 in m/c/r, with a/i/n variants, large..24xlarge.
	for _, fam := range []string{"m5", "m5a", "m5n", "m6i", "m6a", "m6in", "m7i", "m7a", "c5a", "c6i", "c6a", "c6in", "c7i", "c7a", "r5", "r5a", "r5n", "r6i", "r6a", "r6in", "r7i", "r7a"} {
		for _, size := range []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"} {
			if _, ok := Lookup(fam + "." + size); !ok {
				t.Errorf("%s.%s: missing", fam, size)
			}
		}
	}
}

// Every current family is carried, in every category, with Graviton ones
// among them; the accelerated ones have GPUs or other accelerators.
func TestFamiliesCovered(t *testing.T) {
	want := map[string][]string{
		"burstable":   {"t2", "t3", "t3a", "t4g"},
		"general":     {"a1", "m5", "m5a", "m5ad", "m5d", "m5dn", "m5n", "m5zn", "m6a", "m6g", "m6gd", "m6i", "m6id", "m6idn", "m6in", "m7a", "m7g", "m7gd", "m7i", "m7i-flex", "m8g"},
		"compute":     {"c5", "c5a", "c5ad", "c5d", "c5n", "c6a", "c6g", "c6gd", "c6gn", "c6i", "c6id", "c6in", "c7a", "c7g", "c7gd", "c7gn", "c7i", "c7i-flex", "c8g"},
		"memory":      {"r5", "r5a", "r5ad", "r5b", "r5d", "r5dn", "r5n", "r6a", "r6g", "r6gd", "r6i", "r6id", "r6idn", "r6in", "r7a", "r7g", "r7gd", "r7i", "r7iz", "r8g", "x1", "x1e", "x2gd", "x2idn", "x2iedn", "x2iezn", "x8g", "z1d"},
		"storage":     {"d2", "d3", "d3en", "h1", "i3", "i3en", "i4g", "i4i", "i7ie", "i8g", "im4gn", "is4gen"},
		"accelerated": {"dl1", "f1", "g4ad", "g4dn", "g5", "g5g", "g6", "g6e", "gr6", "inf1", "inf2", "p3", "p3dn", "p4d", "p4de", "p5", "trn1", "trn1n", "vt1"},
	}
	got := map[string]map[string]bool{}
	arm := map[string]bool{}
	for _, it := range All() {
		if got[it.Category] == nil {
			got[it.Category] = map[string]bool{}
		}
		got[it.Category][it.Family] = true
		if it.Arch == ArchARM {
			arm[it.Category] = true
		}
		if it.Category == "accelerated" && it.GPUs+it.Accelerators == 0 {
			t.Errorf("%s: accelerated without GPUs or accelerators", it.Name)
		}
		if it.Category != "accelerated" && it.GPUs+it.Accelerators != 0 {
			t.Errorf("%s: %s with GPUs or accelerators", it.Name, it.Category)
		}
	}
	for _, cat := range Categories {
		for _, fam := range want[cat] {
			if !got[cat][fam] {
				t.Errorf("%s: family %s missing", cat, fam)
			}
		}
		if !arm[cat] {
			t.Errorf("%s: no Graviton (arm64) family", cat)
		}
	}
	if len(Families()) != 103 {
		t.Errorf("%d families, want the 103 above", len(Families()))
	}
}

// table.go is what `go generate` makes of types.csv now: an edit of the
// data without regenerating fails here.
func TestGeneratedTableMatchesData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out := filepath.Join(t.TempDir(), "table.go")
	if b, err := exec.Command(generator(t), "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("gen.go: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("table.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("table.go is stale: run go generate ./internal/ec2catalog/")
	}
}

// gen.go refuses a bad row with where and what.
func TestGeneratorRefusesBadData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	header := "type,family,category,vcpu,memory_gib,arch,gpus,accelerators,price_us-east-1\n"
	cases := map[string]string{
		"m7g.large,m7g,general,2,8,aarch64,0,0,0.08\n":                                           `arch "aarch64": expected x86_64 or arm64`,
		"m7g.large,m7,general,2,8,arm64,0,0,0.08\n":                                              `family "m7": the type's family is "m7g"`,
		"m7g.large,m7g,general,0,8,arm64,0,0,0.08\n":                                             `vcpu "0": expected a positive integer`,
		"m7g.large,m7g,gpu,2,8,arm64,0,0,0.08\n":                                                 `category "gpu"`,
		"m7g.large,m7g,general,2,8,arm64,0,0,free\n":                                             `price_us-east-1 "free"`,
		"m7g.xlarge,m7g,general,4,16,arm64,0,0,0.16\nm7g.large,m7g,general,2,8,arm64,0,0,0.08\n": "not sorted",
	}
	dir := t.TempDir()
	for rows, want := range cases {
		in := filepath.Join(dir, "types.csv")
		if err := os.WriteFile(in, []byte(header+rows), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := exec.Command(generator(t), "-in", in, "-out", filepath.Join(dir, "table.go")).CombinedOutput()
		if err == nil || !strings.Contains(string(b), want) {
			t.Errorf("rows %q: %v %s; want an error containing %q", rows, err, b, want)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if genPath != "" {
		os.RemoveAll(filepath.Dir(genPath))
	}
	os.Exit(code)
}
