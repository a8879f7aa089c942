// Package controller implements `bosun controller`, the lifecycle manager.
package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	clie2e "github.com/bosun-platform/bosun/internal/cli/e2e"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/e2e"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/render"
)

type flagpole struct {
	fleetDir    string
	interval    time.Duration
	concurrency int
	clusters    []string
	once        bool
	dryRun      bool
	kubeconfig  string
	localCloud  string
	listen      string
	timeout     time.Duration
	e2e         string
	e2eTimeout  time.Duration
}

// NewCommand returns `bosun controller`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Keep every cluster of the fleet at its rendered state (the lifecycle manager)",
		Long: `Run the lifecycle manager over a fleet: every interval, for each cluster,
lint errors for the cluster stop it (the status names the rules); an
updateBlock in the cluster file or a "bosun block" stops it (reported); the
infrastructure is brought to the cluster's spec; the rendered manifests are
applied (server-side apply, prune, deletions) and waited for until healthy;
node pools whose template changed are rolled (surge first, drain through
the Eviction API respecting PDBs, force only after node_drain_deadline).
The status goes to the ConfigMap bosun-system/bosun-status of each cluster,
with Events; "bosun clusters" lists it.

One failing cluster never blocks the others: each backs off on its own
(doubling up to 10m). Every piece of state lives in the clusters and their
cloud, so the controller may be killed at any time and started again.

Clusters are reached through the kubeconfig context "bosun-<id>" or "<id>".
For local clusters the node groups are those of the local cloud of
"bosun up" (--local-cloud): the controller creates, updates and deletes
them through its API as the controller inside "bosun up" does, and rolls
their nodes; "bosun up" already runs this controller over its own fleet. For provider: aws clusters the infrastructure (EKS control
plane, launch templates, Auto Scaling groups, interruption queue) is built
as "bosun apply --infra" builds it, with the AWS SDK's default credentials
and the cluster's region (docs/aws.md).

--e2e after-change (the default) runs the smoke suite of "bosun e2e" once a
cluster reached a version it has no e2e result for, and records the result
in its status, where "bosun promote" reads it (L43); a failed suite is an
Event and a metric, never a rollback. --e2e off leaves it to people or CI.
See docs/lifecycle.md.`,
		Example: `  bosun controller --fleet examples/fleet --kubeconfig ~/.bosun/kubeconfig --clusters local-staging --once --dry-run
  bosun controller --fleet fleet/ --interval 1m --concurrency 8 --listen 127.0.0.1:9464`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), streams, flags)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory (read again on every pass)")
	f.DurationVar(&flags.interval, "interval", time.Minute, "time between passes")
	f.IntVar(&flags.concurrency, "concurrency", 4, "clusters worked on at once")
	f.StringSliceVar(&flags.clusters, "clusters", nil, "only these cluster IDs (default: every cluster of the fleet)")
	f.BoolVar(&flags.once, "once", false, "make one pass, print every cluster's outcome and exit (1 if any failed)")
	f.BoolVar(&flags.dryRun, "dry-run", false, "report what would change; change nothing and write no status")
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig with a context per cluster (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&flags.localCloud, "local-cloud", "", "`dir`: state directory of a running bosun up, for the node groups of local clusters (default: none)")
	f.StringVar(&flags.listen, "listen", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9464 (default: off)")
	f.DurationVar(&flags.timeout, "health-timeout", 5*time.Minute, "how long applied workloads may take to roll out")
	f.StringVar(&flags.e2e, "e2e", "after-change", "run the e2e suite after a cluster reaches a new version: after-change or off")
	f.DurationVar(&flags.e2eTimeout, "e2e-timeout", 2*time.Minute, "time limit of each e2e check (the provisioner check gets twice this)")
	return cmd
}

func (f *flagpole) validate() error {
	var errs []error
	if f.interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval %s: expected a positive duration", f.interval))
	}
	if f.concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency %d: expected 1 or more", f.concurrency))
	}
	if f.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--health-timeout %s: expected a positive duration", f.timeout))
	}
	if f.e2e != "after-change" && f.e2e != "off" {
		errs = append(errs, fmt.Errorf("--e2e %q: expected after-change or off", f.e2e))
	}
	if f.e2eTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--e2e-timeout %s: expected a positive duration", f.e2eTimeout))
	}
	if f.listen != "" {
		if _, _, err := net.SplitHostPort(f.listen); err != nil {
			errs = append(errs, fmt.Errorf("--listen %q: expected host:port", f.listen))
		}
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, streams iostreams.IOStreams, flags *flagpole) error {
	if err := flags.validate(); err != nil {
		return err
	}
	var cloud provider.Provider
	var localInfra provider.Infra
	if flags.localCloud != "" {
		e, err := local.ReadEndpoint(flags.localCloud)
		if err != nil {
			return fmt.Errorf("--local-cloud: %w", err)
		}
		cloud, localInfra = local.New(e), local.NewInfra(e)
	}
	aws := awsInfra(ctx)
	reg := prometheus.NewRegistry()
	if flags.listen != "" {
		l, err := net.Listen("tcp", flags.listen)
		if err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		fmt.Fprintf(streams.ErrOut, "metrics on http://%s/metrics\n", l.Addr())
	}
	var runE2E lifecycle.E2ERunner
	if flags.e2e == "after-change" {
		runE2E = e2eRunner(flags.e2eTimeout)
	}
	c, err := lifecycle.New(lifecycle.Options{
		E2E:      runE2E,
		FleetDir: flags.fleetDir, Interval: flags.interval, Concurrency: flags.concurrency,
		Clusters: flags.clusters, DryRun: flags.dryRun, HealthTimeout: flags.timeout,
		Registry: reg, Out: streams.Out,
		Log: slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Connector: lifecycle.RESTConnector{
			Config: lifecycle.KubeconfigContexts(flags.kubeconfig),
			Infra: func(cl *fleet.Cluster) (provider.Infra, error) {
				if cl.Provider == "local" {
					return localInfra, nil // nil without --local-cloud: not managed
				}
				return aws.forCluster(cl)
			},
			Cloud: func(cl *fleet.Cluster) provider.Provider {
				if cl.Provider == "local" && cloud != nil {
					return cloud
				}
				return nil
			},
		},
	})
	if err != nil {
		return err
	}
	if !flags.once {
		return c.Run(ctx)
	}
	results, err := c.Pass(ctx)
	if err != nil {
		return err
	}
	return summary(streams.Out, results)
}

// summary prints one line per cluster and fails when any cluster failed.
func summary(w io.Writer, results []lifecycle.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tPHASE\tDESIRED\tAPPLIED\tNOTE")
	failed := 0
	for _, r := range results {
		note := r.Status.BlockedReason
		if r.Err != nil {
			failed++
			note = r.Err.Error()
		} else if r.Status.Roll != nil {
			note = "roll: " + r.Status.Roll.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Status.Cluster, r.Status.Phase, r.Status.DesiredVersion, r.Status.AppliedVersion, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d clusters failed", failed, len(results))
	}
	return nil
}

// awsInfras builds the AWS infrastructure of provider: aws clusters, one
// per region for the controller's life: the SDK configuration (files,
// environment, credentials) is loaded once per region, not on every pass.
type awsInfras struct {
	ctx     context.Context
	mu      sync.Mutex
	regions map[string]*bosunaws.Infra
}

func awsInfra(ctx context.Context) *awsInfras {
	return &awsInfras{ctx: ctx, regions: map[string]*bosunaws.Infra{}}
}

// forCluster is the RESTConnector's Infra: nil for clusters of other
// providers; an AWS configuration that fails to load fails the pass.
func (a *awsInfras) forCluster(cl *fleet.Cluster) (provider.Infra, error) {
	if cl.Provider != "aws" {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if in, ok := a.regions[cl.Region]; ok {
		return in, nil
	}
	cfg, err := bosunaws.LoadConfig(a.ctx, cl.Region, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	in := bosunaws.NewInfra(cfg, "")
	a.regions[cl.Region] = in
	return in, nil
}

// e2eRunner runs `bosun e2e`'s suite for the controller and records the
// result in the cluster's status.
func e2eRunner(timeout time.Duration) lifecycle.E2ERunner {
	return func(ctx context.Context, cl *fleet.Cluster, conn *lifecycle.Conn, res *render.Result) (lifecycle.E2EResult, error) {
		if conn.Config == nil {
			return lifecycle.E2EResult{}, fmt.Errorf("no client configuration for cluster %s", cl.ID)
		}
		return e2e.Run(ctx, e2e.Options{
			Cluster: cl.ID, Kube: conn.Kube, Config: conn.Config, Rendered: res,
			SkipProvisioner: clie2e.ProvisionerAbsent(cl, res), PoolSelector: e2e.PoolSelector(cl),
			Timeout: timeout, Record: true,
		})
	}
}
