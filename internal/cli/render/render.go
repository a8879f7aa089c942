// Package render implements `bosun render`.
package render

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

type flagpole struct {
	fleetDir string
	cluster  string
	out      string
}

// NewCommand returns `bosun render`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render a fleet's manifests for one cluster or all",
		Long: `Render the fleet directory into plain Kubernetes manifests.

Config item defaults (defaults.yaml) are merged under each cluster's own
items, then every template under manifests/ is executed with the cluster,
its config items, node pools and vars. The output is byte-for-byte the same
for the same inputs and carries a version hash that changes exactly when
the output changes.

Without --out the manifests of the cluster are printed as one YAML stream.
With --out each cluster is written to <out>/<cluster-id>/<component>/...,
with its version in .bosun-version. Without --cluster every cluster is
rendered, one after the other.`,
		Example: `  bosun render --fleet examples/fleet --cluster aws-prod-eu1
  bosun render --fleet examples/fleet --out /tmp/rendered`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, flags) },
	}
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory")
	f.StringVar(&flags.cluster, "cluster", "", "cluster ID (default: all clusters)")
	f.StringVar(&flags.out, "out", "", "write manifests under this directory instead of stdout")
	return cmd
}

func run(ctx context.Context, streams iostreams.IOStreams, flags *flagpole) error {
	fl, err := fleet.Load(flags.fleetDir)
	if err != nil {
		return err
	}
	r, err := render.New(fl)
	if err != nil {
		return err
	}
	ids := []string{flags.cluster}
	if flags.cluster == "" {
		ids = ids[:0]
		for _, c := range fl.Clusters {
			ids = append(ids, c.ID)
		}
	}
	for _, id := range ids {
		res, err := r.Cluster(ctx, id)
		if err != nil {
			return err
		}
		if flags.out == "" {
			if err := render.WriteStream(streams.Out, res); err != nil {
				return err
			}
			continue
		}
		if err := render.WriteDir(flags.out, res); err != nil {
			return err
		}
		fmt.Fprintf(streams.ErrOut, "%s: %d objects, version %s\n", id, len(res.Objects), res.Version)
	}
	return nil
}
