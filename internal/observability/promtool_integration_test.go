//go:build integration

package observability

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/controlplane"
)

// promtoolEnv is the path of the promtool binary; the Makefile exports it,
// and then a missing binary is a failure rather than a skip.
const promtoolEnv = "BOSUN_PROMTOOL"

// promtool finds the promtool `make tools` builds: $BOSUN_PROMTOOL, else
// <cache>/tools/promtool-<version pinned in hack/tools/promtool/go.mod>.
// Under make (BOSUN_PROMTOOL set) a missing binary fails the test; in a
// plain `go test -tags integration` it skips, saying how to build it.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(promtoolEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v (make tools builds it)", promtoolEnv, p, err)
		}
		return p
	}
	version, err := pinnedPromtoolVersion()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := controlplane.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(cache, "tools", "promtool-"+version)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("promtool %s not built: run `make tools` (or set %s)", p, promtoolEnv)
	}
	return p
}

func pinnedPromtoolVersion() (string, error) {
	f, err := os.Open(repoRoot + "/hack/tools/promtool/go.mod")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "github.com/prometheus/prometheus" {
			return fields[1], nil
		}
	}
	return "", errors.New("hack/tools/promtool/go.mod does not require github.com/prometheus/prometheus")
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// `promtool check rules` accepts every rendered rule file of every cluster.
func TestPromtoolCheckRules(t *testing.T) {
	promtool(t)
	dir := t.TempDir()
	var files []string
	for _, res := range renderFleet(t) {
		for i, rs := range rulesOf(t, res) {
			p := filepath.Join(dir, res.Cluster.ID+"-"+string(rune('a'+i))+".rules.yaml")
			if err := os.WriteFile(p, []byte(rs.Text), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, filepath.Base(p))
		}
	}
	runPromtool(t, dir, append([]string{"check", "rules"}, files...)...)
}

// `promtool test rules` runs the fixtures of testdata/rules against the
// tested cluster's rendered rules: every rule fires in one case and stays
// silent in another (TestEveryRuleTested checks that each has both).
func TestPromtoolTestRules(t *testing.T) {
	promtool(t)
	dir := t.TempDir()
	var text string
	for _, res := range renderFleet(t) {
		if res.Cluster.ID == testedCluster {
			text = rulesOf(t, res)[0].Text
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bosun.rules.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob("testdata/rules/*.test.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test files (%v)", err)
	}
	args := []string{"test", "rules"}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, filepath.Base(p))
	}
	runPromtool(t, dir, args...)
}

// Every dashboard query is valid PromQL: promtool checks them as the
// expressions of recording rules (Grafana's variables expanded).
func TestPromtoolCheckDashboardQueries(t *testing.T) {
	promtool(t)
	var f RuleFile
	seen := map[string]bool{}
	for _, res := range renderFleet(t) {
		ds, err := FindDashboards(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if seen[d.UID] {
				continue
			}
			seen[d.UID] = true
			g := RuleGroup{Name: d.UID}
			qs := d.Queries()
			keys := make([]string, 0, len(qs))
			for k := range qs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i, k := range keys {
				g.Rules = append(g.Rules, Rule{Record: fmt.Sprintf("dashboard:%s:%d", strings.ReplaceAll(d.UID, "-", "_"), i), Expr: ExpandGrafanaVars(qs[k])})
			}
			f.Groups = append(f.Groups, g)
		}
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboards.rules.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "dashboards.rules.yaml")
}
