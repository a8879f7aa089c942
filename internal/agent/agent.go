// Package agent assembles `bosun agent`, the binary that runs inside every
// cluster: it builds the clients, informers, event recorder and metrics,
// starts the controllers chosen by flag, and runs them in passes, either
// forever under leader election or once (for a CronJob or a what-if
// preview with --at).
//
// The controllers live beside it: internal/agent/downscaler (L24) and
// internal/agent/janitor (L52). This package is the one place that wires
// them.
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
	"slices"
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
	"k8s.io/client-go/dynamic/dynamicinformer"
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

	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agent/janitor"
	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
)

// Known controller names for --controllers.
const (
	ControllerDownscaler      = "downscaler"
	ControllerJanitor         = "janitor"
	ControllerOverprovisioner = "overprovisioner"
)

// knownControllers lists the controllers for error messages.
const knownControllers = "downscaler, janitor, overprovisioner, provisioner, interruption, scale-down, reaper"

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
}

func (o *Options) syncTimeout() time.Duration {
	if o.SyncTimeout <= 0 {
		return 2 * time.Minute
	}
	return o.SyncTimeout
}

// Validate checks the options for contradictions.
func (o *Options) Validate() error {
	if len(o.Controllers) == 0 {
		return fmt.Errorf("--controllers: name at least one of %s", knownControllers)
	}
	capacity := false
	for _, c := range o.Controllers {
		if c != ControllerDownscaler && c != ControllerJanitor && c != ControllerOverprovisioner && !capacityController(c) {
			return fmt.Errorf("--controllers: unknown controller %q (known: %s)", c, knownControllers)
		}
		capacity = capacity || capacityController(c)
		if c == ControllerOverprovisioner {
			if _, _, ok := SplitConfigMap(o.Overprovisioner); !ok {
				return fmt.Errorf("--overprovisioner-configmap %q: expected namespace/name of the ConfigMap with the linear or ladder rules", o.Overprovisioner)
			}
		}
	}
	if capacity {
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

// passer is what the agent needs from a controller: one idempotent pass
// over the cluster, reporting what it changed (or would change).
type passer interface {
	Name() string
	Pass(ctx context.Context) ([]string, error)
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
	for _, c := range o.Controllers {
		if capacityController(c) {
			// Before anything connects: a cloud that cannot be reached
			// is the likelier mistake and the clearer error.
			if _, err := o.Capacity.provider(o.Logger, o.Registry); err != nil {
				return err
			}
			break
		}
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

	// Built-in kinds in protobuf: decoding tens of thousands of pods from
	// JSON costs several times the CPU and garbage (the dynamic and
	// metadata clients below stay JSON).
	typed := rest.CopyConfig(cfg)
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	typed.ContentType = "application/vnd.kubernetes.protobuf"
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
	factoryOpts := []informers.SharedInformerOption{informers.WithTransform(provisioner.CacheTransform)}
	if o.Namespace != "" {
		factoryOpts = append(factoryOpts, informers.WithNamespace(o.Namespace))
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, factoryOpts...)
	if cachesEveryPod(&o) {
		if err := usePagedPodInformer(factory, o.Namespace); err != nil {
			return err
		}
	}
	deps := deps{clock: clk, client: client, releaseClient: releaseClient, dynamic: dyn, metadata: meta, factory: factory, recorder: recorder, registry: o.Registry, logger: o.Logger}
	ctrls, starters, err := build(ctx, o, deps)
	if err != nil {
		return err
	}
	// Annotation changes (downscaler) kick the main loop; new pending pods
	// (provisioner) kick the capacity loop.
	kick, capKick := make(chan struct{}, 1), provisioner.NewKicks(clk)
	for _, c := range ctrls {
		n, ok := c.(notifier)
		if !ok {
			continue
		}
		f := func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		if capacityController(c.Name()) {
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
	for _, start := range starters {
		if !start(runCtx, syncCtx) {
			return fmt.Errorf("informer caches did not sync within %s (check the agent's RBAC and the API server)", o.syncTimeout())
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

// deps are what the controllers are built from.
type deps struct {
	clock  clock.Clock
	client kubernetes.Interface
	// releaseClient is the overprovisioner's burst release's: the same
	// rate, a burst of its own (overprovisioner.ReleaseConfig).
	releaseClient kubernetes.Interface
	dynamic       dynamic.Interface
	metadata      metadata.Interface
	factory       informers.SharedInformerFactory
	recorder      record.EventRecorder
	registry      prometheus.Registerer
	logger        *slog.Logger
	// capMetrics are the metrics the scale-down and the reaper share (nil
	// when neither runs).
	capMetrics *provisioner.CapacityMetrics
}

// starter starts informers that do not belong to the shared factory, for
// as long as run lasts, and reports whether they synced before sync ended.
type starter func(run, sync context.Context) bool

// build creates the enabled controllers and their starters.
func build(ctx context.Context, o Options, d deps) ([]passer, []starter, error) {
	var out []passer
	var starters []starter
	if slices.Contains(o.Controllers, ControllerScaleDown) || slices.Contains(o.Controllers, ControllerReaper) {
		m, err := provisioner.NewCapacityMetrics(d.registry)
		if err != nil {
			return nil, nil, fmt.Errorf("capacity metrics, %w", err)
		}
		d.capMetrics = m
	}
	for _, name := range o.Controllers {
		switch name {
		case ControllerDownscaler:
			dynFactory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(d.dynamic, 0, o.Namespace, nil)
			crds, err := downscaler.DiscoverCRDKinds(d.client.Discovery(), d.dynamic, dynFactory)
			if err != nil {
				return nil, nil, fmt.Errorf("downscaler, %w", err)
			}
			starters = append(starters, func(run, sync context.Context) bool {
				dynFactory.Start(run.Done())
				for _, ok := range dynFactory.WaitForCacheSync(sync.Done()) {
					if !ok {
						return false
					}
				}
				return true
			})
			c := downscaler.NewController(d.clock, d.client, d.factory, d.recorder, downscaler.NewMetrics(d.registry),
				downscaler.Options{Defaults: o.Downscaler, DryRun: o.DryRun, Logger: d.logger, CRDs: crds})
			out = append(out, downscalerPasser{c})
		case ControllerJanitor:
			jo := o.Janitor
			jo.DryRun = o.DryRun
			jo.Logger = d.logger
			jo.Namespace = o.Namespace
			c, err := janitor.NewController(ctx, d.clock, d.client, d.dynamic, d.metadata, d.factory, d.recorder, janitor.NewMetrics(d.registry), jo)
			if err != nil {
				return nil, nil, fmt.Errorf("janitor, %w", err)
			}
			starters = append(starters, c.StartAndSync)
			out = append(out, c)
		case ControllerProvisioner, ControllerInterruption, ControllerScaleDown, ControllerReaper:
			c, start, err := buildCapacity(name, &o, d)
			if err != nil {
				return nil, nil, fmt.Errorf("%s, %w", name, err)
			}
			if start != nil {
				starters = append(starters, start)
			}
			out = append(out, c)
		case ControllerOverprovisioner:
			ns, name, _ := SplitConfigMap(o.Overprovisioner)
			c := overprovisioner.New(overprovisioner.Options{
				Client: d.client, ReleaseClient: d.releaseClient, Factory: d.factory, Namespace: ns, ConfigMap: name, DryRun: o.DryRun, Logger: d.logger,
				LeaveToPreemption: o.OverprovisionerLeaveToPreemption, Recorder: d.recorder,
				Metrics: overprovisioner.NewMetrics(d.registry), Clock: d.clock,
			})
			starters = append(starters, c.Start)
			out = append(out, c)
		}
	}
	return out, starters, nil
}

// waiter is a controller with work in the background (drains) that a
// one-shot run waits for.
type waiter interface{ Wait() }

// notifier is a controller that can ask for an early pass: f is called
// when something it acts on changed.
type notifier interface {
	OnChange(f func()) error
}

type downscalerPasser struct{ c *downscaler.Controller }

func (p downscalerPasser) OnChange(f func()) error { return p.c.OnAnnotationChange(f) }

func (p downscalerPasser) Name() string { return p.c.Name() }

func (p downscalerPasser) Pass(ctx context.Context) ([]string, error) {
	actions, err := p.c.Reconcile(ctx)
	out := make([]string, 0, len(actions))
	for _, a := range actions {
		out = append(out, a.String())
	}
	return out, err
}

func passOnce(ctx context.Context, ctrls []passer, o Options) error {
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
		if w, ok := c.(waiter); ok {
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
func passLoop(ctx context.Context, ctrls []passer, o Options, clk clock.Clock, kick <-chan struct{}, capKick *provisioner.Kicks) {
	capacity := map[time.Duration][]passer{}
	var others []passer
	for _, c := range ctrls {
		if capacityController(c.Name()) {
			every := o.Capacity.interval(c.Name())
			capacity[every] = append(capacity[every], c)
		} else {
			others = append(others, c)
		}
	}
	var wg sync.WaitGroup
	for every, cs := range capacity {
		var k *provisioner.Kicks
		for _, c := range cs {
			if _, ok := c.(notifier); ok {
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
			if w, ok := c.(waiter); ok {
				w.Wait()
			}
		}
	}()
	if len(others) > 0 {
		kickLoop(ctx, others, o, clk, kick)
	}
}

// passAll makes a pass of every controller; failures are logged.
func passAll(ctx context.Context, ctrls []passer, o Options, clk clock.Clock) {
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
func tickLoop(ctx context.Context, ctrls []passer, o Options, clk clock.Clock, interval time.Duration, kick *provisioner.Kicks) {
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
func kickLoop(ctx context.Context, ctrls []passer, o Options, clk clock.Clock, kick <-chan struct{}) {
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
