// Package controlplane starts and stops real Kubernetes control planes on
// this machine: etcd and kube-apiserver, optionally kube-scheduler,
// kube-controller-manager and kwok (which simulates nodes and pods). It is
// the engine of Bosun's local provider and of the integration-test harness.
//
// Every control plane has its own loopback ports and directory, so several
// run side by side; every process it starts is recorded by PID and stopped
// by PID.
package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// serviceCIDR is the cluster's service range; serviceIP its first address,
// the in-cluster address of the API server.
const (
	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1"
	podCIDR     = "10.244.0.0/16"
)

// Options configure a control plane. The zero value plus Binaries starts a
// bare control plane (etcd and kube-apiserver) in a temporary directory.
type Options struct {
	// Name identifies the cluster in the kubeconfig and in logs ("local").
	Name string
	// Dir holds data, certificates, logs and the kubeconfig. Empty means a
	// temporary directory that Stop removes.
	Dir string
	// Binaries are the programs to run (see FindBinaries).
	Binaries Binaries
	// Scheduler, ControllerManager and Kwok add those components. Pods only
	// run with all three.
	Scheduler, ControllerManager, Kwok bool
	// MetricsServer adds metrics-server (needs Kwok and
	// Binaries.MetricsServer): kwok serves each node's and container's
	// simulated usage on a kubelet-like /metrics/resource endpoint (a
	// fraction of the requests: the pod annotation
	// bosun.dev/usage-fraction, default 0.5), and the metrics API
	// (metrics.k8s.io, `kubectl top`) serves it through the aggregation
	// layer.
	MetricsServer bool
	// SchedulerQPS, if set, sets kube-scheduler's API request rate
	// (default 200 per second, which bounds it to about 200 bindings a
	// second; see componentQPS): for benchmarks that create thousands of
	// pods.
	SchedulerQPS int
	// NodeBootDelay is how long a new kwok Node stays NotReady before it
	// turns Ready, unless the node's bosun.dev/boot-delay annotation says
	// otherwise. Zero boots at once.
	NodeBootDelay time.Duration
	// JobPodRunTime is how long a Job's pod runs before it succeeds
	// (default 1s).
	JobPodRunTime time.Duration
	// UnsafeNoFsync makes etcd skip fsync: much faster, but a machine crash
	// can lose data. For tests and throwaway clusters.
	UnsafeNoFsync bool
	// StartTimeout bounds Start (default 2 minutes).
	StartTimeout time.Duration
	// Logf, if set, receives one line per start-up step.
	Logf func(format string, args ...any)
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Name is the cluster name from Options.
	Name string
	// Dir is the control plane's directory.
	Dir string
	// URL is the API server's https URL on loopback.
	URL string
	// KubeconfigPath is an admin kubeconfig for this control plane.
	KubeconfigPath string

	token   string
	caPEM   []byte
	tempDir bool
	kwok    bool
	procs   []*process
	ports   []int
}

// componentLogs names the log file of each component in the log directory.
func logPath(dir, name string) string { return filepath.Join(dir, "logs", name+".log") }

// Start starts a control plane and returns once every requested component is
// ready: the API server answers /readyz, the scheduler and controller-manager
// hold their leader leases, kwok answers /healthz. On any failure it stops
// whatever it started and returns an error with the failing component's log
// tail. A port taken between choosing and binding it is retried with fresh
// ports.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.Name == "" {
		opts.Name = "local"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.JobPodRunTime == 0 {
		opts.JobPodRunTime = time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.MetricsServer && (!opts.Kwok || opts.Binaries.MetricsServer == "") {
		return nil, fmt.Errorf("options: MetricsServer needs Kwok and Binaries.MetricsServer (make tools builds metrics-server)")
	}
	if opts.Binaries.Etcd == "" || opts.Binaries.APIServer == "" {
		return nil, errors.New("controlplane: Options.Binaries is empty; use FindBinaries")
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cp, err := startOnce(ctx, opts)
		if err == nil {
			return cp, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			break
		}
		opts.Logf("[%s] a port was taken while starting; retrying with new ports", opts.Name)
	}
	return nil, lastErr
}

func startOnce(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	cp := &ControlPlane{Name: opts.Name, Dir: opts.Dir}
	if cp.Dir == "" {
		dir, err := os.MkdirTemp("", "bosun-cp-"+opts.Name+"-")
		if err != nil {
			return nil, fmt.Errorf("creating control-plane dir, %w", err)
		}
		cp.Dir, cp.tempDir = dir, true
	}
	defer func() {
		if err != nil {
			_ = cp.Stop()
		}
	}()
	for _, sub := range []string{"logs", "etcd", "pki"} {
		if err := os.MkdirAll(filepath.Join(cp.Dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("creating %s dir, %w", sub, err)
		}
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	cp.ports = ports
	etcdClient, etcdPeer, apiPort, kwokPort, metricsPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	cp.URL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)

	pki, err := writePKI(filepath.Join(cp.Dir, "pki"), time.Now())
	if err != nil {
		return nil, err
	}
	cp.caPEM = pki.CAPEM
	if cp.token, err = randomToken(); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(cp.Dir, "pki", "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(cp.token+",bosun-admin,bosun-admin,system:masters\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing token file, %w", err)
	}
	cp.KubeconfigPath = filepath.Join(cp.Dir, "kubeconfig")
	if err := writeKubeconfig(cp.KubeconfigPath, cp.Name, cp.URL, cp.caPEM, cp.token); err != nil {
		return nil, err
	}

	opts.Logf("[%s] starting etcd on https://127.0.0.1:%d (client certificates only)", opts.Name, etcdClient)
	etcd, err := cp.start("etcd", opts.Binaries.Etcd, etcdArgs(cp.Dir, pki, etcdClient, etcdPeer, opts.UnsafeNoFsync))
	if err != nil {
		return nil, err
	}
	opts.Logf("[%s] starting kube-apiserver on %s", opts.Name, cp.URL)
	api, err := cp.start("kube-apiserver", opts.Binaries.APIServer, apiServerArgs(pki, tokenFile, etcdClient, apiPort))
	if err != nil {
		return nil, err
	}
	if err := cp.waitAPIReady(ctx, etcd, api); err != nil {
		return nil, err
	}
	opts.Logf("[%s] kube-apiserver ready", opts.Name)

	var leases []string
	if opts.Scheduler {
		if _, err := cp.start("kube-scheduler", opts.Binaries.Scheduler, schedulerArgs(cp.KubeconfigPath, opts.SchedulerQPS)); err != nil {
			return nil, err
		}
		leases = append(leases, "kube-scheduler")
	}
	if opts.ControllerManager {
		if _, err := cp.start("kube-controller-manager", opts.Binaries.ControllerManager, controllerManagerArgs(cp.KubeconfigPath, pki)); err != nil {
			return nil, err
		}
		leases = append(leases, "kube-controller-manager")
	}
	var kwok *process
	if opts.Kwok {
		stages, err := renderStages(opts.NodeBootDelay, opts.JobPodRunTime)
		if err != nil {
			return nil, err
		}
		if opts.MetricsServer {
			metrics, err := stageFiles.ReadFile("stages/metrics.yaml")
			if err != nil {
				return nil, fmt.Errorf("reading kwok metrics, %w", err)
			}
			stages = append(append(stages, "\n---\n"...), metrics...)
		}
		stagesPath := filepath.Join(cp.Dir, "kwok-stages.yaml")
		if err := os.WriteFile(stagesPath, stages, 0o600); err != nil {
			return nil, fmt.Errorf("writing kwok stages, %w", err)
		}
		cp.kwok = true
		if kwok, err = cp.start("kwok", opts.Binaries.Kwok, kwokArgs(cp.KubeconfigPath, stagesPath, kwokPort, opts.MetricsServer)); err != nil {
			return nil, err
		}
	}
	if err := cp.waitComponents(ctx, leases, kwok, kwokPort); err != nil {
		return nil, err
	}
	if opts.MetricsServer {
		if err := cp.startMetricsServer(ctx, opts.Binaries.MetricsServer, metricsPort); err != nil {
			return nil, err
		}
	}
	opts.Logf("[%s] control plane ready (%d processes, kubeconfig %s)", opts.Name, len(cp.procs), cp.KubeconfigPath)
	return cp, nil
}

// start launches one component and records its PID.
func (cp *ControlPlane) start(name, binary string, args []string) (*process, error) {
	p, err := startProcess(name, binary, args, logPath(cp.Dir, name))
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	if err := writePIDs(cp.Dir, cp.Processes()); err != nil {
		return nil, err
	}
	return p, nil
}

// Processes describes the processes this control plane started, in start
// order.
func (cp *ControlPlane) Processes() []ProcessInfo {
	out := make([]ProcessInfo, 0, len(cp.procs))
	for _, p := range cp.procs {
		out = append(out, ProcessInfo{Name: p.name, PID: p.pid(), Binary: p.binary, LogPath: p.logPath})
	}
	return out
}

// Ports are the loopback ports this control plane reserved.
func (cp *ControlPlane) Ports() []int { return append([]int(nil), cp.ports...) }

// KwokURL is the base URL of kwok's HTTP server on loopback, which serves
// the simulated kubelet resource metrics at
// /metrics/nodes/NODE/metrics/resource and the pod-spec series of
// /metrics/nodes/NODE/metrics/kube-state (Options.MetricsServer), for a scraper such as
// Prometheus. Empty without kwok.
func (cp *ControlPlane) KwokURL() string {
	if !cp.kwok {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d", cp.ports[3])
}

// RESTConfig returns an admin client configuration.
func (cp *ControlPlane) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            cp.URL,
		BearerToken:     cp.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), cp.caPEM...)},
		QPS:             200,
		Burst:           400,
	}
}

// Stop stops every process in reverse start order (SIGTERM, then SIGKILL
// after a grace period) and, for a temporary directory, removes it. It is
// safe to call more than once.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for i := len(cp.procs) - 1; i >= 0; i-- {
		if err := cp.procs[i].stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	cp.procs = nil
	if cp.tempDir {
		if err := os.RemoveAll(cp.Dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s, %w", cp.Dir, err))
		}
	} else if err := os.Remove(filepath.Join(cp.Dir, pidsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing pid record, %w", err))
	}
	return errors.Join(errs...)
}

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port, %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating admin token, %w", err)
	}
	return hex.EncodeToString(b), nil
}

// writeKubeconfig writes an admin kubeconfig with one cluster, user and
// context, all named after the cluster ("bosun-<name>").
func writeKubeconfig(path, name, url string, caPEM []byte, token string) error {
	id := "bosun-" + name
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[id] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[id] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[id] = &clientcmdapi.Context{Cluster: id, AuthInfo: id, Namespace: "default"}
	cfg.CurrentContext = id
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s, %w", path, err)
	}
	return os.Chmod(path, 0o600)
}
