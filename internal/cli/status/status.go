// Package status implements `bosun status`: the running local fleet at a
// glance.
package status

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/cli/sim"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/localfleet"
	"github.com/bosun-platform/bosun/internal/provider/local"
)

type flagpole struct {
	stateDir string
}

// NewCommand returns `bosun status`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running local fleet: clusters, nodes, pending pods, node groups",
		Long: `Show every cluster of the running "bosun up": its API server, Ready and total
nodes (spot and on-demand), and pending pods; then the local cloud's node
groups and capacity limits. A cluster that does not answer is shown as down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := localfleet.ResolveStateDir(flags.stateDir)
			if err != nil {
				return err
			}
			clients, ids, err := localfleet.Clients(dir)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLUSTER\tSTATE\tNODES READY/TOTAL\tSPOT\tON-DEMAND\tPODS PENDING")
			for _, id := range ids {
				writeCluster(cmd.Context(), tw, id, clients[id])
			}
			tw.Flush()
			fmt.Fprintln(streams.Out)
			e, err := local.ReadEndpoint(dir)
			if err != nil {
				return err
			}
			st, err := local.New(e).Status(cmd.Context())
			if err != nil {
				return err
			}
			sim.PrintStatus(streams.Out, st)
			return nil
		},
	}
	cmd.Flags().StringVar(&flags.stateDir, "state-dir", "", "state directory of the running bosun up (default $BOSUN_HOME or ~/.bosun)")
	return cmd
}

func writeCluster(ctx context.Context, w io.Writer, id string, cs kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(w, "%s\tdown (%v)\t\t\t\t\n", id, err)
		return
	}
	ready, spot, od := 0, 0, 0
	for _, n := range nodes.Items {
		if controlplane.NodeReady(&n) {
			ready++
		}
		switch n.Labels["karpenter.sh/capacity-type"] {
		case "spot":
			spot++
		case "on-demand":
			od++
		}
	}
	pending, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Pending"})
	pendingCount := "?"
	if err == nil {
		pendingCount = fmt.Sprint(len(pending.Items))
	}
	fmt.Fprintf(w, "%s\tup\t%d/%d\t%d\t%d\t%s\n", id, ready, len(nodes.Items), spot, od, pendingCount)
}
