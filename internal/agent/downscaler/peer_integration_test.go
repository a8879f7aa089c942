//go:build integration

package downscaler

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bosun-platform/bosun/internal/bench/scaleup"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// Flags of the idle side by side (pass them after -args).
var (
	peerGoKubeDownscaler = flag.String("peer-gokubedownscaler", "", "path of a GoKubeDownscaler binary (go build ./cmd/kubedownscaler in caas-team/GoKubeDownscaler) to measure beside `bosun agent`; without it the peer is skipped")
	bosunBinary          = flag.String("bosun-binary", "", "path of the bosun binary for the idle side by side (default: built from this module)")
	bosunBaseline        = flag.String("bosun-baseline", "", "path of another bosun binary (say, built from main) to measure the same way, for before/after in one run; without it, skipped")
	idleWindow           = flag.Duration("idle-window", 2*time.Minute, "how long each downscaler runs in the idle side by side, from its start")
	idleChurn            = flag.Float64("idle-churn", 0, "annotation edits per second (not the downscaler's: a deploy tool's) on the fleet's Deployments during each idle window, as rollouts in a busy cluster; 0: none")
	idleProfiles         = flag.String("idle-profiles", "", "directory to save `bosun agent`'s CPU and allocation profiles over the idle window in (default: none; profiling costs CPU, so compare runs without it)")
)

// idleKinds are the kinds both downscalers watch in the side by side.
const idleKinds = "deployments,statefulsets,cronjobs,jobs,horizontalpodautoscalers"

// idleRun is what one downscaler process cost over the idle window.
type idleRun struct {
	requests   int64
	cpuSeconds float64
	rssMB      float64
	peakMB     float64
}

func (r idleRun) report(b *testing.B) {
	b.ReportMetric(float64(r.requests), "requests")
	b.ReportMetric(r.cpuSeconds, "cpu-s")
	b.ReportMetric(r.rssMB, "rss-MB")
	b.ReportMetric(r.peakMB, "peak-rss-MB")
}

// benchIdleSideBySide runs `bosun agent --controllers downscaler` and then,
// when a binary is given, GoKubeDownscaler, one after the other, each for
// the idle window against the fleet with every workload in uptime (every
// pass has nothing to do): same kinds, same 10 s interval. Each talks to
// the API server through its own counting proxy, so requests are counted
// the same way for both (and for a baseline bosun binary, when given);
// CPU and memory are read from /proc at the end of
// the window, with the readers `bosun bench` uses for its agent.
// -idle-churn adds edits of an annotation the downscaler does not read, as
// rollouts do.
func benchIdleSideBySide(b *testing.B) {
	agent := func(bin string) func(kubeconfig, pprof string) []string {
		return func(kubeconfig, pprof string) []string {
			return []string{bin, "agent", "--kubeconfig=" + kubeconfig, "--controllers=downscaler",
				"--interval=10s", "--default-uptime=always", "--listen-address=", "--pprof-address=" + pprof,
				"--log-format=text", "--log-level=info"}
		}
	}
	var bosun idleRun
	b.Run("idle-bosun-agent", func(b *testing.B) {
		bin := *bosunBinary
		if bin == "" {
			bin = filepath.Join(b.TempDir(), "bosun")
			cmd := exec.Command("go", "build", "-o", bin, "github.com/bosun-platform/bosun/cmd/bosun")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("building bosun: %v\n%s", err, out)
			}
		}
		for i := 0; i < b.N; i++ {
			bosun = runIdle(b, "bosun-agent", agent(bin))
		}
		bosun.report(b)
	})
	b.Run("idle-bosun-agent-baseline", func(b *testing.B) {
		if *bosunBaseline == "" {
			b.Skip("no baseline bosun binary given (-args -bosun-baseline=PATH)")
		}
		var base idleRun
		for i := 0; i < b.N; i++ {
			base = runIdle(b, "bosun-agent-baseline", agent(*bosunBaseline))
		}
		base.report(b)
		if base.cpuSeconds > 0 {
			b.ReportMetric(bosun.cpuSeconds/base.cpuSeconds, "bosun/baseline-cpu")
		}
	})
	b.Run("idle-peer-gokubedownscaler", func(b *testing.B) {
		if *peerGoKubeDownscaler == "" {
			b.Skip("no GoKubeDownscaler binary given: pass -args -peer-gokubedownscaler=PATH (built with go build ./cmd/kubedownscaler from github.com/caas-team/GoKubeDownscaler) to measure it beside bosun agent")
		}
		var peer idleRun
		for i := 0; i < b.N; i++ {
			peer = runIdle(b, "gokubedownscaler", func(kubeconfig, _ string) []string {
				return []string{*peerGoKubeDownscaler, "-k", kubeconfig, "--interval=10s", "--default-uptime=always",
					"--include-resources=" + idleKinds}
			})
		}
		peer.report(b)
		if bosun.cpuSeconds > 0 && peer.cpuSeconds > 0 {
			b.ReportMetric(bosun.cpuSeconds/peer.cpuSeconds, "bosun/peer-cpu")
			b.ReportMetric(bosun.rssMB/peer.rssMB, "bosun/peer-rss")
			b.Logf("idle window %s: bosun agent %d requests, %.2f s CPU, RSS %.1f MB (peak %.1f); GoKubeDownscaler %d requests, %.2f s CPU, RSS %.1f MB (peak %.1f); CPU bosun/peer %.2f",
				*idleWindow, bosun.requests, bosun.cpuSeconds, bosun.rssMB, bosun.peakMB,
				peer.requests, peer.cpuSeconds, peer.rssMB, peer.peakMB, bosun.cpuSeconds/peer.cpuSeconds)
		}
	})
}

// runIdle starts one downscaler process (args builds its command line from
// a kubeconfig and a free loopback address for Go profiles) behind a
// counting proxy, waits out the idle window and reads what it cost.
func runIdle(b *testing.B, name string, args func(kubeconfig, pprof string) []string) idleRun {
	b.Helper()
	var requests atomic.Int64
	kubeconfig := countingProxy(b, testenv.Get(b).RESTConfig(), &requests)
	pprof, err := freeAddress()
	if err != nil {
		b.Fatal(err)
	}
	argv := args(kubeconfig, pprof)
	logPath := filepath.Join(b.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	b.StopTimer()
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopProcess(cmd, exited)
	b.StartTimer()
	stopChurn := churn(b, *idleChurn)
	defer stopChurn()
	profiled := make(chan struct{})
	if *idleProfiles != "" && name == "bosun-agent" {
		go func() {
			defer close(profiled)
			saveProfiles(b, pprof, *idleWindow-5*time.Second)
		}()
	} else {
		close(profiled)
	}
	select {
	case err := <-exited:
		log, _ := os.ReadFile(logPath)
		b.Fatalf("%s exited during the idle window: %v\n%s", name, err, log)
	case <-time.After(*idleWindow):
	}
	<-profiled
	pid := cmd.Process.Pid
	cpu, err := scaleup.CPUSeconds(pid)
	if err != nil {
		b.Fatal(err)
	}
	rss, err := scaleup.ProcStatus(pid, "VmRSS:")
	if err != nil {
		b.Fatal(err)
	}
	peak, err := scaleup.ProcStatus(pid, "VmHWM:")
	if err != nil {
		b.Fatal(err)
	}
	return idleRun{requests: requests.Load(), cpuSeconds: cpu, rssMB: float64(rss) / (1 << 20), peakMB: float64(peak) / (1 << 20)}
}

// churn edits an annotation the downscaler does not read on the fleet's
// Deployments, perSecond times a second, one Deployment after another,
// until the returned function is called.
func churn(b *testing.B, perSecond float64) (stop func()) {
	if perSecond <= 0 {
		return func() {}
	}
	c := benchClient(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n := i % (*fleetNamespaces * benchPerNS)
			body := fmt.Appendf(nil, `{"metadata":{"annotations":{"example.com/deployed-at":"%d"}}}`, i)
			_, err := c.AppsV1().Deployments(fmt.Sprintf("bench-%03d", n/benchPerNS)).Patch(ctx, fmt.Sprintf("app-%03d", n%benchPerNS), types.MergePatchType, body, metav1.PatchOptions{})
			if err != nil && ctx.Err() == nil {
				b.Errorf("churn: %v", err)
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// stopProcess stops a process started by runIdle: SIGTERM, then SIGKILL
// if it has not exited within 10 s.
func stopProcess(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	// The process was asked to stop: how it exited says nothing.
	select {
	case err := <-exited:
		_ = err
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		err := <-exited
		_ = err
	}
}

// countingProxy serves the API server on a loopback port over plain HTTP
// with the test's credentials, counting every request it forwards, and
// returns the path of a kubeconfig that points at it. Watches stream
// through it unbuffered.
func countingProxy(b *testing.B, cfg *rest.Config, n *atomic.Int64) string {
	b.Helper()
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		b.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     rt,
		FlushInterval: -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })

	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: "http://" + ln.Addr().String()}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	kc.CurrentContext = "proxy"
	path := filepath.Join(b.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// saveProfiles saves the agent's CPU profile over d, then its allocation
// profile, to the -idle-profiles directory.
func saveProfiles(b *testing.B, addr string, d time.Duration) {
	if err := os.MkdirAll(*idleProfiles, 0o755); err != nil {
		b.Errorf("profiles: %v", err)
		return
	}
	for _, p := range []struct{ path, file string }{
		{fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), "bosun-agent-cpu.pb.gz"},
		{"/debug/pprof/allocs", "bosun-agent-allocs.pb.gz"},
	} {
		if err := fetchTo(context.Background(), "http://"+addr+p.path, filepath.Join(*idleProfiles, p.file)); err != nil {
			b.Errorf("profiles: %v", err)
		}
	}
}

func fetchTo(ctx context.Context, from, to string) error {
	// The agent may still be starting: its profile server comes up first,
	// but give it a moment.
	var resp *http.Response
	for i := 0; ; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, from, nil)
		if err != nil {
			return err
		}
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		if i == 50 {
			return fmt.Errorf("fetching %s, %w", from, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("fetching " + from + ": " + resp.Status)
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func freeAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port, %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
