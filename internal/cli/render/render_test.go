package render

import (
	"bytes"
	"context"
	"errors"
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

// A cancelled context (Ctrl-C, SIGTERM) stops the render with an error
// that says so, and nothing is written.
func TestRenderStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"--fleet", "../../../examples/fleet"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rendering stopped") {
		t.Errorf("got %v, want rendering stopped, context canceled", err)
	}
	if out.Len() != 0 {
		t.Errorf("output after cancellation: %.200s", out.String())
	}
}

// An object the API server would refuse fails the render with its file
// and line.
func TestRenderRefusesOversizedObject(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../../examples/fleet/clusters/local-staging.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"clusters/local-staging.yaml": string(src),
		"manifests/big/cm.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  x: {{ repeat 1000 \"x\" }}\n  y: |\n{{ range until 2000 }}    {{ repeat 1000 \"y\" }}\n{{ end }}",
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = execute(t, "--fleet", dir)
	want := "cluster local-staging: manifests/big/cm.yaml:1 (rendered): object ConfigMap big is over 1.5 MiB (1572864 bytes) of YAML"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
