// Package cli assembles the `bosun` command. Each subcommand lives in its own
// package with a NewCommand constructor; this package only wires them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	accesscmd "github.com/bosun-platform/bosun/internal/cli/access"
	agentcmd "github.com/bosun-platform/bosun/internal/cli/agent"
	applycmd "github.com/bosun-platform/bosun/internal/cli/apply"
	backupcmd "github.com/bosun-platform/bosun/internal/cli/backup"
	benchcmd "github.com/bosun-platform/bosun/internal/cli/bench"
	blockcmd "github.com/bosun-platform/bosun/internal/cli/block"
	cataloguecmd "github.com/bosun-platform/bosun/internal/cli/catalogue"
	certscmd "github.com/bosun-platform/bosun/internal/cli/certs"
	clusterscmd "github.com/bosun-platform/bosun/internal/cli/clusters"
	consolecmd "github.com/bosun-platform/bosun/internal/cli/console"
	controllercmd "github.com/bosun-platform/bosun/internal/cli/controller"
	diffcmd "github.com/bosun-platform/bosun/internal/cli/diff"
	"github.com/bosun-platform/bosun/internal/cli/down"
	driftcmd "github.com/bosun-platform/bosun/internal/cli/drift"
	drillcmd "github.com/bosun-platform/bosun/internal/cli/drill"
	e2ecmd "github.com/bosun-platform/bosun/internal/cli/e2e"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	lintcmd "github.com/bosun-platform/bosun/internal/cli/lint"
	promotecmd "github.com/bosun-platform/bosun/internal/cli/promote"
	rendercmd "github.com/bosun-platform/bosun/internal/cli/render"
	"github.com/bosun-platform/bosun/internal/cli/schedule"
	"github.com/bosun-platform/bosun/internal/cli/sim"
	"github.com/bosun-platform/bosun/internal/cli/status"
	"github.com/bosun-platform/bosun/internal/cli/up"
	"github.com/bosun-platform/bosun/internal/cli/version"
)

// Main runs bosun with the process's arguments and exits with its status.
// SIGINT (Ctrl-C) and SIGTERM cancel the command's context; see
// runWithSignals for how long a command has to stop (issue 18, item 4).
func Main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	streams := iostreams.Standard()
	os.Exit(runWithSignals(NewCommand(streams), os.Args[1:], sigs, streams.ErrOut, signalPolicy{
		exit: os.Exit, grace: stopGrace, repeatAfter: repeatAfter,
	}))
}

// DefaultStopGrace is how long a command has, after SIGINT or SIGTERM,
// to stop before bosun exits without it.
const DefaultStopGrace = time.Second

// repeatAfter is how long after the first signal another one counts as a
// second: `timeout` sends SIGTERM to bosun and then to its process group,
// so one timeout delivers two signals at once.
const repeatAfter = 500 * time.Millisecond

// signalPolicy says what runWithSignals does after a signal.
type signalPolicy struct {
	// exit ends the process with a status (os.Exit).
	exit func(int)
	// grace returns how long a command has to stop.
	grace func(*cobra.Command) time.Duration
	// repeatAfter: signals sooner than this after the first are the same.
	repeatAfter time.Duration
}

// stopGraces are the commands that need longer to stop: they stop the
// processes and servers they started, and save their state.
var stopGraces = map[string]time.Duration{
	"bosun up":            30 * time.Second,
	"bosun bench scaleup": 30 * time.Second,
	"bosun console":       10 * time.Second,
	"bosun agent":         10 * time.Second,
	"bosun controller":    10 * time.Second,
}

// stopGrace returns how long cmd has to stop after a signal.
func stopGrace(cmd *cobra.Command) time.Duration {
	if d, ok := stopGraces[cmd.CommandPath()]; ok {
		return d
	}
	return DefaultStopGrace
}

// interrupted is the cause of a context cancelled by a signal. It is a
// context.Canceled, so code that checks for that sees it.
type interrupted struct{ sig os.Signal }

func (e *interrupted) Error() string { return "interrupted by " + signalName(e.sig) }

func (e *interrupted) Unwrap() error { return context.Canceled }

func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// signalStatus is the shell's exit status for a process a signal ended:
// 128 + its number (130 for SIGINT, 143 for SIGTERM).
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// runWithSignals runs root with args and returns the exit status. The
// first signal from sigs (also one that came before the command started)
// cancels the command's context with an *interrupted cause; a command
// that then fails exits 128 + the signal's number. A command that does
// not return within its grace of the signal, or a second signal (after
// repeatAfter), makes bosun call exit with that status at once. A command
// that returns nil after the signal (a server that stopped cleanly)
// exits 0.
func runWithSignals(root *cobra.Command, args []string, sigs <-chan os.Signal, errOut io.Writer, p signalPolicy) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	root.SetArgs(args)
	cmd, _, err := root.Find(args)
	if err != nil {
		cmd = root
	}
	var sig os.Signal
	interrupt := func(s os.Signal) {
		sig = s
		cancel(&interrupted{sig: s})
	}
	select {
	case s := <-sigs:
		interrupt(s)
	default:
	}
	// sig is set before the watcher starts or by it, and read after it
	// ends.
	done := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		if sig == nil {
			select {
			case s := <-sigs:
				interrupt(s)
			case <-done:
				return
			}
		}
		first := time.Now()
		grace := p.grace(cmd)
		timer := time.NewTimer(grace)
		defer timer.Stop()
		for {
			select {
			case <-done:
				return
			case again := <-sigs:
				if time.Since(first) < p.repeatAfter {
					continue
				}
				fmt.Fprintf(errOut, "bosun: %s again, exiting now\n", signalName(again))
				p.exit(signalStatus(sig))
				return
			case <-timer.C:
				fmt.Fprintf(errOut, "bosun: %s did not stop within %s of %s, exiting\n", cmd.CommandPath(), grace, signalName(sig))
				p.exit(signalStatus(sig))
				return
			}
		}
	}()
	err = root.ExecuteContext(ctx)
	close(done)
	<-watcherDone
	if err == nil {
		return 0
	}
	status := exitStatus(errOut, err)
	if sig != nil {
		return signalStatus(sig)
	}
	return status
}

// exitError is an error that chooses the process's exit status (for example
// `bosun schedule check`: 1 no match, 2 invalid); Silent means the command
// already printed everything.
type exitError interface {
	ExitCode() int
	Silent() bool
}

// exitStatus prints err unless it is silent and returns the exit status.
func exitStatus(errOut io.Writer, err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		if !ee.Silent() {
			fmt.Fprintf(errOut, "bosun: %v\n", err)
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(errOut, "bosun: %v\n", err)
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
hours, and visible from one console; "bosun controller" keeps every
cluster at its rendered state, rolls node pools and follows release
channels gated by "bosun e2e" ("bosun promote"). What is not there yet is
listed in the README.

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
		controllercmd.NewCommand(streams),
		clusterscmd.NewCommand(streams),
		blockcmd.NewCommand(streams),
		blockcmd.NewUnblockCommand(streams),
		certscmd.NewCommand(streams),
		backupcmd.NewCommand(streams),
		e2ecmd.NewCommand(streams),
		promotecmd.NewCommand(streams),
		driftcmd.NewCommand(streams),
		accesscmd.NewCommand(streams),
		drillcmd.NewCommand(streams),
	)
	return root
}
