package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), err
}

func TestLintExampleFleetPasses(t *testing.T) {
	out, err := execute(t, "--fleet", "../../../examples/fleet")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "0 error(s)") {
		t.Errorf("output: %s", out)
	}
}

func TestLintBrokenFleetFails(t *testing.T) {
	out, err := execute(t, "--fleet", "../../lint/testdata/broken-fleet", "--format", "json")
	if !errors.Is(err, ErrFindings) {
		t.Fatalf("want ErrFindings (exit 1), got %v", err)
	}
	var rep struct {
		Errors   int `json:"errors"`
		Findings []struct {
			Rule string `json:"rule"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%.300s", err, out)
	}
	if rep.Errors == 0 || len(rep.Findings) == 0 {
		t.Errorf("report: %+v", rep)
	}
}

func TestLintFlags(t *testing.T) {
	if _, err := execute(t, "--fleet", "../../../examples/fleet", "--format", "xml"); err == nil || !strings.Contains(err.Error(), "expected text or json") {
		t.Errorf("bad format: %v", err)
	}
	out, err := execute(t, "--list-rules")
	if err != nil || !strings.Contains(out, "L04-equal-instance-sizes") {
		t.Errorf("list rules: %v\n%s", err, out)
	}
}
