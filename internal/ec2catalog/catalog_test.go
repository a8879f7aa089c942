package ec2catalog

import "testing"

func TestCatalogue(t *testing.T) {
	if err := Err(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		vcpu int
		gib  float64
		arch string
	}{
		{"m5.large", 2, 8, "x86_64"},
		{"m6i.xlarge", 4, 16, "x86_64"},
		{"c6a.4xlarge", 16, 32, "x86_64"},
		{"r7i.24xlarge", 96, 768, "x86_64"},
		{"c5n.9xlarge", 36, 96, "x86_64"},
		{"m7g.2xlarge", 8, 32, "arm64"},
		{"m6in.8xlarge", 32, 128, "x86_64"},
	}
	for _, c := range cases {
		it, ok := Lookup(c.name)
		if !ok {
			t.Errorf("%s: not in catalogue", c.name)
			continue
		}
		if it.VCPU != c.vcpu || it.MemoryGiB() != c.gib || it.Arch != c.arch {
			t.Errorf("%s: got %d vCPU %g GiB %s, want %d %g %s", c.name, it.VCPU, it.MemoryGiB(), it.Arch, c.vcpu, c.gib, c.arch)
		}
		for _, r := range Regions() {
			if it.Price[r] <= 0 {
				t.Errorf("%s: no price in %s", c.name, r)
			}
		}
	}
	if _, ok := Lookup("t3.nano"); ok {
		t.Error("t3.nano: expected not in catalogue")
	}
	// Every family of generations 5-7 in m/c/r, with a/i/n variants, large..24xlarge.
	for _, fam := range []string{"m5", "m5a", "m5n", "m6i", "m6a", "m6in", "m7i", "m7a", "c5a", "c6i", "c6a", "c6in", "c7i", "c7a", "r5", "r5a", "r5n", "r6i", "r6a", "r6in", "r7i", "r7a"} {
		for _, size := range []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"} {
			if _, ok := Lookup(fam + "." + size); !ok {
				t.Errorf("%s.%s: missing", fam, size)
			}
		}
	}
	if n := len(All()); n < 200 {
		t.Errorf("catalogue has %d types, want >= 200", n)
	}
}
