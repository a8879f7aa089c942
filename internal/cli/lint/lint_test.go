package lint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
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

// With errors, the text report still ends with the summary on a line of
// its own, so the error bosun prints next ("bosun: lint found errors")
// starts a new line.
func TestLintBrokenFleetTextEndsWithSummaryLine(t *testing.T) {
	out, err := execute(t, "--fleet", "../../lint/testdata/broken-fleet")
	if !errors.Is(err, ErrFindings) {
		t.Fatalf("want ErrFindings (exit 1), got %v", err)
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("the report does not end with a newline: %q", out[max(0, len(out)-80):])
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if last := lines[len(lines)-1]; !regexp.MustCompile(`^[1-9]\d* error\(s\), \d+ warning\(s\), \d+ suppressed$`).MatchString(last) {
		t.Errorf("last line %q, want the summary", last)
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

// A cancelled context (Ctrl-C, SIGTERM) stops lint with an error that
// says so, and no report.
func TestLintStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs([]string{"--fleet", "../../../examples/fleet"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrFindings) {
		t.Errorf("got %v, want context canceled", err)
	}
	if out.Len() != 0 {
		t.Errorf("output after cancellation: %.200s", out.String())
	}
}
