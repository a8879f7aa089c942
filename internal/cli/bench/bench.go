// Package bench implements `bosun bench`: benchmarks that start their own
// throwaway clusters and print figures (issue 7: `bosun bench scaleup`).
package bench

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	examplebench "github.com/bosun-platform/bosun/examples/bench"
	"github.com/bosun-platform/bosun/internal/bench/scaleup"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/controlplane"
)

// NewCommand returns `bosun bench` and its subcommands.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks on throwaway local clusters: scale-up under ICE, peaks, scale",
		Long: `Run Bosun's benchmarks. Each starts its own throwaway control plane
(etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok) with the
local cloud over it, measures, and stops everything. Nothing of "bosun up" is
touched. See docs/bench.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(scaleUpCommand(streams))
	return cmd
}

type flagpole struct {
	scenario          string
	format            string
	clusterAutoscaler string
	keepGoing         bool
	nodes, pods       int
	binDir            string
	agent             bool
	agentProfiles     string
}

func scaleUpCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "scaleup",
		Short: "Measure how fast pods get capacity: spot ICE fallback, normal market, peak with overprovisioning, reaper, scale",
		Long: `Play a scale-up scenario against a throwaway cluster and print the figures.

Bosun's provisioner runs in this process (the code "bosun up" runs) against
the local cloud. Built-in scenarios (examples/bench): ` + strings.Join(scaleup.Builtin, ", ") + `;
--scenario also takes a file in the same format.

  ice     12 spot groups all out of capacity, 2 on-demand: pods -> on-demand
          requested, first capacity error -> on-demand requested (< 5 s),
          pods -> Running; baseline: the seeds' sequential 5-min timeouts
  normal  the same on a normal spot market
  peak    200 high-priority pods at once, without and with overprovisioning
  reaper  on-demand share back to 0 after spot returns, within PDBs
  scale   1,000 nodes and 30,000 pods: decision latency p50/p99, and the
          RSS of "bosun agent" with every controller (run as a subprocess)

--cluster-autoscaler PATH runs the scenario again with that
cluster-autoscaler binary (externalgrpc over the same local cloud, priority
expander from the pools) in place of Bosun's provisioner and reports both.
Without it the report says the comparison was skipped.

Figures go to stdout (--format json for machines); progress to stderr.`,
		Example: `  bosun bench scaleup --scenario ice
  bosun bench scaleup --scenario peak --format json > peak.json
  bosun bench scaleup --scenario scale --nodes 100 --pods 3000
  bosun bench scaleup --scenario ice --cluster-autoscaler ~/bin/cluster-autoscaler`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.format != "text" && flags.format != "json" {
				return fmt.Errorf("--format %q: expected text or json", flags.format)
			}
			if flags.scenario == "" {
				return fmt.Errorf("--scenario: give a built-in name (%s) or a file", strings.Join(scaleup.Builtin, ", "))
			}
			sc, err := scaleup.Load(flags.scenario, examplebench.FS)
			if err != nil {
				return err
			}
			if err := sc.Override(flags.nodes, flags.pods); err != nil {
				return err
			}
			if err := scaleup.CheckClusterAutoscaler(flags.clusterAutoscaler); err != nil {
				return err
			}
			bins, err := controlplane.FindBinaries(flags.binDir)
			if err != nil {
				return err
			}
			opts := scaleup.Options{
				Binaries: bins, ClusterAutoscaler: flags.clusterAutoscaler, KeepGoing: flags.keepGoing,
				Progress: streams.ErrOut,
			}
			if flags.agent && sc.Measure == scaleup.MeasureScale {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding this executable to run bosun agent (or give --agent=false), %w", err)
				}
				opts.Agent = []string{exe, "agent"}
				opts.AgentProfiles = flags.agentProfiles
			}
			rep, err := scaleup.Run(cmd.Context(), sc, opts)
			if err != nil {
				return err
			}
			if flags.format == "json" {
				return rep.WriteJSON(streams.Out)
			}
			return rep.WriteText(streams.Out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.scenario, "scenario", "", "built-in scenario name ("+strings.Join(scaleup.Builtin, ", ")+") or scenario file")
	f.StringVar(&flags.format, "format", "text", "output: text or json")
	f.StringVar(&flags.clusterAutoscaler, "cluster-autoscaler", "", "cluster-autoscaler binary to run the same scenario with, side by side (default: skipped)")
	f.BoolVar(&flags.keepGoing, "keep-going", false, "report a failed run as skipped and go on with the others")
	f.IntVar(&flags.nodes, "nodes", 0, "scale scenario: base nodes instead of the file's")
	f.IntVar(&flags.pods, "pods", 0, "pods instead of the file's (scale: all pods; others: the workload or burst)")
	f.BoolVar(&flags.agent, "agent", true, "scale: also run bosun agent (this executable) with every controller, in dry-run, and report its RSS; false reports this process's memory")
	f.StringVar(&flags.agentProfiles, "agent-profiles", "", "scale: save the agent's heap profiles (go tool pprof) to this directory, every 30 s while pods arrive and at the end")
	f.StringVar(&flags.binDir, "bin-dir", "", "`directory` of the control-plane binaries (default $BOSUN_BIN_DIR or the cache of make tools)")
	return cmd
}
