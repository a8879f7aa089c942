package catalogue

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/ec2catalog"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestListsAndFilters(t *testing.T) {
	out, err := run(t)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out, "\n") - 1; lines != len(ec2catalog.All()) {
		t.Errorf("%d rows, want every type (%d)", lines, len(ec2catalog.All()))
	}
	for _, want := range []string{`t3\.xlarge +burstable +4 +16 +x86_64 +0 +0 +0\.1664`, `g5\.xlarge +accelerated +4 +16 +x86_64 +1 `, `i4i\.large +storage`, `m7g\.large +general +2 +8 +arm64`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the list lacks %q", want)
		}
	}
	out, err = run(t, "--family", "m7g,t4g", "--region", "eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "USD/HOUR eu-central-1") || !strings.Contains(out, "t4g.nano") || strings.Contains(out, "m6g.") {
		t.Errorf("--family m7g,t4g:\n%s", out)
	}
	if i, j := strings.Index(out, "m7g.medium"), strings.Index(out, "m7g.16xlarge"); i < 0 || j < i {
		t.Errorf("a family reads from small to large:\n%s", out)
	}
	out, err = run(t, "--category", "accelerated", "--gpu", "--arch", "arm64", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var types []ec2catalog.InstanceType
	if err := json.Unmarshal([]byte(out), &types); err != nil {
		t.Fatal(err)
	}
	if len(types) == 0 {
		t.Fatal("no arm64 GPU types (g5g)")
	}
	for _, it := range types {
		if it.Category != "accelerated" || it.GPUs == 0 || it.Arch != "arm64" || len(it.Price) != len(ec2catalog.Regions()) {
			t.Errorf("%+v does not match the filters or lacks prices", it)
		}
	}
}

// Bad input: a clear error, nothing printed.
func TestRejectsBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--family", "m99"}, `--family "m99": not in the catalogue (families: a1, c5`},
		{[]string{"--category", "gpu"}, `--category "gpu": expected one of burstable, general`},
		{[]string{"--arch", "aarch64"}, `--arch "aarch64": expected x86_64 or arm64`},
		{[]string{"--region", "mars-1"}, `--region "mars-1": the catalogue has prices for us-east-1`},
		{[]string{"--min-vcpu", "-1"}, `--min-vcpu -1: expected 0 or more`},
		{[]string{"-o", "yaml"}, `--output "yaml": expected text or json`},
		{[]string{"refresh"}, "needs the AWS provider"},
	} {
		out, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || out != "" {
			t.Errorf("%v: error %v, output %q; want an error containing %q and no output", c.args, err, out, c.want)
		}
	}
}
