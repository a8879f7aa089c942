package observability

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// pinnedVersion reads a module's version from a go.mod's require lines.
func pinnedVersion(goMod, module string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s, %w", goMod, err)
	}
	return "", fmt.Errorf("%s does not require %s", goMod, module)
}

// The Prometheus server of the live alert test and the promtool of the
// rule tests come from the same pinned module, so the rules proven by one
// are evaluated by the same engine in the other.
func TestPrometheusPinnedLikePromtool(t *testing.T) {
	const mod = "github.com/prometheus/prometheus"
	promtool, err := pinnedVersion(repoRoot+"/hack/tools/promtool/go.mod", mod)
	if err != nil {
		t.Fatal(err)
	}
	server, err := pinnedVersion(repoRoot+"/hack/tools/prometheus/go.mod", mod)
	if err != nil {
		t.Fatal(err)
	}
	if promtool != server {
		t.Errorf("hack/tools/prometheus/go.mod pins %s %s, hack/tools/promtool/go.mod %s: pin both to one version", mod, server, promtool)
	}
}
