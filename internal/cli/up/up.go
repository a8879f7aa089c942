// Package up implements `bosun up`.
package up

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/agent"
	cliagent "github.com/bosun-platform/bosun/internal/cli/agent"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/localfleet"
)

type flagpole struct {
	stateDir  string
	binDir    string
	fleetDir  string
	clusters  []string
	bootDelay time.Duration
	keep      bool
	clusterAS bool
	console   string
}

// NewCommand returns `bosun up`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local fleet: a real control plane per cluster, kwok nodes and a simulated cloud",
		Long: `Start the local fleet on this machine and keep it running in the foreground.

Every cluster of the fleet with "provider: local" gets a real etcd,
kube-apiserver, kube-scheduler and kube-controller-manager, with nodes
simulated by kwok. Its node pools become node groups in the local cloud, a
simulated EC2: instances boot for --boot-delay and then register as Nodes
with the labels EKS/Karpenter nodes carry; capacity can run out
(InsufficientInstanceCapacity) and spot instances get interruption notices
("bosun sim"). Each group starts at its minimum size.

Each cluster's rendered manifests are applied, and the agent's controllers
run against it from this process: downscaler, janitor, the provisioner
(pending pods get nodes, spot first, on-demand within seconds when spot runs
out), the spot interruption handler, the scale-down (empty and under-used
nodes go after 10 minutes, on-demand first) and the on-demand reaper
(fallback on-demand nodes older than 2 hours are replaced by spot once spot
is back). With --cluster-autoscaler, cluster-autoscaler sizes the node
groups instead of the provisioner, the scale-down and the reaper.

Without --fleet, the embedded example fleet is used (examples/fleet in the
source tree): clusters local-staging and local-prod.

The console (search and views over every cluster, cost, fleet status) is
served on --console, http://127.0.0.1:8080 by default.

A kubeconfig with one context per cluster (bosun-<id>) is written to
<state-dir>/kubeconfig; the cloud's API endpoint to <state-dir>/cloud.json.
The binaries come from "make tools" (override with --bin-dir or
BOSUN_BIN_DIR).

Stop with Ctrl-C, or run "bosun down" from another shell. Only one
"bosun up" runs per state directory. Every start is clean unless --keep.`,
		Example: `  bosun up
  bosun up --fleet ./my-fleet --clusters local-staging
  bosun up --boot-delay 5s          # fast node launches for experiments
  BOSUN_HOME=/tmp/fleet2 bosun up   # a second, separate fleet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The other flags are checked by localfleet.Up before
			// anything starts; a zero boot delay there means the default.
			if cmd.Flags().Changed("boot-delay") && flags.bootDelay == 0 {
				return fmt.Errorf("--boot-delay 0s: expected more than 0 (the local cloud reads 0 as its default, 45s); use 1ms for nodes that register at once")
			}
			stateDir, err := localfleet.ResolveStateDir(flags.stateDir)
			if err != nil {
				return err
			}
			return localfleet.Up(cmd.Context(), localfleet.Options{
				StateDir:          stateDir,
				BinDir:            flags.binDir,
				FleetDir:          flags.fleetDir,
				Clusters:          flags.clusters,
				BootDelay:         flags.bootDelay,
				Keep:              flags.keep,
				ClusterAutoscaler: flags.clusterAS,
				ConsoleAddr:       flags.console,
				Out:               streams.Out,
				ParseAgent: func(args []string, env map[string]string) (agent.Options, error) {
					return cliagent.ParseOptions(args, env, streams)
				},
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.stateDir, "state-dir", "", "state directory (default $BOSUN_HOME or ~/.bosun)")
	f.StringVar(&flags.binDir, "bin-dir", "", "directory with etcd, kube-apiserver, kube-scheduler, kube-controller-manager and kwok (default $BOSUN_BIN_DIR or ~/.cache/bosun/bin/<k8s-version>)")
	f.StringVar(&flags.fleetDir, "fleet", "", "fleet directory (default: the embedded example fleet)")
	f.StringSliceVar(&flags.clusters, "clusters", nil, "start only these local-provider clusters (comma-separated IDs)")
	f.DurationVar(&flags.bootDelay, "boot-delay", 45*time.Second, "how long a launched instance boots before its node registers")
	f.StringVar(&flags.console, "console", "127.0.0.1:8080", `serve the console over the fleet on this loopback host:port ("" = no console); checked before anything starts`)
	f.BoolVar(&flags.clusterAS, "cluster-autoscaler", false, "serve cluster-autoscaler's externalgrpc API per cluster (see docs/cluster-autoscaler.md) instead of running Bosun's provisioner")
	f.BoolVar(&flags.keep, "keep", false, "restart from the previous run's state (cluster data, cloud instances, capacity limits) instead of a clean start")
	return cmd
}
