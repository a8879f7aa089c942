package scaleup

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bosun-platform/bosun/internal/provider/local"
)

// agentControllers are every controller of `bosun agent`.
var agentControllers = []string{"downscaler", "janitor", "overprovisioner", "provisioner", "interruption"}

// agentOverprovisioning is the overprovisioner's rule for the agent's
// run: cluster-proportional-autoscaler's common default (one pause pod per
// 16 cores or 16 nodes).
const agentOverprovisioning = `{"coresPerReplica": 16, "nodesPerReplica": 16, "min": 1}`

// agentProcess is `bosun agent` running against a trial's cluster.
type agentProcess struct {
	pid  int
	stop func()
}

// startAgent serves the trial's cloud on loopback, writes its endpoint
// file and starts `bosun agent` with every controller against the
// cluster, in dry-run: it builds every informer and makes every decision
// (what its memory is made of) but changes nothing, so the provisioner
// measured in this process stays the only one acting.
func (t *trial) startAgent(command []string) (*agentProcess, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generating the local cloud's token, %w", err)
	}
	token := hex.EncodeToString(b)
	url, _, err := t.cloud.Serve(t.runCtx, token)
	if err != nil {
		return nil, fmt.Errorf("serving the local cloud for bosun agent, %w", err)
	}
	if err := local.WriteEndpoint(t.cp.Dir, local.Endpoint{URL: url, Token: token}); err != nil {
		return nil, err
	}
	if err := t.overprovisioningConfig(t.runCtx, &OverprovisioningSpec{Linear: agentOverprovisioning}); err != nil {
		return nil, err
	}
	args := append(append([]string(nil), command[1:]...), AgentArgs(t.cp.KubeconfigPath, filepath.Join(t.cp.Dir, local.EndpointFile))...)
	logPath := filepath.Join(t.cp.Dir, "logs", "bosun-agent.log")
	t.progress("starting %s %s (log %s)", command[0], strings.Join(args, " "), logPath)
	stop, pid, err := launch(command[0], args, logPath)
	if err != nil {
		return nil, err
	}
	return &agentProcess{pid: pid, stop: stop}, nil
}

// AgentArgs are the arguments of `bosun agent` for the scale scenario:
// every controller, dry-run, the local cloud's endpoint file, no HTTP
// listener (several benchmarks may run side by side).
func AgentArgs(kubeconfig, endpointFile string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(agentControllers, ","),
		"--overprovisioner-configmap=" + overprovisionerNamespace + "/" + overprovisioningConfigMap,
		"--provider=local", "--local-cloud=" + endpointFile, "--cluster=" + clusterID,
		"--dry-run", "--listen-address=", "--log-format=text", "--log-level=warn",
	}
}

// memory reports the agent's resident memory now and at its peak.
func (a *agentProcess) memory(autoscaler string) []Result {
	what := "`bosun agent` with " + strings.Join(agentControllers, ", ") + " in dry-run (same informers and decisions, no changes), its own process"
	var out []Result
	for _, f := range []struct{ name, field string }{{"agent-rss", "VmRSS:"}, {"agent-rss-peak", "VmHWM:"}} {
		b, err := procStatus(a.pid, f.field)
		if err != nil {
			out = append(out, Result{Name: f.name, Autoscaler: autoscaler, Skipped: err.Error()})
			continue
		}
		mb := float64(b) / (1 << 20)
		out = append(out, Result{Name: f.name, Autoscaler: autoscaler, MB: ptrTo(mb), Target: "< 150 MB", Met: ptrTo(mb < 150), Note: what})
	}
	return out
}
