// Package diff implements `bosun diff`.
package diff

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// ErrDifferent is returned when apply would change something, so that
// `bosun diff` exits 1 like diff(1).
var ErrDifferent = errors.New("the cluster differs from the fleet")

type flagpole struct {
	fleetDir   string
	cluster    string
	kubeconfig string
	context    string
}

// NewCommand returns `bosun diff`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show what bosun apply would change in a cluster",
		Long: `Render one cluster of the fleet and compare it with its API server: each
object is applied as a server-side dry-run and the result compared with the
live object, printed as a unified diff. Objects apply would prune, and
objects deletions.yaml would delete, are listed as "# prune" and "# delete"
lines. Nothing is changed. Exits 0 when there is no difference, 1 when there
is.`,
		Example: `  bosun diff --fleet examples/fleet --cluster local-staging --kubeconfig ~/.bosun/kubeconfig`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl, err := fleet.Load(flags.fleetDir)
			if err != nil {
				return err
			}
			r, err := render.New(fl)
			if err != nil {
				return err
			}
			res, err := r.Cluster(cmd.Context(), flags.cluster)
			if err != nil {
				return err
			}
			cfg, err := apply.RESTConfig(flags.kubeconfig, flags.context)
			if err != nil {
				return err
			}
			a, err := apply.New(cfg, streams.ErrOut)
			if err != nil {
				return err
			}
			out, err := a.Diff(cmd.Context(), res, streams.Out)
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "%s version %s: %d to change, %d to prune, %d to delete, %d failed\n",
				res.Cluster.ID, res.Version, len(out.Changed), len(out.Pruned), len(out.Deleted), len(out.Failed))
			if len(out.Failed) > 0 {
				return fmt.Errorf("%d object(s) failed the dry-run", len(out.Failed))
			}
			if len(out.Changed)+len(out.Pruned)+len(out.Deleted) > 0 {
				return ErrDifferent
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory")
	f.StringVar(&flags.cluster, "cluster", "", "cluster ID (required)")
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&flags.context, "context", "", "kubeconfig context (default: the current context)")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
