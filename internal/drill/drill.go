// Package drill is `bosun drill`, the disaster-recovery drill (L28): it
// recreates a cluster from code on the local provider (a fresh control
// plane with kwok nodes for the cluster's pools and Bosun's provisioner),
// applies the cluster's rendered manifests, restores its latest encrypted
// backup, runs the smoke suite (`bosun e2e`) and reports the time each
// phase took and what differs from the backup. A drill that is never run
// is a recovery plan nobody knows works; this one runs on one machine.
package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"filippo.io/age"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/backup"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/e2e"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/render"
)

// Phase names, in the order they run.
const (
	PhaseBackup       = "backup-read"
	PhaseControlPlane = "control-plane"
	PhaseManifests    = "manifests"
	PhaseRestore      = "restore"
	PhaseChecks       = "checks"
)

// Options configure a drill.
type Options struct {
	// Rendered is the cluster as the fleet renders it (its Cluster spec
	// gives the node pools).
	Rendered *render.Result
	// Store holds the backups; BackupID picks one ("" or "latest": the
	// newest complete backup of the cluster).
	Store    backup.Store
	BackupID string
	// Identities decrypt the backup (age identities of one recipient).
	Identities []age.Identity
	// Binaries run the control plane (controlplane.FindBinaries).
	Binaries controlplane.Binaries
	// HealthTimeout bounds waiting for the applied workloads to roll out
	// and each smoke check (default 2m).
	HealthTimeout time.Duration
	// BootDelay is how long the drill's simulated nodes take to boot
	// (default 2s: the drill measures the recovery, not a cloud's boot).
	BootDelay time.Duration
	// SkipChecks leaves the smoke suite out.
	SkipChecks bool
	// Keep leaves the control plane running (Report.Kubeconfig says where
	// to reach it; Report.Stop stops it).
	Keep bool
	// Out receives a line per step as the drill goes (default discard).
	Out io.Writer
	// Clock (default the real clock).
	Clock clock.WithTicker
}

// Phase is one step of the drill and how long it took.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	// Detail says what the phase did.
	Detail string `json:"detail"`
	// Error is why the phase failed ("" when it passed).
	Error string `json:"error,omitempty"`
}

// Report is the outcome of a drill.
type Report struct {
	Cluster string `json:"cluster"`
	// Backup is the ID of the backup restored.
	Backup string `json:"backup"`
	// BackupTaken is when it was taken: the recovery point.
	BackupTaken time.Time `json:"backupTaken"`
	Phases      []Phase   `json:"phases"`
	// TimeToRecovery is from the start of the drill to the cluster
	// restored and checked.
	TimeToRecovery time.Duration `json:"timeToRecovery"`
	// Differences are the backed-up objects that are missing or differ
	// after the restore.
	Differences []string `json:"differences,omitempty"`
	// Checks is the smoke suite's result (nil when skipped or not
	// reached).
	Checks *lifecycle.E2EResult `json:"checks,omitempty"`
	// Passed is true when every phase passed and nothing differs.
	Passed bool `json:"passed"`
	// Kubeconfig of the drill's control plane, with Options.Keep.
	Kubeconfig string `json:"kubeconfig,omitempty"`

	stop func() error
}

// Stop stops a control plane kept with Options.Keep (nothing otherwise).
func (r *Report) Stop() error {
	if r.stop == nil {
		return nil
	}
	return r.stop()
}

// Err is nil when the drill passed, else an error naming the failed
// phases.
func (r *Report) Err() error {
	if r.Passed {
		return nil
	}
	var failed []string
	for _, p := range r.Phases {
		if p.Error != "" {
			failed = append(failed, p.Name+": "+p.Error)
		}
	}
	if len(r.Differences) > 0 {
		failed = append(failed, fmt.Sprintf("%d object(s) differ from the backup", len(r.Differences)))
	}
	return fmt.Errorf("drill of cluster %s failed: %s", r.Cluster, strings.Join(failed, "; "))
}

// Run runs the drill. The error is about the drill itself (no backup, a
// wrong identity, a control plane that would not start); a phase that
// fails later is in the report (Report.Err), and the phases after it
// still run where they can, so one report says everything that is wrong.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Rendered == nil || opts.Rendered.Cluster == nil {
		return nil, errors.New("drill: no rendered cluster")
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 2 * time.Minute
	}
	if opts.BootDelay <= 0 {
		opts.BootDelay = 2 * time.Second
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	clk := opts.Clock
	cl := opts.Rendered.Cluster
	rep := &Report{Cluster: cl.ID}
	start := clk.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(opts.Out, "%6.1fs  %s\n", clk.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	phase := func(name string, f func() (string, error)) bool {
		t := clk.Now()
		detail, err := f()
		p := Phase{Name: name, Duration: clk.Since(t), Detail: detail}
		if err != nil {
			p.Error = err.Error()
			progress("%s FAILED after %s: %v", name, p.Duration.Round(time.Millisecond), err)
		} else {
			progress("%s done in %s: %s", name, p.Duration.Round(time.Millisecond), detail)
		}
		rep.Phases = append(rep.Phases, p)
		return err == nil
	}

	// The backup first: a missing backup or a wrong identity fails the
	// drill before anything is started.
	var m backup.Manifest
	var objs []backup.Object
	var readErr error
	phase(PhaseBackup, func() (string, error) {
		if opts.BackupID == "" || opts.BackupID == "latest" {
			m, readErr = backup.Latest(ctx, opts.Store, cl.ID)
		} else {
			m, readErr = backup.Find(ctx, opts.Store, cl.ID, opts.BackupID)
		}
		if readErr != nil {
			return "", readErr
		}
		if objs, readErr = backup.Load(ctx, opts.Store, m, opts.Identities); readErr != nil {
			return "", readErr
		}
		return fmt.Sprintf("backup %s (taken %s), %d objects decrypted, checksums match", m.ID, m.Created.UTC().Format(time.RFC3339), len(objs)), nil
	})
	if readErr != nil {
		return nil, fmt.Errorf("reading the backup of cluster %s: %w", cl.ID, readErr)
	}
	rep.Backup, rep.BackupTaken = m.ID, m.Created

	progress("starting a fresh control plane for %s (scheduler, controller-manager, kwok)", cl.ID)
	var cp *controlplane.ControlPlane
	var cs kubernetes.Interface
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := func() error {
		cancel()
		if cp == nil {
			return nil
		}
		return cp.Stop()
	}
	ok := phase(PhaseControlPlane, func() (string, error) {
		var err error
		cp, err = controlplane.Start(ctx, controlplane.Options{
			Name: "drill-" + cl.ID, Binaries: opts.Binaries, Scheduler: true, ControllerManager: true, Kwok: true,
			UnsafeNoFsync: true, NodeBootDelay: opts.BootDelay,
		})
		if err != nil {
			return "", fmt.Errorf("starting a control plane: %w", err)
		}
		if cs, err = kubernetes.NewForConfig(controller.ProtobufConfig(cp.RESTConfig())); err != nil {
			return "", err
		}
		n, err := startCapacity(runCtx, cl, cs, opts.BootDelay, clk)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("API server up, %d node(s) of %d pool(s) registered, the provisioner adds more on demand", n, len(cl.NodePools)), nil
	})
	if !ok {
		_ = stop()
		return nil, fmt.Errorf("recreating cluster %s: %s", cl.ID, rep.Phases[len(rep.Phases)-1].Error)
	}
	if opts.Keep {
		rep.Kubeconfig, rep.stop = cp.KubeconfigPath, stop
	} else {
		defer func() {
			if err := stop(); err != nil {
				progress("warning: stopping the drill's control plane: %v", err)
			}
		}()
	}

	phase(PhaseManifests, func() (string, error) {
		a, err := apply.New(cp.RESTConfig(), io.Discard)
		if err != nil {
			return "", err
		}
		res, err := a.Apply(ctx, opts.Rendered, apply.Options{})
		if err != nil {
			return "", err
		}
		detail := fmt.Sprintf("%d object(s) created, %d configured", res.Created, res.Configured)
		if err := res.Err(); err != nil {
			return detail, err
		}
		bad, err := waitHealthy(ctx, clk, cs, opts.Rendered, opts.HealthTimeout)
		if err != nil {
			return detail, err
		}
		if len(bad) > 0 {
			return detail, fmt.Errorf("not rolled out after %s: %s", opts.HealthTimeout, strings.Join(bad, "; "))
		}
		return detail + ", every workload rolled out", nil
	})

	phase(PhaseRestore, func() (string, error) {
		bc, err := backup.NewCluster(cl.ID, cp.RESTConfig())
		if err != nil {
			return "", err
		}
		res := backup.Restore(ctx, bc, m, objs, backup.RestoreOptions{})
		for _, d := range backup.Compare(ctx, bc.Client, objs) {
			rep.Differences = append(rep.Differences, d.String())
		}
		detail := fmt.Sprintf("%d of %d object(s) restored, %d differ after reading them back", len(res.Applied), len(objs), len(rep.Differences))
		return detail, res.Err()
	})

	if opts.SkipChecks {
		progress("smoke checks skipped (--skip-checks)")
	} else {
		phase(PhaseChecks, func() (string, error) {
			res, err := e2e.Run(ctx, e2e.Options{
				Cluster: cl.ID, Kube: cs, Config: cp.RESTConfig(), Rendered: opts.Rendered,
				PoolSelector: e2e.PoolSelector(cl), Timeout: opts.HealthTimeout, Clock: clk,
			})
			if err != nil {
				return "", err
			}
			rep.Checks = &res
			var failed []string
			passed := 0
			for _, c := range res.Checks {
				switch c.Result {
				case lifecycle.CheckPassed:
					passed++
				case lifecycle.CheckFailed:
					failed = append(failed, c.Name+": "+c.Message)
				}
			}
			detail := fmt.Sprintf("%d of %d smoke check(s) passed", passed, len(res.Checks))
			if len(failed) > 0 {
				return detail, errors.New(strings.Join(failed, "; "))
			}
			return detail, nil
		})
	}
	rep.TimeToRecovery = clk.Since(start)
	rep.Passed = len(rep.Differences) == 0
	for _, p := range rep.Phases {
		if p.Error != "" {
			rep.Passed = false
		}
	}
	return rep, nil
}

// startCapacity gives the drill's cluster its pools on a local cloud:
// each pool's minimum nodes (at least one, so a pool's workloads can run
// without waiting for a scale-up) and Bosun's provisioner for the rest,
// as `bosun up` does. It returns the nodes registered.
func startCapacity(ctx context.Context, cl *fleet.Cluster, cs kubernetes.Interface, boot time.Duration, clk clock.WithTicker) (int, error) {
	spec := *cl
	spec.NodePools = append([]fleet.NodePool(nil), cl.NodePools...)
	n := 0
	for i := range spec.NodePools {
		p := &spec.NodePools[i]
		p.MinSize = max(p.MinSize, 1)
		p.MaxSize = max(p.MaxSize, p.MinSize)
		n += p.MinSize
	}
	reg := localcloud.NewClientRegistry()
	reg.Add(spec.ID, cs)
	cloud := localcloud.New(localcloud.Config{BootDelay: boot}, clk, reg)
	if err := cloud.AddCluster(&spec); err != nil {
		return 0, fmt.Errorf("the cluster's pools on the local cloud: %w", err)
	}
	if err := cloud.Bootstrap(ctx); err != nil {
		return 0, fmt.Errorf("registering the pools' nodes: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	go cloud.Run(ctx, clk, 250*time.Millisecond, quiet)
	prov, err := provisioner.NewProvisioner(controller.Deps{Provider: cloud, Cluster: spec.ID, Logger: quiet, Clock: clk},
		provisioner.Options{Templates: localcloud.ZoneTemplates(spec.Region)})
	if err != nil {
		return 0, fmt.Errorf("the drill's provisioner: %w", err)
	}
	go func() { _ = prov.Run(ctx, cs, time.Second) }()
	return n, nil
}

// waitHealthy polls until the rendered workloads rolled out, or returns
// what did not at timeout.
func waitHealthy(ctx context.Context, clk clock.Clock, cs kubernetes.Interface, res *render.Result, timeout time.Duration) ([]string, error) {
	deadline := clk.Now().Add(timeout)
	for {
		bad, err := lifecycle.RenderedUnhealthy(ctx, cs, res)
		if err != nil || len(bad) == 0 || !clk.Now().Before(deadline) {
			return bad, err
		}
		select {
		case <-ctx.Done():
			return bad, ctx.Err()
		case <-clk.After(500 * time.Millisecond):
		}
	}
}
