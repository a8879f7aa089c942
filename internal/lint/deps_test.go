package lint

import (
	"os/exec"
	"strings"
	"testing"
)

// Lint checks a fleet against the agent's annotations, labels and config
// formats through the leaf packages agentapi and agentcmd; it never links
// a controller (issue #14: "lint stops importing the agent"), so `bosun
// lint` stays small and a controller's dependencies never reach it.
func TestLintDoesNotLinkTheAgent(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const agent = "github.com/bosun-platform/bosun/internal/agent"
	for _, p := range strings.Fields(string(out)) {
		if p == agent || strings.HasPrefix(p, agent+"/") {
			t.Errorf("internal/lint depends on %s; read the agent's definitions from internal/agentapi or internal/agentcmd", p)
		}
	}
}
