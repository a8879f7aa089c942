package localfleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/clock"

	examplefleet "github.com/bosun-platform/bosun/examples/fleet"
	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/atomicfile"
	"github.com/bosun-platform/bosun/internal/channels"
	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/version"
)

// Options configure `bosun up`.
type Options struct {
	// StateDir holds the fleet's state (default DefaultStateDir).
	StateDir string
	// BinDir holds the control-plane binaries ("" = default cache).
	BinDir string
	// FleetDir is the fleet directory; empty means the embedded example
	// fleet.
	FleetDir string
	// Clusters limits which local-provider clusters start (default all).
	Clusters []string
	// BootDelay is how long a launched instance boots before its Node
	// registers (default 45s).
	BootDelay time.Duration
	// ConsoleAddr is where the console listens (loopback; "" = no console).
	ConsoleAddr string
	// ClusterAutoscaler serves cluster-autoscaler's externalgrpc API for
	// each cluster instead of running Bosun's provisioner.
	ClusterAutoscaler bool
	// Keep restarts from the state of the previous run (etcd data, cloud
	// instances and limits) instead of a clean start.
	Keep bool
	// Out receives progress and the how-to-use message.
	Out io.Writer
	// Logger receives the local cloud's warnings (default: discard).
	Logger *slog.Logger
	// Ready, if set, is called once the fleet is up (tests use it).
	Ready func(kubeconfig string)
	// ParseAgent reads the arguments of each cluster's rendered agent, so
	// `bosun up` runs the controllers and flags that agent declares
	// (internal/cli/agent.ParseOptions). Required when a cluster renders
	// an agent.
	ParseAgent AgentParser
}

// controllerInterval is the time between passes of the lifecycle manager
// that `bosun up` runs over its fleet: an edit of the fleet directory is
// reconciled within it.
const controllerInterval = 30 * time.Second

// agentInterval is the time between passes of the agent controllers.
const agentInterval = 30 * time.Second

// cloudStateFile keeps the local cloud's state for --keep.
const cloudStateFile = "cloud-state.json"

// Up starts the local fleet: a real control plane for every local-provider
// cluster of the fleet, the local cloud with each cluster's node pools as
// node groups at their minimum size (their nodes registered as kwok Nodes),
// and the cloud's API on loopback (cloud.json in the state directory). It
// applies each cluster's rendered manifests and runs the agent controllers
// the cluster's rendered agent declares, with its flags, plus the capacity
// controllers against the local cloud (see agentFor). It
// writes a kubeconfig with one context per cluster and runs until ctx ends
// (Ctrl-C, or SIGTERM from `bosun down`); then it stops every process it
// started. A second Up on the same state directory fails with
// ErrAlreadyRunning.
//
// Every option is checked before anything starts: the options themselves
// (Validate), the fleet and the clusters to start, the rendered manifests
// and the binaries.
func Up(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	f, clusters, err := selectClusters(opts)
	if err != nil {
		return err
	}
	rendered, err := renderClusters(ctx, f, clusters)
	if err != nil {
		return err
	}
	agents := map[string]agent.Options{}
	for _, cl := range clusters {
		if agents[cl.ID], err = agentFor(rendered[cl.ID], opts.ParseAgent, opts.ClusterAutoscaler); err != nil {
			return fmt.Errorf("cluster %s: %w", cl.ID, err)
		}
	}
	bins, err := controlplane.FindBinaries(opts.BinDir)
	if err != nil {
		return err
	}
	lk, err := acquireLock(opts.StateDir)
	if err != nil {
		return err
	}
	defer lk.release(opts.StateDir)
	if err := prepareDirs(opts, clusters); err != nil {
		return err
	}

	start := time.Now()
	registry := localcloud.NewClientRegistry()
	cloud := localcloud.New(localcloud.Config{BootDelay: opts.BootDelay}, clock.RealClock{}, registry)
	running := map[string]*controlplane.ControlPlane{}
	clients := map[string]kubernetes.Interface{}
	defer func() {
		for _, id := range sortedKeys(running) {
			fmt.Fprintf(opts.Out, "Stopping cluster %q\n", id)
			if err := running[id].Stop(); err != nil {
				fmt.Fprintf(opts.Out, "warning: %v\n", err)
			}
		}
		_ = os.Remove(KubeconfigPath(opts.StateDir))
		_ = os.Remove(filepath.Join(opts.StateDir, local.EndpointFile))
		fmt.Fprintln(opts.Out, "Stopped.")
	}()
	// The metrics API (metrics-server on kwok's simulated usage) when
	// `make tools` built metrics-server: the console's cost page and
	// right-sizing then show real slack.
	metrics := false
	if st, err := os.Stat(bins.MetricsServer); err == nil && st.Mode()&0o111 != 0 {
		metrics = true
	} else {
		fmt.Fprintf(opts.Out, "metrics-server not built (make tools builds it): no metrics API, usage is not measured\n")
	}
	for _, cl := range clusters {
		fmt.Fprintf(opts.Out, "Starting cluster %q (Kubernetes %s, kwok %s)\n", cl.ID, version.Kubernetes, version.Kwok)
		cp, err := controlplane.Start(ctx, controlplane.Options{
			Name: cl.ID, Dir: ClusterDir(opts.StateDir, cl.ID), Binaries: bins,
			Scheduler: true, ControllerManager: true, Kwok: true, MetricsServer: metrics,
			Logf: func(f string, a ...any) { fmt.Fprintf(opts.Out, "  "+f+"\n", a...) },
		})
		if err != nil {
			return fmt.Errorf("starting cluster %s, %w", cl.ID, err)
		}
		running[cl.ID] = cp
		cs, err := kubernetes.NewForConfig(cp.RESTConfig())
		if err != nil {
			return fmt.Errorf("client for %s, %w", cl.ID, err)
		}
		clients[cl.ID] = cs
		registry.Add(cl.ID, cs)
		// The rendered cluster has the merged config items, as the
		// controller's spec does: the same node template hashes.
		if err := cloud.AddCluster(rendered[cl.ID].Cluster); err != nil {
			return err
		}
	}
	if err := startCloud(ctx, opts, cloud); err != nil {
		return err
	}
	for _, cl := range clusters {
		cp, cs := running[cl.ID], clients[cl.ID]
		if err := waitNodes(ctx, opts.Out, cl, cp, cs); err != nil {
			return err
		}
		if opts.ClusterAutoscaler {
			if err := serveClusterAutoscaler(ctx, opts.Out, opts.Logger, cl, cp, cs, cloud); err != nil {
				return err
			}
		}
	}
	// Each cluster's agent starts once its manifests are applied (the
	// fleet's objects first, e.g. the PriorityClass the overprovisioner
	// would otherwise create with other settings), and before the wait
	// for them to be healthy, which needs the provisioner's nodes.
	var agentMu sync.Mutex
	agentStarted := map[string]bool{}
	startAgent := func(id string) {
		agentMu.Lock()
		defer agentMu.Unlock()
		if agentStarted[id] {
			return
		}
		agentStarted[id] = true
		cl := f.Cluster(id)
		fmt.Fprintf(opts.Out, "  [%s] agent controllers: %s\n", id, strings.Join(agents[id].Controllers, ", "))
		go runAgent(ctx, opts.Logger, cl, running[id], cloud, agents[id])
	}
	if err := startController(ctx, opts, clusters, running, registry, cloud, startAgent); err != nil {
		return err
	}
	for _, cl := range clusters {
		startAgent(cl.ID) // clusters whose manifests were not applied
	}
	if err := writeFleetKubeconfig(KubeconfigPath(opts.StateDir), clusters, running); err != nil {
		return err
	}
	consoleURL := ""
	if opts.ConsoleAddr != "" {
		if consoleURL, err = startConsole(ctx, opts.Out, opts.ConsoleAddr, KubeconfigPath(opts.StateDir), f, cloud); err != nil {
			return err
		}
	}
	printUsage(opts, clusters, running, consoleURL, time.Since(start))
	if opts.Ready != nil {
		opts.Ready(KubeconfigPath(opts.StateDir))
	}
	<-ctx.Done()
	return saveCloud(opts.StateDir, cloud)
}

// startController runs the lifecycle manager (`bosun controller`) over the
// started clusters, in place of a one-shot apply: the first pass (infra,
// manifests applied and healthy, rolls) before the fleet is declared ready,
// then a pass every controllerInterval until ctx ends, reading the fleet
// directory again each time. The local cloud is the clusters'
// infrastructure (localcloud.Infra) and node groups.
func startController(ctx context.Context, opts Options, clusters []*fleet.Cluster, running map[string]*controlplane.ControlPlane,
	registry *localcloud.ClientRegistry, cloud *localcloud.Cloud, afterApply func(cluster string)) error {
	ids := make([]string, 0, len(clusters))
	for _, cl := range clusters {
		ids = append(ids, cl.ID)
	}
	load := func() (*fleet.Fleet, error) { return fleet.Load(opts.FleetDir) }
	// A fleet directory's channels.yaml is honoured as by bosun controller
	// (the embedded example fleet has one implicit revision).
	chans := func() (*channels.Channels, error) { return channels.Open(opts.FleetDir) }
	if opts.FleetDir == "" {
		load = func() (*fleet.Fleet, error) { return fleet.LoadFS(examplefleet.FS, "(embedded example fleet)") }
		chans = nil
	}
	infra := localcloud.NewInfra(cloud, registry)
	// The same infrastructure on the local cloud's HTTP API, for a
	// standalone `bosun controller --local-cloud` beside this bosun up.
	cloud.ServeInfra(infra)
	c, err := lifecycle.New(lifecycle.Options{
		LoadFleet: load, Channels: chans, Clusters: ids, Interval: controllerInterval, HealthTimeout: 2 * time.Minute,
		Log: opts.Logger, Out: prefixed{w: opts.Out, prefix: "  controller: "}, AfterApply: afterApply,
		Connector: lifecycle.RESTConnector{
			Config: func(cl *fleet.Cluster) (*rest.Config, error) {
				cp, ok := running[cl.ID]
				if !ok {
					return nil, fmt.Errorf("cluster %s is not running in this bosun up", cl.ID)
				}
				return cp.RESTConfig(), nil
			},
			Infra: func(*fleet.Cluster) (provider.Infra, error) { return infra, nil },
			Cloud: func(*fleet.Cluster) provider.Provider { return cloud },
		},
	})
	if err != nil {
		return err
	}
	results, err := c.Pass(ctx)
	if err != nil {
		return err
	}
	for _, r := range results {
		note := r.Status.BlockedReason
		if r.Err != nil {
			note = r.Err.Error()
		}
		fmt.Fprintf(opts.Out, "  [%s] lifecycle: %s, version %s %s\n", r.Status.Cluster, r.Status.Phase, r.Status.DesiredVersion, note)
	}
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(controllerInterval):
		}
		_ = c.Run(ctx)
	}()
	return nil
}

// prefixed writes each Write (one line from the controller) with a prefix.
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Validate checks the options that need no fleet and no binaries, and
// reports every problem at once, each naming its flag: the console address
// (host:port on loopback, since the console has no authentication here),
// the boot delay, and the cluster list. The fleet's clusters are checked
// by Up once the fleet is loaded, still before anything starts.
func (o Options) Validate() error {
	var errs []error
	if o.ConsoleAddr != "" {
		if err := checkConsoleAddr(o.ConsoleAddr); err != nil {
			errs = append(errs, err)
		}
	}
	if o.BootDelay < 0 {
		errs = append(errs, fmt.Errorf("--boot-delay %s: expected a duration of 0 or more", o.BootDelay))
	}
	seen := map[string]bool{}
	for _, id := range o.Clusters {
		switch {
		case id == "":
			errs = append(errs, errors.New("--clusters: expected cluster IDs separated by commas, got an empty one"))
		case seen[id]:
			errs = append(errs, fmt.Errorf("--clusters: cluster %q is listed twice", id))
		}
		seen[id] = true
	}
	return errors.Join(errs...)
}

// checkConsoleAddr accepts host:port with a loopback host (an IP or
// localhost) and a port from 0 to 65535.
func checkConsoleAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--console %q: expected host:port such as 127.0.0.1:8080, %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--console %q: expected a port number from 0 to 65535, got %q", addr, port)
	}
	if !console.IsLoopback(addr) {
		return fmt.Errorf("--console %s: bosun up serves the console on loopback only (127.0.0.1, ::1 or localhost), got host %q; use bosun console with authentication for other addresses", addr, host)
	}
	return nil
}

// selectClusters loads the fleet and picks its local-provider clusters.
func selectClusters(opts Options) (*fleet.Fleet, []*fleet.Cluster, error) {
	var (
		f   *fleet.Fleet
		err error
	)
	if opts.FleetDir == "" {
		f, err = fleet.LoadFS(examplefleet.FS, "(embedded example fleet)")
	} else {
		f, err = fleet.Load(opts.FleetDir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading fleet, %w", err)
	}
	want := map[string]bool{}
	for _, id := range opts.Clusters {
		c := f.Cluster(id)
		if c == nil {
			return nil, nil, fmt.Errorf("--clusters: fleet %s has no cluster %q", f.Dir, id)
		}
		if c.Provider != "local" {
			return nil, nil, fmt.Errorf("--clusters: cluster %q has provider %q; bosun up starts local-provider clusters only", id, c.Provider)
		}
		want[id] = true
	}
	var out []*fleet.Cluster
	for _, c := range f.Clusters {
		if c.Provider == "local" && (len(want) == 0 || want[c.ID]) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("fleet %s has no cluster with provider: local", f.Dir)
	}
	return f, out, nil
}

// prepareDirs stops leftovers of a run that was killed hard and, unless
// Keep, removes the previous run's data.
func prepareDirs(opts Options, clusters []*fleet.Cluster) error {
	dirs, _ := filepath.Glob(filepath.Join(opts.StateDir, clustersDir, "*"))
	for _, dir := range dirs {
		stopped, err := controlplane.StopRecorded(dir, 10*time.Second)
		if err != nil {
			return fmt.Errorf("stopping leftovers of a previous run, %w", err)
		}
		if len(stopped) > 0 {
			fmt.Fprintf(opts.Out, "stopped %d processes left by a previous run in %s\n", len(stopped), dir)
		}
	}
	if !opts.Keep {
		for _, p := range []string{filepath.Join(opts.StateDir, clustersDir), filepath.Join(opts.StateDir, cloudStateFile)} {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("cleaning %s, %w", p, err)
			}
		}
	}
	for _, c := range clusters {
		if err := os.MkdirAll(ClusterDir(opts.StateDir, c.ID), 0o700); err != nil {
			return fmt.Errorf("creating %s, %w", c.ID, err)
		}
	}
	return nil
}

// startCloud restores (--keep) or bootstraps the cloud, runs it and serves
// its API.
func startCloud(ctx context.Context, opts Options, cloud *localcloud.Cloud) error {
	restored := false
	if opts.Keep {
		data, err := os.ReadFile(filepath.Join(opts.StateDir, cloudStateFile))
		switch {
		case err == nil:
			if err := cloud.LoadState(data); err != nil {
				return err
			}
			restored = true
			fmt.Fprintln(opts.Out, "  local cloud: restored instances and limits of the previous run")
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("reading saved cloud state, %w", err)
		}
	}
	if !restored {
		if err := cloud.Bootstrap(ctx); err != nil {
			return fmt.Errorf("creating the node groups' minimum nodes, %w", err)
		}
	}
	go runCloud(ctx, opts, cloud)
	token, err := randomToken()
	if err != nil {
		return err
	}
	url, _, err := cloud.Serve(ctx, token)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "  local cloud API on %s\n", url)
	return local.WriteEndpoint(opts.StateDir, local.Endpoint{URL: url, Token: token})
}

// runCloud reconciles the cloud every 250ms and saves its state whenever
// it changed, so a killed `bosun up --keep` loses nothing.
func runCloud(ctx context.Context, opts Options, cloud *localcloud.Cloud) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var last []byte
	for {
		if err := cloud.Reconcile(ctx); err != nil && ctx.Err() == nil {
			opts.Logger.Warn("local cloud reconcile", "error", err)
		}
		if data, err := cloud.MarshalState(); err == nil && string(data) != string(last) {
			if err := atomicfile.Write(filepath.Join(opts.StateDir, cloudStateFile), data, 0o600); err == nil {
				last = data
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func saveCloud(stateDir string, cloud *localcloud.Cloud) error {
	data, err := cloud.MarshalState()
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(stateDir, cloudStateFile), data, 0o600)
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating cloud API token, %w", err)
	}
	return hex.EncodeToString(b), nil
}

// waitNodes waits until the cluster has a Ready node for every instance
// its pools start with.
func waitNodes(ctx context.Context, out io.Writer, cl *fleet.Cluster, cp *controlplane.ControlPlane, cs kubernetes.Interface) error {
	want := 0
	for _, p := range cl.NodePools {
		want += p.MinSize
	}
	fmt.Fprintf(out, "  [%s] waiting for %d nodes (the node pools' minimum sizes)\n", cl.ID, want)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ready := 0
		if list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
			for i := range list.Items {
				if controlplane.NodeReady(&list.Items[i]) {
					ready++
				}
			}
		}
		if ready >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster %s: %d of %d nodes Ready after 2 minutes; see %s", cl.ID, ready, want, filepath.Join(cp.Dir, "logs"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writeFleetKubeconfig merges the clusters' kubeconfigs, one context each
// (bosun-<id>); the first cluster is the current context.
func writeFleetKubeconfig(path string, clusters []*fleet.Cluster, running map[string]*controlplane.ControlPlane) error {
	merged := clientcmdapi.NewConfig()
	for _, cl := range clusters {
		cfg, err := clientcmd.LoadFromFile(running[cl.ID].KubeconfigPath)
		if err != nil {
			return fmt.Errorf("reading kubeconfig of %s, %w", cl.ID, err)
		}
		for k, v := range cfg.Clusters {
			merged.Clusters[k] = v
		}
		for k, v := range cfg.AuthInfos {
			merged.AuthInfos[k] = v
		}
		for k, v := range cfg.Contexts {
			merged.Contexts[k] = v
		}
		if merged.CurrentContext == "" {
			merged.CurrentContext = cfg.CurrentContext
		}
	}
	data, err := clientcmd.Write(*merged)
	if err != nil {
		return fmt.Errorf("encoding kubeconfig, %w", err)
	}
	return atomicfile.Write(path, data, 0o600)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func printUsage(opts Options, clusters []*fleet.Cluster, running map[string]*controlplane.ControlPlane, consoleURL string, took time.Duration) {
	fmt.Fprintf(opts.Out, "\nLocal fleet is ready in %s: %d clusters.\n\n", took.Round(100*time.Millisecond), len(clusters))
	if consoleURL != "" {
		fmt.Fprintf(opts.Out, "  Console: %s\n\n", consoleURL)
	}
	for _, cl := range clusters {
		pools := 0
		nodes := 0
		for _, p := range cl.NodePools {
			pools++
			nodes += p.MinSize
		}
		fmt.Fprintf(opts.Out, "  %-20s %-11s context bosun-%s, %d node pools, %d nodes, kubeconfig %s\n",
			cl.ID, cl.Environment, cl.ID, pools, nodes, running[cl.ID].KubeconfigPath)
	}
	fmt.Fprintf(opts.Out, `
Use it:
  export KUBECONFIG=%s
  kubectl get nodes -L node.kubernetes.io/instance-type,karpenter.sh/capacity-type
  kubectl --context bosun-%s get nodes
  bosun status                          # the fleet and its node groups
  bosun clusters --fleet DIR            # lifecycle status: phase, rendered vs applied version, block
  bosun sim capacity --lifecycle spot --limit 0   # make all spot capacity run out

The lifecycle manager reconciles every cluster every %s: edit the fleet
directory (--fleet) and the change is applied, node pools rolled.

Logs:  %s/<cluster>/logs
Stop:  Ctrl-C here, or "bosun down" from another shell.
`, KubeconfigPath(opts.StateDir), clusters[len(clusters)-1].ID, controllerInterval, filepath.Join(opts.StateDir, clustersDir))
}
