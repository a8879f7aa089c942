//go:build integration

package certs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/certs"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

func runCerts(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// L27: `bosun certs` on a real API server lists its serving chain and
// kubeconfig CA, healthy, and exits 0; --fail-within longer than their
// life makes it exit 1.
func TestIntegrationCertsKubeconfig(t *testing.T) {
	env := testenv.Get(t)
	out, errOut, err := runCerts(t, "--kubeconfig", env.Kubeconfig, "-o", "json")
	if err != nil {
		t.Fatalf("certs: %v\n%s", err, errOut)
	}
	var got []certs.Assessment
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	sources := map[certs.Source]bool{}
	for _, a := range got {
		sources[a.Source] = true
		if a.Severity != certs.OK {
			t.Errorf("%s: %s", a.Where(), a.Severity)
		}
	}
	if !sources[certs.SourceServing] || !sources[certs.SourceKubeconfigCA] {
		t.Errorf("sources %v", sources)
	}
	table, _, err := runCerts(t, "--kubeconfig", env.Kubeconfig, "--fail-within", "1000d")
	if err == nil || !strings.Contains(err.Error(), "need attention") {
		t.Errorf("--fail-within 1000d: err %v", err)
	}
	if !strings.Contains(table, "apiserver-serving") || !strings.Contains(table, "CN=kube-apiserver") {
		t.Errorf("table:\n%s", table)
	}
}

// A fleet cluster without a kubeconfig context is reported as
// unreachable, the others are still scanned, and the command exits 1.
func TestIntegrationCertsFleetReportsUnreachableCluster(t *testing.T) {
	env := testenv.Get(t)
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cluster := "environment: test\nprovider: local\nregion: local\nkubernetesVersion: \"1.33\"\nchannel: dev\n"
	write("clusters/test.yaml", "id: test\n"+cluster)
	write("clusters/gone.yaml", "id: gone\n"+cluster)
	out, errOut, err := runCerts(t, "--fleet", dir, "--kubeconfig", env.Kubeconfig)
	if err == nil {
		t.Fatal("no error for an unreachable cluster")
	}
	if !strings.Contains(errOut, `cluster gone: unreachable: no kubeconfig context "gone"`) {
		t.Errorf("err %v, stderr:\n%s", err, errOut)
	}
	if !strings.Contains(out, "test  ") || !strings.Contains(out, "CN=kube-apiserver") {
		t.Errorf("the reachable cluster was not scanned:\n%s", out)
	}
}
