// Package agent assembles `bosun agent`, the binary that runs inside every
// cluster: it builds the clients, informers, event recorder and metrics,
// starts the controllers chosen by flag, and runs them in passes, either
// forever under leader election or once (for a CronJob or a what-if
// preview with --at).
//
// The controllers live beside it, one package each, all built the same
// way (internal/agent/controller); the registration table (registry.go)
// is the one list of them and the one place that wires them.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/access"
	"github.com/bosun-platform/bosun/internal/agent/backupschedule"
	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
	"github.com/bosun-platform/bosun/internal/agent/certwatch"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agent/janitor"
	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Options configure the agent. Validate checks them in one place.
type Options struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster config.
	Kubeconfig string
	// RESTConfig, when set, is used instead of Kubeconfig (tests).
	RESTConfig *rest.Config
	// Controllers are the controllers to run.
	Controllers []string
	// Namespace limits every controller to one namespace ("" = all).
	Namespace string
	// Interval is the time between passes.
	Interval time.Duration
	// DryRun logs and counts what would change and changes nothing.
	DryRun bool
	// Once runs one pass of each controller and returns.
	Once bool
	// At, when set, is the time the controllers think it is (requires Once
	// and DryRun): a what-if preview of schedules and TTLs.
	At time.Time
	// LeaderElect enables leader election on a Lease.
	LeaderElect bool
	// LeaseNamespace and LeaseName locate the Lease.
	LeaseNamespace, LeaseName string
	// QPS and Burst limit the agent's API requests (client-go defaults to
	// 5 and 10, which would make a 10,000-object downscale take half an
	// hour).
	QPS   float32
	Burst int
	// ListenAddress serves /metrics, /healthz and /readyz ("" = off); see
	// ChooseListenAddress for the command's defaults.
	ListenAddress string
	// ListenReason says why ListenAddress was chosen; it is logged with
	// the address.
	ListenReason string
	// PprofAddress serves Go's profiles (/debug/pprof/) on a listener of
	// its own ("" = off, the default): for measuring where the agent's
	// memory and CPU go, never exposed on ListenAddress.
	PprofAddress string
	// Downscaler and Janitor configure the controllers.
	Downscaler downscaler.Defaults
	Janitor    janitor.Options
	// CertWatch configures the certificate watch (its state ConfigMap).
	CertWatch certwatch.Options
	// Access configures the access controller (its namespace of requests
	// and approval policy).
	Access access.Options
	// BackupSchedule configures the scheduled backups.
	BackupSchedule backupschedule.Options
	// Capacity configures the provisioner and the interruption handler.
	Capacity Capacity
	// Overprovisioner names the ConfigMap ("namespace/name") with the
	// overprovisioner's linear or ladder rules; its pause Deployments live
	// in that namespace.
	Overprovisioner string
	// OverprovisionerLeaveToPreemption turns the overprovisioner's burst
	// release off: pods of higher priority than the pause pods wait for
	// the scheduler's preemption, as before (L12; for comparison).
	OverprovisionerLeaveToPreemption bool
	// Logger receives structured logs.
	Logger *slog.Logger
	// Out receives the --once report.
	Out io.Writer
	// Registry receives the metrics (default: a new registry).
	Registry *prometheus.Registry
	// Clock overrides the clock (tests); At takes precedence.
	Clock clock.Clock
	// SyncTimeout bounds the wait for the informer caches (default 2m).
	SyncTimeout time.Duration

	// passes records each controller's passes (set by Run).
	passes *passMetrics
	// everyPod: an enabled controller caches every pod (set by Run, see
	// cachesEveryPod).
	everyPod bool
}

func (o *Options) syncTimeout() time.Duration {
	if o.SyncTimeout <= 0 {
		return 2 * time.Minute
	}
	return o.SyncTimeout
}

// Validate checks the options in one place: the agent's own, then each
// enabled controller's (its Registration's Validate), then the capacity
// options when a controller acts on the cloud.
func (o *Options) Validate() error {
	regs, err := registrations(o.Controllers)
	if err != nil {
		return err
	}
	cloud := false
	for _, r := range regs {
		cloud = cloud || r.Cloud
		if r.Validate != nil {
			if err := r.Validate(o); err != nil {
				return err
			}
		}
	}
	if cloud {
		if err := o.Capacity.validate(o); err != nil {
			return err
		}
	}
	if !o.At.IsZero() && (!o.Once || !o.DryRun) {
		return errors.New("--at previews only: it needs --once and --dry-run")
	}
	if !o.Once && o.Interval <= 0 {
		return errors.New("--interval must be positive")
	}
	if o.LeaderElect && (o.LeaseNamespace == "" || o.LeaseName == "") {
		return errors.New("leader election needs --lease-namespace and --lease-name")
	}
	return nil
}

// Run runs the agent until ctx ends (or after one pass with Once).
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	var cloud provider.Provider
	if len(CloudControllers(o.Controllers)) > 0 {
		// Before anything connects: a cloud that cannot be reached is the
		// likelier mistake and the clearer error.
		p, err := o.Capacity.provider(o.Logger, o.Registry)
		if err != nil {
			return err
		}
		cloud = p
	}
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bosun_agent_api_requests_total", Help: "Requests the agent sent to the API server, by method.",
	}, []string{"method"})
	o.Registry.MustRegister(requests)
	if o.passes, err = newPassMetrics(o.Registry, o.Controllers); err != nil {
		return fmt.Errorf("pass metrics, %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	if o.QPS > 0 {
		cfg.QPS, cfg.Burst = o.QPS, max(o.Burst, int(o.QPS))
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, requests: requests} })

	// Built-in kinds in protobuf (the dynamic and metadata clients below
	// stay JSON).
	typed := controller.ProtobufConfig(cfg)
	client, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return fmt.Errorf("building clientset, %w", err)
	}
	releaseClient, err := kubernetes.NewForConfig(overprovisioner.ReleaseConfig(typed))
	if err != nil {
		return fmt.Errorf("building the burst release's clientset, %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building dynamic client, %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building metadata client, %w", err)
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if !o.At.IsZero() {
		clk = clocktesting.NewFakeClock(o.At)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	if !o.DryRun {
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	}
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "bosun-agent"})

	// Trimmed objects: managed fields and the like are most of a cache's
	// memory and no controller reads them.
	factoryOpts := []informers.SharedInformerOption{informers.WithTransform(agentcache.CacheTransform)}
	if o.Namespace != "" {
		factoryOpts = append(factoryOpts, informers.WithNamespace(o.Namespace))
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, factoryOpts...)
	o.everyPod = cachesEveryPod(&o)
	if o.everyPod {
		if err := usePagedPodInformer(factory, o.Namespace); err != nil {
			return err
		}
	}
	region := o.Capacity.Region
	if region == "" {
		region = "local"
	}
	deps := controller.Deps{
		Config: cfg, Client: client, ReleaseClient: releaseClient, Dynamic: dyn, Metadata: meta, Factory: factory,
		Clock: clk, Recorder: recorder, Registry: o.Registry, Logger: o.Logger,
		DryRun: o.DryRun, Namespace: o.Namespace, Provider: cloud, Cluster: o.Capacity.Cluster, Region: region,
	}
	ctrls, err := build(&o, deps)
	if err != nil {
		return err
	}
	// Changes a controller acts on (the downscaler's annotations, the
	// overprovisioner's rules) kick the main loop; new pending pods (the
	// provisioner) kick the capacity loop.
	kick, capKick := make(chan struct{}, 1), provisioner.NewKicks(clk)
	for _, c := range ctrls {
		n, ok := c.Controller.(controller.Notifier)
		if !ok {
			continue
		}
		f := func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		if c.Loop == LoopCapacity {
			f = capKick.Kick
		}
		if err := n.OnChange(f); err != nil {
			return err
		}
	}

	if o.PprofAddress != "" {
		srv, addr, err := servePprof(o.PprofAddress, o.Logger)
		if err != nil {
			return err
		}
		defer srv.Close()
		o.Logger.Info("serving Go profiles", "address", "http://"+addr+"/debug/pprof/")
	}
	ready := &atomic.Bool{}
	if o.ListenAddress != "" && !o.Once {
		srv, addr, err := serve(o.ListenAddress, o.Registry, ready, o.Logger)
		if err != nil {
			return err
		}
		defer srv.Close()
		o.Logger.Info("serving /metrics, /healthz and /readyz without authentication", "address", addr, "listen-address", o.ListenAddress, "why", o.ListenReason)
	} else if !o.Once && o.ListenReason != "" {
		o.Logger.Info("not serving /metrics, /healthz and /readyz", "why", o.ListenReason)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A cache that cannot sync is nearly always missing RBAC; say so
	// instead of waiting forever.
	syncCtx, syncCancel := context.WithTimeout(runCtx, o.syncTimeout())
	defer syncCancel()
	factory.Start(runCtx.Done())
	for _, c := range ctrls {
		if s, ok := c.Controller.(controller.Starter); ok && !s.Start(runCtx, syncCtx) {
			return fmt.Errorf("%s: informer caches did not sync within %s (check the agent's RBAC and the API server)", c.Name(), o.syncTimeout())
		}
	}
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("informer cache for %v did not sync within %s (check the agent's RBAC and the API server)", typ, o.syncTimeout())
		}
	}
	// Syncing decoded every object of every cache, and most of what it
	// allocated is garbage now. Return it: a pass over an unchanged
	// cluster allocates next to nothing (issue 19), so the collector would
	// not run again for minutes and the process would hold the start-up's
	// peak instead of its caches.
	debug.FreeOSMemory()
	ready.Store(true)
	if o.Once {
		return passOnce(runCtx, ctrls, o)
	}
	loop := func(ctx context.Context) { passLoop(ctx, ctrls, o, clk, kick, capKick) }
	if !o.LeaderElect {
		loop(runCtx)
		return nil
	}
	return leaderElect(runCtx, o, client, loop)
}

func (o *Options) restConfig() (*rest.Config, error) {
	if o.RESTConfig != nil {
		return o.RESTConfig, nil
	}
	if o.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s, %w", o.Kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config (use --kubeconfig outside a cluster), %w", err)
	}
	return cfg, nil
}

// running is an enabled controller and its registration.
type running struct {
	controller.Controller
	Registration
}

// Name is the controller's name (the Controller's).
func (r running) Name() string { return r.Controller.Name() }

// build creates the enabled controllers, in --controllers order, each
// with a logger that names it (and, acting on the cloud, its cluster).
func build(o *Options, d controller.Deps) ([]running, error) {
	regs, err := registrations(o.Controllers)
	if err != nil {
		return nil, err
	}
	out := make([]running, 0, len(regs))
	for _, r := range regs {
		cd := d
		cd.Logger = d.Logger.With("controller", r.Name)
		if r.Cloud {
			cd.Logger = cd.Logger.With("cluster", d.Cluster)
		}
		c, err := r.New(cd, o)
		if err != nil {
			return nil, fmt.Errorf("%s, %w", r.Name, err)
		}
		out = append(out, running{Controller: c, Registration: r})
	}
	return out, nil
}

func passOnce(ctx context.Context, ctrls []running, o Options) error {
	var errs []error
	prefix := ""
	if o.DryRun {
		prefix = "would: "
	}
	for _, c := range ctrls {
		actions, err := c.Pass(ctx)
		fmt.Fprintf(o.Out, "%s: %d action(s)\n", c.Name(), len(actions))
		for _, a := range actions {
			fmt.Fprintf(o.Out, "  %s%s\n", prefix, a)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s, %w", c.Name(), err))
		}
	}
	// Drains run in the background; a one-shot run finishes them.
	for _, c := range ctrls {
		if w, ok := c.Controller.(controller.Waiter); ok {
			w.Wait()
		}
	}
	return errors.Join(errs...)
}

// debounce is the quiet time after an annotation change before the early
// pass, so that a burst of edits makes one pass.
const debounce = time.Second

// passLoop runs the capacity controllers on their own loop every
// Capacity.Interval, and the others every Interval and early after kick
// (annotation changes), at most once per debounce.
func passLoop(ctx context.Context, ctrls []running, o Options, clk clock.Clock, kick <-chan struct{}, capKick *provisioner.Kicks) {
	capacity := map[time.Duration][]running{}
	var others []running
	for _, c := range ctrls {
		if c.Loop == LoopMain {
			others = append(others, c)
		} else {
			every := o.Capacity.interval(c.Loop)
			capacity[every] = append(capacity[every], c)
		}
	}
	var wg sync.WaitGroup
	for every, cs := range capacity {
		var k *provisioner.Kicks
		for _, c := range cs {
			if _, ok := c.Controller.(controller.Notifier); ok {
				k = capKick
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tickLoop(ctx, cs, o, clk, every, k)
		}()
	}
	defer func() {
		wg.Wait()
		for _, c := range ctrls {
			if w, ok := c.Controller.(controller.Waiter); ok {
				w.Wait()
			}
		}
	}()
	if len(others) > 0 {
		kickLoop(ctx, others, o, clk, kick)
	}
}

// passAll makes a pass of every controller; failures are logged.
func passAll(ctx context.Context, ctrls []running, o Options, clk clock.Clock) {
	for _, c := range ctrls {
		_, err := c.Pass(ctx)
		if ctx.Err() != nil {
			return // stopping: neither a failure nor a success
		}
		o.passes.observe(c.Name(), clk.Now(), err)
		if err != nil {
			o.Logger.Error("pass failed", "controller", c.Name(), "err", err)
		}
	}
}

// tickLoop runs a pass of every controller every interval, and early after
// a kick (nil: never), batched.
func tickLoop(ctx context.Context, ctrls []running, o Options, clk clock.Clock, interval time.Duration, kick *provisioner.Kicks) {
	for {
		passAll(ctx, ctrls, o, clk)
		select {
		case <-ctx.Done():
			return
		case <-clk.After(interval):
		case <-kick.C():
			if !kick.Batch(ctx, clk) {
				return
			}
		}
	}
}

// kickLoop runs a pass every interval, and early after kick, at most once
// per debounce.
func kickLoop(ctx context.Context, ctrls []running, o Options, clk clock.Clock, kick <-chan struct{}) {
	for {
		passAll(ctx, ctrls, o, clk)
		select {
		case <-ctx.Done():
			return
		case <-clk.After(o.Interval):
		case <-kick:
			select {
			case <-ctx.Done():
				return
			case <-clk.After(debounce):
			}
			select { // the pass about to run covers changes so far
			case <-kick:
			default:
			}
		}
	}
}

func leaderElect(ctx context.Context, o Options, client kubernetes.Interface, loop func(context.Context)) error {
	host, _ := os.Hostname()
	id := host + "_" + string(uuid.NewUUID())
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.LeaseNamespace, o.LeaseName,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return fmt.Errorf("creating lease lock, %w", err)
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		ReleaseOnCancel: true, Name: o.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: loop,
			OnStoppedLeading: func() { o.Logger.Info("stopped leading", "identity", id) },
			OnNewLeader: func(leader string) {
				o.Logger.Info("leader", "identity", leader, "self", leader == id)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election, %w", err)
	}
	le.Run(ctx)
	return nil
}

// serve starts the metrics and health endpoints and returns the address
// it listens on.
func serve(addr string, reg *prometheus.Registry, ready *atomic.Bool, log *slog.Logger) (*http.Server, string, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listening on %s, %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return srv, ln.Addr().String(), nil
}

// servePprof serves Go's profiles under /debug/pprof/ on addr, and only
// there (net/http/pprof also registers them on http.DefaultServeMux, which
// nothing in Bosun serves), and returns the address it listens on.
func servePprof(addr string, log *slog.Logger) (*http.Server, string, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--pprof-address %s, %w", addr, err)
	}
	// No write timeout: a CPU profile or a trace streams for as long as
	// its ?seconds= asks.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server", "err", err)
		}
	}()
	return srv, ln.Addr().String(), nil
}

// countingTransport counts API requests by method (the benchmark's and the
// "no request on an unchanged cluster" figure).
type countingTransport struct {
	next     http.RoundTripper
	requests *prometheus.CounterVec
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	method := req.Method
	if req.URL != nil && strings.Contains(req.URL.RawQuery, "watch=true") {
		method = "WATCH"
	}
	c.requests.WithLabelValues(method).Inc()
	return c.next.RoundTrip(req)
}
