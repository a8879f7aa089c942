// Package drift implements `bosun drift` (L49).
package drift

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/drift"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/render"
)

type flagpole struct {
	fleetDir   string
	cluster    string
	kubeconfig string
	diff       bool
	output     string
	timeout    time.Duration
}

// exitError makes the command exit 1 after printing the report.
type exitError struct{}

func (exitError) Error() string { return "drift found" }

// ExitCode is the process's exit status.
func (exitError) ExitCode() int { return 1 }

// Silent: the report said it.
func (exitError) Silent() bool { return true }

// NewCommand returns `bosun drift`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "drift --fleet DIR [--cluster ID]",
		Short: "Compare live clusters with the fleet and clusters of one environment with each other",
		Long: `Report drift (L49), changing nothing:

- live vs rendered: every object the fleet renders for a cluster is applied
  as a server-side dry-run and compared with the live object (as "bosun
  diff" does); objects apply would create, change, prune or delete are
  listed (--diff prints the unified diffs);
- clusters of one environment with each other: API server version, the
  fleet revision their status says they run, and the live images of every
  workload the fleet renders for two or more of them.

Clusters are reached through the kubeconfig context bosun-<id> or <id>;
one that cannot be reached is reported as such. Exit status 1 when
anything drifted.`,
		Example: `  bosun drift --fleet examples/fleet --kubeconfig ~/.bosun/kubeconfig
  bosun drift --fleet fleet/ --cluster aws-prod-eu1 --diff`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.output != "" && flags.output != "json" {
				return fmt.Errorf("-o %q: expected json", flags.output)
			}
			f, err := fleet.Load(flags.fleetDir)
			if err != nil {
				return err
			}
			clusters := f.Clusters
			if flags.cluster != "" {
				cl := f.Cluster(flags.cluster)
				if cl == nil {
					return fmt.Errorf("--cluster: cluster %q is not in fleet %s", flags.cluster, f.Dir)
				}
				// The environment comparison needs the cluster's peers.
				clusters = nil
				for _, c := range f.Clusters {
					if c.Environment == cl.Environment {
						clusters = append(clusters, c)
					}
				}
			}
			r, err := render.New(f)
			if err != nil {
				return fmt.Errorf("preparing the fleet's templates, %w", err)
			}
			rendered := map[string]*render.Result{}
			for _, cl := range clusters {
				if res, err := r.Cluster(cmd.Context(), cl.ID); err == nil {
					rendered[cl.ID] = res
				}
			}
			cfgFor := lifecycle.KubeconfigContexts(flags.kubeconfig)
			opts := drift.Options{Config: func(cl *fleet.Cluster) (*rest.Config, error) {
				cfg, err := cfgFor(cl)
				if err == nil {
					cfg.Timeout = flags.timeout
				}
				return cfg, err
			}}
			if flags.diff && flags.output == "" {
				opts.Diff = func(cluster string) io.Writer {
					fmt.Fprintf(streams.Out, "=== %s\n", cluster)
					return streams.Out
				}
			}
			rep := drift.Check(cmd.Context(), clusters, rendered, opts)
			if flags.cluster != "" {
				rep = only(rep, flags.cluster)
			}
			if flags.output == "json" {
				enc := json.NewEncoder(streams.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				write(streams.Out, rep)
			}
			if rep.Drifted() {
				return exitError{}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory")
	fl.StringVar(&flags.cluster, "cluster", "", "only this cluster (compared with the others of its environment)")
	fl.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig with a context per cluster, bosun-<id> or <id> (default $KUBECONFIG or ~/.kube/config)")
	fl.BoolVar(&flags.diff, "diff", false, "print the unified diff of each cluster")
	fl.StringVarP(&flags.output, "output", "o", "", "output format: json")
	fl.DurationVar(&flags.timeout, "timeout", 30*time.Second, "time limit of each API request")
	return cmd
}

// only keeps one cluster's report and the environment differences that
// involve it.
func only(rep drift.Report, id string) drift.Report {
	var out drift.Report
	for _, c := range rep.Clusters {
		if c.Cluster == id {
			out.Clusters = append(out.Clusters, c)
		}
	}
	for _, d := range rep.Environments {
		if _, ok := d.Values[id]; ok {
			out.Environments = append(out.Environments, d)
		}
	}
	return out
}

func write(w io.Writer, rep drift.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tENVIRONMENT\tDRIFT")
	for _, c := range rep.Clusters {
		var what []string
		switch {
		case c.Error != "":
			what = append(what, "not checked: "+c.Error)
		case !c.Drifted():
			what = append(what, "none")
		default:
			for _, l := range []struct {
				verb string
				objs []string
			}{{"changed", c.Changed}, {"prune", c.Pruned}, {"delete", c.Deleted}, {"dry-run failed", c.Failed}} {
				if len(l.objs) > 0 {
					what = append(what, fmt.Sprintf("%s: %s", l.verb, strings.Join(l.objs, ", ")))
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Cluster, c.Environment, strings.Join(what, "; "))
	}
	_ = tw.Flush()
	if len(rep.Environments) == 0 {
		fmt.Fprintln(w, "\nclusters of each environment agree")
		return
	}
	fmt.Fprintln(w, "\nclusters of one environment differ:")
	for _, d := range rep.Environments {
		ids := make([]string, 0, len(d.Values))
		for id := range d.Values {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(w, "  %s, %s:\n", d.Environment, d.What)
		for _, id := range ids {
			fmt.Fprintf(w, "    %s: %s\n", id, d.Values[id])
		}
	}
}
