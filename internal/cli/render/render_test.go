package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

func execute(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestRenderOneCluster(t *testing.T) {
	out, _, err := execute(t, "--fleet", "../../../examples/fleet", "--cluster", "aws-prod-eu1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "# bosun render: cluster aws-prod-eu1 version ") || !strings.Contains(out, "# Source: manifests/coredns/coredns.yaml") {
		t.Errorf("unexpected output:\n%.400s", out)
	}
	again, _, _ := execute(t, "--fleet", "../../../examples/fleet", "--cluster", "aws-prod-eu1")
	if again != out {
		t.Error("two renders differ")
	}
}

func TestRenderAllToDir(t *testing.T) {
	dir := t.TempDir()
	_, errOut, err := execute(t, "--fleet", "../../../examples/fleet", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"aws-prod-eu1", "aws-staging-eu1", "local-prod", "local-staging"} {
		if _, err := os.Stat(filepath.Join(dir, id, ".bosun-version")); err != nil {
			t.Error(err)
		}
		if !strings.Contains(errOut, id+": ") {
			t.Errorf("no summary line for %s in %q", id, errOut)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	if out, _, err := execute(t, "--fleet", "../../../examples/fleet"); err != nil || strings.Count(out, "# bosun render: cluster ") != 4 {
		t.Errorf("all clusters to stdout: %v", err)
	}
	if _, _, err := execute(t, "--fleet", "../../../examples/fleet", "--cluster", "nope"); err == nil || !strings.Contains(err.Error(), `cluster "nope": not in fleet`) {
		t.Errorf("unknown cluster: %v", err)
	}
	if _, _, err := execute(t, "--fleet", t.TempDir(), "--cluster", "x"); err == nil || !strings.Contains(err.Error(), "expected a clusters/ directory") {
		t.Errorf("empty directory: %v", err)
	}
}
