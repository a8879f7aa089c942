// Package sim implements `bosun sim`: controls of the local cloud's
// simulated market (capacity, interruptions), its status, and scenarios.
package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/localfleet"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/scenario"
)

type flagpole struct {
	stateDir string
}

// NewCommand returns `bosun sim` and its subcommands.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Drive the local cloud's simulated market: capacity, interruptions, scenarios",
		Long: `Control the simulated cloud of a running "bosun up".

The local cloud sells instance types per zone as spot or on-demand. "sim
capacity" limits what it has, so launches fail with
InsufficientInstanceCapacity and spot beyond a lowered limit is reclaimed
with interruption notices; "sim interrupt" sends a spot interruption notice
(the instance terminates two minutes later); "sim status" shows node groups,
instances and failures; "sim run" plays a scenario file.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&flags.stateDir, "state-dir", "", "state directory of the running bosun up (default $BOSUN_HOME or ~/.bosun)")
	cmd.AddCommand(capacityCommand(streams, flags), interruptCommand(streams, flags), scaleCommand(streams, flags), statusCommand(streams, flags), runCommand(streams, flags))
	return cmd
}

func (f *flagpole) client() (*local.Client, string, error) {
	dir, err := localfleet.ResolveStateDir(f.stateDir)
	if err != nil {
		return nil, "", err
	}
	e, err := local.ReadEndpoint(dir)
	if err != nil {
		return nil, "", err
	}
	return local.New(e), dir, nil
}

func capacityCommand(streams iostreams.IOStreams, flags *flagpole) *cobra.Command {
	var (
		key   localcloud.OfferingKey
		lc    string
		limit int
		clear bool
	)
	cmd := &cobra.Command{
		Use:   "capacity",
		Short: "Set or clear a capacity limit for instance type / zone / lifecycle",
		Long: `Set (--limit N) or clear (--clear) how many instances the market has for the
offerings that --type, --zone and --lifecycle select; an omitted selector
means any. --limit 0 makes every launch there fail with
InsufficientInstanceCapacity. Lowering a spot limit below what runs reclaims
the newest spot instances with interruption notices.`,
		Example: `  bosun sim capacity --lifecycle spot --limit 0        # all spot ICE
  bosun sim capacity --type m5.xlarge --zone local-a --limit 2
  bosun sim capacity --lifecycle spot --clear`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !clear && !cmd.Flags().Changed("limit") {
				return fmt.Errorf("give --limit N or --clear")
			}
			if clear && cmd.Flags().Changed("limit") {
				return fmt.Errorf("--limit and --clear exclude each other")
			}
			if lc != "" {
				l, err := provider.ParseLifecycle(lc)
				if err != nil {
					return fmt.Errorf("--lifecycle: %w", err)
				}
				key.Lifecycle = l
			}
			c, _, err := flags.client()
			if err != nil {
				return err
			}
			limits, err := c.SetCapacity(cmd.Context(), localcloud.CapacityRequest{OfferingKey: key, Limit: limit, Clear: clear})
			if err != nil {
				return err
			}
			printLimits(streams.Out, limits)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&key.InstanceType, "type", "", "instance type (default any)")
	f.StringVar(&key.Zone, "zone", "", "zone (default any)")
	f.StringVar(&lc, "lifecycle", "", "spot or on-demand (default any)")
	f.IntVar(&limit, "limit", 0, "how many instances the selected offerings have in total")
	f.BoolVar(&clear, "clear", false, "remove the limit for exactly this selection")
	return cmd
}

func printLimits(w io.Writer, limits []localcloud.CapacityLimit) {
	if len(limits) == 0 {
		fmt.Fprintln(w, "No capacity limits: every offering has capacity.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFERING (type/zone/lifecycle)\tLIMIT")
	for _, l := range limits {
		fmt.Fprintf(tw, "%s\t%d\n", l.OfferingKey, l.Limit)
	}
	tw.Flush()
}

func interruptCommand(streams iostreams.IOStreams, flags *flagpole) *cobra.Command {
	return &cobra.Command{
		Use:   "interrupt NODE",
		Short: "Send a spot interruption notice to the instance running NODE",
		Long: `Send a spot interruption notice to the instance behind NODE (a node name or
an instance ID). The notice is readable through the provider at once; the
instance and its Node go away when the notice period (2 minutes) ends. The
node group launches a replacement right away.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := flags.client()
			if err != nil {
				return err
			}
			n, err := c.Interrupt(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Interruption notice for %s (instance %s, group %s): terminates at %s\n",
				n.NodeName, n.InstanceID, n.Group, n.TerminationTime.Local().Format("15:04:05"))
			return nil
		},
	}
}

func scaleCommand(streams iostreams.IOStreams, flags *flagpole) *cobra.Command {
	return &cobra.Command{
		Use:   "scale GROUP SIZE",
		Short: "Set a node group's target size, as an autoscaler would",
		Long: `Set the target size of node group GROUP (<cluster>/<pool>, see "sim status")
within its min and max. New instances boot for the boot delay, then register
as Nodes; a launch without capacity shows as a failed instance in "sim status".`,
		Example: `  bosun sim scale local-staging/default-spot-xlarge 3`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := strconv.Atoi(args[1])
			if err != nil || size < 0 {
				return fmt.Errorf("SIZE %q: expected a whole number of 0 or more", args[1])
			}
			c, _, err := flags.client()
			if err != nil {
				return err
			}
			if err := c.SetTargetSize(cmd.Context(), args[0], size); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Node group %s: target size %d\n", args[0], size)
			return nil
		},
	}
}

func statusCommand(streams iostreams.IOStreams, flags *flagpole) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show node groups, instances, pending launches, failures and limits",
		Long:  `Show every node group of the local cloud with its size, its instances by state, the last failed launch, and the capacity limits in force.`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: expected text or json", output)
			}
			c, _, err := flags.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			PrintStatus(streams.Out, st)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// PrintStatus writes the cloud status as tables.
func PrintStatus(w io.Writer, st localcloud.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tLIFECYCLE\tPRIO\tMIN\tTARGET\tMAX\tRUNNING\tPENDING\tINTERRUPTED\tTERMINATING\tFAILURES\tLAST ERROR")
	for _, g := range st.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", g.ID, g.Lifecycle, g.Priority, g.MinSize, g.TargetSize, g.MaxSize,
			g.Running, g.Pending, g.Interrupted, g.Terminating, g.Failures, g.LastError)
	}
	tw.Flush()
	fmt.Fprintln(w)
	printLimits(w, st.Limits)
}

func runCommand(streams iostreams.IOStreams, flags *flagpole) *cobra.Command {
	return &cobra.Command{
		Use:   "run FILE",
		Short: "Play a scenario file against the running local fleet",
		Long: `Play a scenario: a YAML list of timed steps (capacity changes, interruptions,
node group sizes, Deployment scaling) run at their offsets from the start.
The file is checked completely before anything runs: its format, then every
cluster, node group, target size, instance type and zone it names against
the running fleet; every problem is reported at once with its line. See
docs/local-cloud.md for the format.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scenario.Load(args[0])
			if err != nil {
				return err
			}
			c, dir, err := flags.client()
			if err != nil {
				return err
			}
			clusters, _, err := localfleet.Clients(dir)
			if err != nil {
				return err
			}
			env := scenario.Env{Cloud: c, Clusters: clusters, Clock: clock.RealClock{}, Out: streams.Out}
			// Play checks again; checking here first keeps "Playing" for
			// a scenario that will play.
			if err := s.CheckEnv(cmd.Context(), env); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Playing %q (%d steps)\n", s.Name, len(s.Steps))
			return scenario.Play(cmd.Context(), s, env)
		},
	}
}
