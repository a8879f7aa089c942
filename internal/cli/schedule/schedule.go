// Package schedule implements `bosun schedule`, which checks the schedule
// expressions used by the downscaler's annotations (L24, L33).
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	sched "github.com/bosun-platform/bosun/internal/schedule"
)

// Exit codes of `bosun schedule check`.
const (
	ExitMatch    = 0
	ExitNoMatch  = 1
	ExitInvalid  = 2
	transitions  = 2
	outputLayout = "Mon 2006-01-02 15:04:05 MST"
)

// ExitError carries a process exit status out of a command. Err, when set,
// is what to print; a nil Err means the command already said everything.
type ExitError struct {
	Code int
	Err  error
}

// Error implements error.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the status the process should exit with.
func (e *ExitError) ExitCode() int { return e.Code }

// Silent reports whether the error has nothing more to print.
func (e *ExitError) Silent() bool { return e.Err == nil }

type flagpole struct {
	at string
}

// NewCommand returns `bosun schedule`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Check schedule expressions used by the downscaler",
		Long: `Work with the schedule expressions of the downscaler's annotations and flags
(downscaler/uptime, downscaler/downtime, the upscale and downscale periods):
"schedule check" tells whether an expression matches at a time and when it
next changes. The grammar is in docs/downscaler.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCheckCommand(streams))
	return cmd
}

func newCheckCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "check EXPR",
		Short: "Print whether EXPR matches at a time, and its next two transitions",
		Long: `Parse a schedule expression, as used in downscaler/uptime, downscaler/downtime
and the other schedule annotations, and print whether it matches at --at
(default now) and when it next changes.

Exit status: 0 if EXPR matches, 1 if it does not, 2 if EXPR or --at is invalid
(the message shows the position and what was expected).

Grammar: comma-separated items, any of which may match:
  always | never
  DAYS HH:MM-HH:MM ZONE      Mon-Fri 07:30-20:30 Europe/Berlin; Sun-Thu wraps;
                             20:00-08:00 is an overnight window
  START-END                  RFC 3339, e.g. 2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00`,
		Example: `  bosun schedule check "Mon-Fri 07:30-20:30 Europe/Berlin"
  bosun schedule check "Mon-Fri 20:00-08:00 Europe/Berlin" --at 2026-03-28T07:00:00+01:00`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return runCheck(streams, args[0], flags.at)
		},
	}
	cmd.Flags().StringVar(&flags.at, "at", "", "time to evaluate at (RFC 3339, YYYY-MM-DDTHH:MM or YYYY-MM-DD; default now)")
	return cmd
}

func runCheck(streams iostreams.IOStreams, expr, atText string) error {
	at := time.Now()
	if atText != "" {
		t, err := sched.ParseInstant(atText)
		if err != nil {
			return &ExitError{Code: ExitInvalid, Err: fmt.Errorf("--at: %w", err)}
		}
		at = t
	}
	s, err := sched.Parse(expr)
	if err != nil {
		var pe *sched.ParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(streams.ErrOut, "invalid schedule at position %d: expected %s\n  %s\n  %s^\n",
				pe.Pos+1, pe.Expected, pe.Input, strings.Repeat(" ", pe.Pos))
			return &ExitError{Code: ExitInvalid}
		}
		return &ExitError{Code: ExitInvalid, Err: err}
	}
	match := s.Matches(at)
	word := "does not match"
	if match {
		word = "matches"
	}
	fmt.Fprintf(streams.Out, "%s at %s\n", word, at.Format(outputLayout))
	cur := at
	for i := 0; i < transitions; i++ {
		next, ok := s.NextTransition(cur)
		if !ok {
			if i == 0 {
				fmt.Fprintln(streams.Out, "never changes")
			}
			break
		}
		state := "stops matching"
		if s.Matches(next) {
			state = "starts matching"
		}
		fmt.Fprintf(streams.Out, "%s at %s (%s)\n", state, next.In(at.Location()).Format(outputLayout), next.UTC().Format(time.RFC3339))
		cur = next
	}
	if !match {
		return &ExitError{Code: ExitNoMatch}
	}
	return nil
}
