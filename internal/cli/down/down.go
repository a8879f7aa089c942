// Package down implements `bosun down`.
package down

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/localfleet"
)

type flagpole struct {
	stateDir string
	timeout  time.Duration
}

// NewCommand returns `bosun down`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the local fleet started by bosun up",
		Long: `Stop a running "bosun up" from another shell.

It asks bosun up to stop (SIGTERM) and waits for it to stop its clusters
cleanly. Any process still recorded in the state directory afterwards (for
example after bosun up was killed) is stopped by its PID. Running it when
nothing runs is harmless.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			stateDir, err := localfleet.ResolveStateDir(flags.stateDir)
			if err != nil {
				return err
			}
			return localfleet.Down(stateDir, flags.timeout, streams.Out)
		},
	}
	cmd.Flags().StringVar(&flags.stateDir, "state-dir", "", "state directory (default $BOSUN_HOME or ~/.bosun)")
	cmd.Flags().DurationVar(&flags.timeout, "timeout", time.Minute, "how long to wait for bosun up to stop cleanly before stopping its processes by PID")
	return cmd
}
