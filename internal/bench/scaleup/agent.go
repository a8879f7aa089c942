package scaleup

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/provider/local"
)

// agentControllers are the controllers of `bosun agent` the trial runs:
// every one there was when the benchmark was written (this package cannot
// import the agent's registration table: the downscaler's tests import it).
func agentControllers() []string {
	return []string{agentcmd.ControllerDownscaler, agentcmd.ControllerJanitor, agentcmd.ControllerOverprovisioner,
		agentcmd.ControllerProvisioner, agentcmd.ControllerInterruption, agentcmd.ControllerScaleDown, agentcmd.ControllerReaper}
}

// agentOverprovisioning is the overprovisioner's rule for the agent's
// run: cluster-proportional-autoscaler's common default (one pause pod per
// 16 cores or 16 nodes).
const agentOverprovisioning = `{"coresPerReplica": 16, "nodesPerReplica": 16, "min": 1}`

// agentProcess is `bosun agent` running against a trial's cluster.
type agentProcess struct {
	pid int
	// stop stops the process (once, however often it is called).
	stop func()
	// pprof is the loopback address of the agent's Go profiles.
	pprof string
	// profiles is the directory heap profiles are saved to ("" = none).
	profiles string
	started  time.Time
}

// startAgent serves the trial's cloud on loopback, writes its endpoint
// file and starts `bosun agent` with every controller against the
// cluster, in dry-run: it builds every informer and makes every decision
// (what its memory is made of) but changes nothing, so the provisioner
// measured in this process stays the only one acting. Its Go profiles are
// served on a free loopback port, for its live heap at the end of the run
// (and the heap profiles saved to profiles, when set).
func (t *trial) startAgent(command []string, profiles string) (*agentProcess, error) {
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
	if profiles != "" {
		if err := os.MkdirAll(profiles, 0o755); err != nil { //nolint:gosec // G301: profiles are for the user to read with go tool pprof
			return nil, fmt.Errorf("creating the profile directory, %w", err)
		}
	}
	return t.launchAgent(command, "bosun-agent.log", profiles, "")
}

// launchAgent starts `bosun agent` against the trial's cluster and cloud
// (startAgent prepared them), its profiles on a free loopback port and its
// metrics and probes on listen ("": none).
func (t *trial) launchAgent(command []string, logName, profiles, listen string) (*agentProcess, error) {
	pprof, err := freeLoopbackAddress()
	if err != nil {
		return nil, err
	}
	args := append(append([]string(nil), command[1:]...), AgentArgs(t.cp.KubeconfigPath, t.cp.Dir, listen)...)
	args = append(args, "--pprof-address="+pprof)
	logPath := filepath.Join(t.cp.Dir, "logs", logName)
	t.progress("starting %s %s (log %s)", command[0], strings.Join(args, " "), logPath)
	stop, pid, err := launch(command[0], args, logPath)
	if err != nil {
		return nil, err
	}
	return &agentProcess{pid: pid, stop: sync.OnceFunc(stop), pprof: pprof, profiles: profiles, started: time.Now()}, nil
}

// restartedAgent starts a second agent once every pod is there, as after
// a restart or a new leader: its caches sync from lists of every pod, not
// from pods arriving one by one. It waits for /readyz (the caches synced)
// and a few passes, and reports the agent's memory then and its peak.
func (t *trial) restartedAgent(ctx context.Context, command []string, autoscaler string) []Result {
	listen, err := freeLoopbackAddress()
	if err != nil {
		return []Result{{Name: "agent-restart", Autoscaler: autoscaler, Skipped: err.Error()}}
	}
	a, err := t.launchAgent(command, "bosun-agent-restart.log", "", listen)
	if err != nil {
		return []Result{{Name: "agent-restart", Autoscaler: autoscaler, Skipped: err.Error()}}
	}
	defer a.stop()
	start := time.Now()
	err = waitFor(ctx, 5*time.Minute, 200*time.Millisecond, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+"/readyz", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil // not listening yet
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return []Result{{Name: "agent-restart", Autoscaler: autoscaler, Skipped: "waiting for the restarted agent's caches: " + err.Error()}}
	}
	synced := time.Since(start)
	t.progress("restarted agent synced in %s; RSS %s", synced.Round(100*time.Millisecond), a.rss())
	// The scale-down and the reaper pass every 10 s.
	select {
	case <-ctx.Done():
	case <-time.After(15 * time.Second):
	}
	what := "a second `bosun agent` (same controllers, dry-run) started once every pod was bound, as after a restart: its caches sync from lists of every pod"
	out := []Result{seconds("agent-restart-sync", autoscaler, synced.Seconds()).note("start to /readyz (every informer cache synced), " + what)}
	return append(out, a.residentMemory("agent-restart-rss", autoscaler, what+", 15 s after it synced", "; ")...)
}

// residentMemory reports the agent's RSS now (name) and at its peak
// (name-peak) against the 150 MB target; the RSS note ends with sep and
// the anonymous and file-backed split.
func (a *agentProcess) residentMemory(name, autoscaler, what, sep string) []Result {
	var out []Result
	for _, f := range []struct{ name, field string }{{name, "VmRSS:"}, {name + "-peak", "VmHWM:"}} {
		b, err := ProcStatus(a.pid, f.field)
		if err != nil {
			out = append(out, Result{Name: f.name, Autoscaler: autoscaler, Skipped: err.Error()})
			continue
		}
		mb := float64(b) / (1 << 20)
		note := what
		if f.field == "VmRSS:" {
			note += sep + a.rss()
		}
		out = append(out, Result{Name: f.name, Autoscaler: autoscaler, MB: ptrTo(mb), Target: "< 150 MB", Met: ptrTo(mb < 150), Note: note})
	}
	return out
}

// freeLoopbackAddress returns a loopback address with a port nobody
// listens on now.
func freeLoopbackAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port for the agent's profiles, %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("finding a free port for the agent's profiles, %w", err)
	}
	return addr, nil
}

// AgentArgs are the arguments of `bosun agent` for the scale scenario:
// every controller, dry-run, the local cloud's state directory, the HTTP
// listener on listen ("": none, so several benchmarks may run side by
// side).
func AgentArgs(kubeconfig, stateDir, listen string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(agentControllers(), ","),
		"--overprovisioner-configmap=" + overprovisionerNamespace + "/" + overprovisioningConfigMap,
		"--provider=local", "--local-cloud=" + stateDir, "--cluster=" + clusterID,
		"--dry-run", "--listen-address=" + listen, "--log-format=text", "--log-level=warn",
	}
}

// rss is the agent's resident memory now, in MB, for progress lines: all
// of it, and its anonymous (heap, stacks) and file-backed (the executable's
// pages) parts.
func (a *agentProcess) rss() string {
	var mb [3]float64
	for i, field := range []string{"VmRSS:", "RssAnon:", "RssFile:"} {
		b, err := ProcStatus(a.pid, field)
		if err != nil {
			return "?"
		}
		mb[i] = float64(b) / (1 << 20)
	}
	return fmt.Sprintf("%.0f MB (anon %.0f, file %.0f)", mb[0], mb[1], mb[2])
}

// saveHeapProfile saves the agent's heap profile as name in the profile
// directory, if there is one (after a GC with gc).
func (a *agentProcess) saveHeapProfile(ctx context.Context, name string, gc bool) error {
	if a.profiles == "" {
		return nil
	}
	q := ""
	if gc {
		q = "?gc=1"
	}
	body, err := a.get(ctx, "/debug/pprof/heap"+q)
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.Create(filepath.Join(a.profiles, name))
	if err != nil {
		return fmt.Errorf("saving the agent's heap profile, %w", err)
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return fmt.Errorf("saving the agent's heap profile, %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving the agent's heap profile, %w", err)
	}
	return nil
}

func (a *agentProcess) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.pprof+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the agent's %s, %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("reading the agent's %s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

// runtimeStats asks the agent for its heap profile after a full GC and
// returns the runtime statistics at its end (HeapAlloc, HeapInuse, NumGC,
// GCCPUFraction...).
func (a *agentProcess) runtimeStats(ctx context.Context) (map[string]float64, error) {
	body, err := a.get(ctx, "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	out := map[string]float64{}
	s := bufio.NewScanner(body)
	s.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for s.Scan() {
		name, v, ok := strings.Cut(strings.TrimPrefix(s.Text(), "# "), " = ")
		if !ok || !strings.HasPrefix(s.Text(), "# ") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[name] = f
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading the agent's heap profile, %w", err)
	}
	for _, name := range []string{"HeapAlloc", "HeapInuse", "NumGC", "GCCPUFraction"} {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("no %s in the agent's heap profile", name)
		}
	}
	return out, nil
}

// CPUSeconds is the CPU time the process used so far (user and system),
// from /proc/PID/stat. Other benchmarks (the downscaler's side by side with
// a peer) read their subprocesses with it too.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d, %w", pid, err)
	}
	// The command may hold spaces; the fields after it may not.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	var ticks float64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing /proc/%d/stat, %w", pid, err)
		}
		ticks += v
	}
	return ticks / 100, nil // USER_HZ
}

// memory reports the agent's resident memory now and at its peak, then
// its live heap after a GC (read last, so the GC it forces does not touch
// the resident figures).
func (a *agentProcess) memory(ctx context.Context, autoscaler string) []Result {
	what := "`bosun agent` with " + strings.Join(agentControllers(), ", ") + " in dry-run (same informers and decisions, no changes), its own process"
	out := a.residentMemory("agent-rss", autoscaler, what, "; now ")
	cpu, cpuErr := CPUSeconds(a.pid)
	uptime := time.Since(a.started)
	stats, err := a.runtimeStats(ctx)
	if err != nil {
		return append(out, Result{Name: "agent-heap-live", Autoscaler: autoscaler, Skipped: err.Error()})
	}
	out = append(out, Result{Name: "agent-heap-live", Autoscaler: autoscaler, MB: ptrTo(stats["HeapAlloc"] / (1 << 20)),
		Note: fmt.Sprintf("the agent's live Go objects after a forced GC at the end of the run (HeapAlloc; heap spans in use %.1f MB), read through its --pprof-address", stats["HeapInuse"]/(1<<20))})
	if cpuErr != nil {
		out = append(out, Result{Name: "agent-cpu", Autoscaler: autoscaler, Skipped: cpuErr.Error()})
	} else {
		// GCCPUFraction is of GOMAXPROCS (this machine's CPUs) times
		// uptime, and counts the mark workers that only use idle CPUs.
		out = append(out, seconds("agent-cpu", autoscaler, cpu).note(fmt.Sprintf(
			"the agent's CPU time (user and system) over its %s on %d CPUs: %.0f GC cycles, GCCPUFraction %.4f (idle-CPU mark workers included)",
			uptime.Round(time.Second), runtime.NumCPU(), stats["NumGC"], stats["GCCPUFraction"])))
	}
	if err := a.saveHeapProfile(ctx, "heap-end.pb.gz", false); err != nil {
		out = append(out, Result{Name: "agent-heap-profile", Autoscaler: autoscaler, Skipped: err.Error()})
	}
	return out
}
