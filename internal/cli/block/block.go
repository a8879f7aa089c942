// Package block implements `bosun block` and `bosun unblock`: an update
// block set on a live cluster, for emergencies, without a fleet change.
package block

import (
	"errors"
	"fmt"
	"strings"
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
	reason     string
}

// NewCommand returns `bosun block`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "block CLUSTER --reason TEXT",
		Short: "Stop the lifecycle manager from changing a cluster, with a reason",
		Long: `Set an update block on the live cluster: the annotation
lifecycle.bosun.dev/update-block on its ConfigMap bosun-system/bosun-status.
While it is set, "bosun controller" makes no infrastructure change, applies
nothing and rolls no node there; it still reports the cluster, with the
reason. For a block kept in the fleet, write updateBlock: "reason" in the
cluster file instead. "bosun unblock CLUSTER" removes it.`,
		Example: `  bosun block local-prod --reason "incident 4711: etcd restore" --fleet examples/fleet --kubeconfig ~/.bosun/kubeconfig`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(flags.reason) == "" {
				return errors.New("--reason: required, say why the cluster must not be updated")
			}
			cs, err := connect(flags, args[0])
			if err != nil {
				return err
			}
			if err := lifecycle.SetBlock(cmd.Context(), cs, flags.reason); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "cluster %s blocked: %s\n", args[0], strings.TrimSpace(flags.reason))
			return nil
		},
	}
	addFlags(cmd, flags)
	cmd.Flags().StringVar(&flags.reason, "reason", "", "why the cluster must not be updated (required)")
	return cmd
}

// NewUnblockCommand returns `bosun unblock`.
func NewUnblockCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "unblock CLUSTER",
		Short: "Remove the update block that bosun block set on a cluster",
		Long: `Remove the live update block of a cluster set by "bosun block". An
updateBlock in the cluster file stays until it is removed from the file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := connect(flags, args[0])
			if err != nil {
				return err
			}
			if err := lifecycle.SetBlock(cmd.Context(), cs, ""); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "cluster %s unblocked\n", args[0])
			return nil
		},
	}
	addFlags(cmd, flags)
	return cmd
}

func addFlags(cmd *cobra.Command, flags *flagpole) {
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory (the cluster must be in it)")
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig with a context bosun-<id> or <id> (default $KUBECONFIG or ~/.kube/config)")
}

func connect(flags *flagpole, id string) (kubernetes.Interface, error) {
	f, err := fleet.Load(flags.fleetDir)
	if err != nil {
		return nil, err
	}
	cl := f.Cluster(id)
	if cl == nil {
		return nil, fmt.Errorf("cluster %q is not in fleet %s", id, f.Dir)
	}
	cfg, err := lifecycle.KubeconfigContexts(flags.kubeconfig)(cl)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 30 * time.Second
	return kubernetes.NewForConfig(cfg)
}
