// Package apply implements `bosun apply`.
package apply

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/render"
)

type flagpole struct {
	fleetDir   string
	cluster    string
	kubeconfig string
	context    string
	dryRun     bool
	infra      bool
	endpoint   string
}

// NewCommand returns `bosun apply`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Apply a cluster's rendered manifests with server-side apply",
		Long: `Render one cluster of the fleet and apply it to its API server with
server-side apply (field manager "bosun"): CRDs first, waiting until they
are established, then namespaces, then everything else.

Every applied object is labelled app.kubernetes.io/managed-by=bosun and
bosun.dev/cluster=<id>, and the list of applied objects is kept in the
ConfigMap kube-system/bosun-inventory. Objects in the previous inventory
that are no longer rendered are pruned, but only when they still carry
those labels: Bosun never deletes what it did not create. The objects in
manifests/deletions.yaml are deleted before or after the apply.

An object that fails is reported with its kind/namespace/name and the API's
message; the rest are still applied and the command exits 1.

--infra builds the cluster's infrastructure instead (provider: aws): the EKS
control plane, a launch template and an Auto Scaling group per node pool,
and the interruption queue with its EventBridge rules (docs/aws.md). It
prints one line per change (create / update / delete, resource, name,
detail); with --dry-run it prints the plan and changes nothing. Only
resources tagged bosun.dev/managed-by=bosun and bosun.dev/cluster=<id> are
ever changed or deleted. Credentials come from the SDK's default chain.`,
		Example: `  bosun apply --fleet examples/fleet --cluster local-staging --kubeconfig ~/.bosun/kubeconfig
  bosun apply --fleet examples/fleet --cluster aws-prod-eu1 --context prod --dry-run
  bosun apply --fleet examples/fleet --cluster aws-prod-eu1 --infra --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := renderCluster(cmd.Context(), flags.fleetDir, flags.cluster)
			if err != nil {
				return err
			}
			if flags.infra {
				return applyInfra(cmd.Context(), streams.Out, res.Cluster, flags.endpoint, flags.dryRun)
			}
			cfg, err := apply.RESTConfig(flags.kubeconfig, flags.context)
			if err != nil {
				return err
			}
			a, err := apply.New(cfg, streams.Out)
			if err != nil {
				return err
			}
			out, err := a.Apply(cmd.Context(), res, apply.Options{DryRun: flags.dryRun})
			if err != nil {
				return err
			}
			return out.Err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory")
	f.StringVar(&flags.cluster, "cluster", "", "cluster ID (required)")
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&flags.context, "context", "", "kubeconfig context (default: the current context)")
	f.BoolVar(&flags.dryRun, "dry-run", false, "server-side dry-run: report what would change, change nothing")
	f.BoolVar(&flags.infra, "infra", false, "build the cluster's cloud infrastructure (provider aws: EKS, node groups, interruption queue) instead of applying manifests")
	f.StringVar(&flags.endpoint, "aws-endpoint", "", "with --infra: send every AWS request to this `URL` (an emulator such as moto; default: AWS)")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}

func renderCluster(ctx context.Context, dir, id string) (*render.Result, error) {
	fl, err := fleet.Load(dir)
	if err != nil {
		return nil, err
	}
	r, err := render.New(fl)
	if err != nil {
		return nil, err
	}
	return r.Cluster(ctx, id)
}

// applyInfra plans (dryRun) or applies the cluster's infrastructure and
// prints the changes.
func applyInfra(ctx context.Context, out io.Writer, cl *fleet.Cluster, endpoint string, dryRun bool) error {
	if cl.Provider != "aws" {
		return fmt.Errorf("--infra: cluster %s has provider %q; the infra step builds provider: aws clusters (the local fleet is built by bosun up)", cl.ID, cl.Provider)
	}
	spec, err := provider.SpecFor(cl)
	if err != nil {
		return err
	}
	cfg, err := bosunaws.LoadConfig(ctx, spec.Region, 0, nil)
	if err != nil {
		return err
	}
	infra := bosunaws.NewInfra(cfg, endpoint)
	var changes []provider.Change
	if dryRun {
		changes, err = infra.Plan(ctx, spec)
	} else {
		changes, err = infra.Apply(ctx, spec)
	}
	verb := "applied"
	if dryRun {
		verb = "plan"
	}
	for _, c := range changes {
		fmt.Fprintf(out, "%s: %s\n", verb, c)
	}
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cl.ID, err)
	}
	if len(changes) == 0 {
		fmt.Fprintf(out, "cluster %s: infrastructure up to date\n", cl.ID)
	}
	return nil
}
