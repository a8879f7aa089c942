//go:build integration

package lifecycle_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local"
)

// Issue 12: a standalone `bosun controller --local-cloud DIR` manages the
// node groups of local clusters through the local cloud's HTTP API, as the
// controller inside `bosun up` does: a pool changed in the fleet is
// updated, a pool added is created (not with --dry-run), a pool removed is
// deleted.
func TestIntegrationStandaloneControllerManagesLocalGroups(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorldSized(t, "test", "m5.xlarge", "", 2, 1, 2, 4) // the kubeconfig's context is bosun-test
	w.cloud.ServeInfra(w.infra)
	url, _, err := w.cloud.Serve(ctx, "standalone-token")
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	if err := local.WriteEndpoint(stateDir, local.Endpoint{URL: url, Token: "standalone-token"}); err != nil {
		t.Fatal(err)
	}
	once := func(extra ...string) string {
		t.Helper()
		args := append([]string{"controller", "--fleet", w.dir, "--kubeconfig", w.env.Kubeconfig, "--local-cloud", stateDir,
			"--once", "--e2e", "off", "--health-timeout", "2m"}, extra...)
		out, err := exec.Command(bosunBinary(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("bosun controller %v: %v\n%s", extra, err, out)
		}
		return string(out)
	}
	group := func(id string) (provider.NodeGroup, bool) {
		g, err := w.cloud.NodeGroup(ctx, id)
		return g, err == nil
	}
	once()

	// maxSize 4 -> 6, and a second pool.
	batch := "  - name: test-batch\n    role: worker\n    applicationGroup: test\n    lifecycle: on-demand\n    instanceTypes: [m5.large]\n    zones: [local-a]\n    minSize: 0\n    maxSize: 2\n"
	file := strings.Replace(clusterYAMLSized("test", "m5.xlarge", "", 2, 6), "    maxSize: 6\n", "    maxSize: 6\n"+batch, 1)
	w.write("clusters/test.yaml", file)
	out := once("--dry-run")
	if g, _ := group("test/test-workers"); g.MaxSize != 4 {
		t.Errorf("--dry-run changed test/test-workers: maxSize %d\n%s", g.MaxSize, out)
	}
	if _, ok := group("test/test-batch"); ok {
		t.Errorf("--dry-run created test/test-batch\n%s", out)
	}
	out = once()
	if g, ok := group("test/test-workers"); !ok || g.MaxSize != 6 {
		t.Errorf("test/test-workers after the pass: %+v (found %v), want maxSize 6\n%s", g, ok, out)
	}
	if g, ok := group("test/test-batch"); !ok || g.MaxSize != 2 {
		t.Errorf("test/test-batch after the pass: %+v (found %v), want created with maxSize 2\n%s", g, ok, out)
	}

	w.write("clusters/test.yaml", clusterYAMLSized("test", "m5.xlarge", "", 2, 6))
	out = once()
	if _, ok := group("test/test-batch"); ok {
		t.Errorf("test/test-batch still there after its pool was removed\n%s", out)
	}
}
