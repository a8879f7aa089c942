package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/version"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, args)
	return out.String(), err
}

func TestVersionJSON(t *testing.T) {
	out, err := run(t, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var info version.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if info.Kubernetes != version.Kubernetes || info.GoVersion == "" || info.Commit == "" {
		t.Errorf("info %+v", info)
	}
}

func TestVersionRejectsUnknownFormat(t *testing.T) {
	_, err := run(t, "version", "-o", "xml")
	if err == nil || !strings.Contains(err.Error(), "expected text or json") {
		t.Fatalf("err = %v", err)
	}
}

// Every command explains itself: a one-line summary in the root help and a
// longer description in its own.
func TestEveryCommandHasHelp(t *testing.T) {
	root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Short == "" || c.Long == "" {
			t.Errorf("command %q lacks Short or Long help", c.Name())
		}
	}
	out, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"up", "down", "version"} {
		if !strings.Contains(out, want) {
			t.Errorf("root help lacks %q", want)
		}
	}
}

func TestUnknownFlagIsAnError(t *testing.T) {
	if _, err := run(t, "up", "--nodez", "3"); err == nil || !strings.Contains(err.Error(), "unknown flag") {
		t.Fatalf("err = %v", err)
	}
}

// `bosun up` refuses bad flags before it looks for binaries or starts
// anything (issue 18 item 8); the empty --bin-dir would fail later.
func TestUpRefusesBadFlagsFirst(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--console", "0.0.0.0:8080"}, "loopback only"},
		{[]string{"--boot-delay", "0"}, "--boot-delay 0s: expected more than 0"},
		{[]string{"--boot-delay", "-1s"}, "--boot-delay -1s: expected a duration of 0 or more"},
	} {
		args := append([]string{"up", "--state-dir", t.TempDir(), "--bin-dir", t.TempDir()}, c.args...)
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to contain %q", c.args, err, c.want)
		}
	}
}
