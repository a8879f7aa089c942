// Package up implements `bosun up`.
package up

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/localfleet"
)

type flagpole struct {
	stateDir   string
	binDir     string
	nodes      int
	nodeCPU    string
	nodeMemory string
	bootDelay  time.Duration
}

// NewCommand returns `bosun up`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a local cluster with kwok nodes and keep it running",
		Long: `Start the local fleet on this machine and keep it running in the foreground.

Today the fleet is one cluster, "local": a real etcd, kube-apiserver,
kube-scheduler and kube-controller-manager, with nodes simulated by kwok, so
pods are scheduled and "run" without containers. Its admin kubeconfig is
written to <state-dir>/kubeconfig.

The binaries come from "make tools" (built once from pinned Go modules into
~/.cache/bosun/bin/<version>; override with --bin-dir or BOSUN_BIN_DIR).

Stop with Ctrl-C, or run "bosun down" from another shell. Only one
"bosun up" can run per state directory; every start is clean.`,
		Example: `  bosun up
  bosun up --nodes 5 --node-cpu 8 --node-memory 32Gi
  BOSUN_HOME=/tmp/fleet2 bosun up   # a second, separate fleet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.stateDir == "" {
				dir, err := localfleet.DefaultStateDir()
				if err != nil {
					return err
				}
				flags.stateDir = dir
			}
			return localfleet.Up(cmd.Context(), localfleet.Options{
				StateDir:      flags.stateDir,
				BinDir:        flags.binDir,
				Nodes:         flags.nodes,
				NodeCPU:       flags.nodeCPU,
				NodeMemory:    flags.nodeMemory,
				NodeBootDelay: flags.bootDelay,
				Out:           streams.Out,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.stateDir, "state-dir", "", "state directory (default $BOSUN_HOME or ~/.bosun)")
	f.StringVar(&flags.binDir, "bin-dir", "", "directory with etcd, kube-apiserver, kube-scheduler, kube-controller-manager and kwok (default $BOSUN_BIN_DIR or ~/.cache/bosun/bin/<k8s-version>)")
	f.IntVar(&flags.nodes, "nodes", 3, "number of kwok nodes")
	f.StringVar(&flags.nodeCPU, "node-cpu", "4", "CPU capacity of each node (a Kubernetes quantity)")
	f.StringVar(&flags.nodeMemory, "node-memory", "16Gi", "memory capacity of each node (a Kubernetes quantity)")
	f.DurationVar(&flags.bootDelay, "boot-delay", 0, "how long a new node takes to turn Ready")
	return cmd
}
