// Package cli assembles the `bosun` command. Each subcommand lives in its own
// package with a NewCommand constructor; this package only wires them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	agentcmd "github.com/bosun-platform/bosun/internal/cli/agent"
	applycmd "github.com/bosun-platform/bosun/internal/cli/apply"
	benchcmd "github.com/bosun-platform/bosun/internal/cli/bench"
	cataloguecmd "github.com/bosun-platform/bosun/internal/cli/catalogue"
	consolecmd "github.com/bosun-platform/bosun/internal/cli/console"
	diffcmd "github.com/bosun-platform/bosun/internal/cli/diff"
	"github.com/bosun-platform/bosun/internal/cli/down"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	lintcmd "github.com/bosun-platform/bosun/internal/cli/lint"
	rendercmd "github.com/bosun-platform/bosun/internal/cli/render"
	"github.com/bosun-platform/bosun/internal/cli/schedule"
	"github.com/bosun-platform/bosun/internal/cli/sim"
	"github.com/bosun-platform/bosun/internal/cli/status"
	"github.com/bosun-platform/bosun/internal/cli/up"
	"github.com/bosun-platform/bosun/internal/cli/version"
)

// Main runs bosun with the process's arguments and exits with its status.
// Ctrl-C (SIGINT) and SIGTERM cancel the command's context, so long-running
// commands stop cleanly.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, iostreams.Standard(), os.Args[1:])
	stop()
	if err != nil {
		os.Exit(exitStatus(err))
	}
}

// exitError is an error that chooses the process's exit status (for example
// `bosun schedule check`: 1 no match, 2 invalid); Silent means the command
// already printed everything.
type exitError interface {
	ExitCode() int
	Silent() bool
}

// exitStatus prints err unless it is silent and returns the exit status.
func exitStatus(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		if !ee.Silent() {
			fmt.Fprintf(os.Stderr, "bosun: %v\n", err)
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "bosun: %v\n", err)
	return 1
}

// Run executes bosun with args; it is what tests call.
func Run(ctx context.Context, streams iostreams.IOStreams, args []string) error {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// NewCommand returns the root command with every subcommand attached.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "bosun",
		Short: "Run a fleet of Kubernetes clusters on AWS, or locally",
		Long: `Bosun runs a fleet of Kubernetes clusters the way teams who ran large fleets
on AWS learned to: clusters as code, linted against those lessons,
autoscaled on spot with instant on-demand fallback, cheap outside working
hours, and visible from one console. Not yet: the AWS provider and the
lifecycle manager that keeps clusters current (see the README).

The local provider runs all of it on one machine: real control planes
(etcd, kube-apiserver, kube-scheduler, kube-controller-manager) with nodes
simulated by kwok. Start it with "bosun up".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(
		version.NewCommand(streams),
		up.NewCommand(streams),
		down.NewCommand(streams),
		schedule.NewCommand(streams),
		agentcmd.NewCommand(streams),
		rendercmd.NewCommand(streams),
		consolecmd.NewCommand(streams),
		lintcmd.NewCommand(streams),
		diffcmd.NewCommand(streams),
		applycmd.NewCommand(streams),
		sim.NewCommand(streams),
		status.NewCommand(streams),
		benchcmd.NewCommand(streams),
		cataloguecmd.NewCommand(streams),
	)
	return root
}
