// Package clusters implements `bosun clusters`: the registry with each
// cluster's live lifecycle status.
package clusters

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
)

type flagpole struct {
	fleetDir   string
	kubeconfig string
	output     string
	timeout    time.Duration
}

// NewCommand returns `bosun clusters`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "clusters",
		Short: "List the fleet's clusters with their lifecycle status",
		Long: `List every cluster of the fleet directory (the registry) with the status the
lifecycle manager recorded in it (ConfigMap bosun-system/bosun-status):
phase, the version the fleet renders now, the version applied, and an
update block. A cluster whose API cannot be reached is listed as
Unreachable. -o wide adds environment, channel, roll progress and the last
error; -o json prints everything.`,
		Example: `  bosun clusters --fleet examples/fleet --kubeconfig ~/.bosun/kubeconfig
  bosun clusters --fleet fleet/ -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.output != "" && flags.output != "wide" && flags.output != "json" {
				return fmt.Errorf("-o %q: expected wide or json", flags.output)
			}
			f, err := fleet.Load(flags.fleetDir)
			if err != nil {
				return err
			}
			cfgFor := lifecycle.KubeconfigContexts(flags.kubeconfig)
			ctx, cancel := context.WithTimeout(cmd.Context(), flags.timeout+5*time.Second)
			defer cancel()
			list := lifecycle.List(ctx, f, func(cl *fleet.Cluster) (kubernetes.Interface, error) {
				cfg, err := cfgFor(cl)
				if err != nil {
					return nil, err
				}
				cfg.Timeout = flags.timeout
				return kubernetes.NewForConfig(cfg)
			})
			return write(streams.Out, list, flags.output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory")
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig with a context per cluster, bosun-<id> or <id> (default $KUBECONFIG or ~/.kube/config)")
	f.StringVarP(&flags.output, "output", "o", "", "output format: wide or json")
	f.DurationVar(&flags.timeout, "timeout", 5*time.Second, "how long to wait for each cluster's API")
	return cmd
}

func write(w io.Writer, list []lifecycle.Listed, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "CLUSTER\tPHASE\tRENDERED\tAPPLIED\tBLOCK"
	if output == "wide" {
		header += "\tENVIRONMENT\tCHANNEL\tROLL\tSINCE\tERROR"
	}
	fmt.Fprintln(tw, header)
	for _, l := range list {
		block := l.FileBlock
		if l.LiveBlock != "" {
			if block != "" {
				block += "; "
			}
			block += l.LiveBlock
		}
		rendered := l.Rendered
		if l.RenderError != "" {
			rendered = "(does not render)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", l.ID, l.Phase(), dash(rendered), dash(l.Status.AppliedVersion), dash(block))
		if output == "wide" {
			since := ""
			if !l.Status.Since.IsZero() {
				since = l.Status.Since.UTC().Format(time.RFC3339)
			}
			errText := l.Error
			if errText == "" {
				errText = l.Status.LastError
			}
			if errText == "" {
				errText = l.RenderError
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s", l.Environment, l.Channel, dash(l.Status.Roll.String()), dash(since), dash(errText))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
