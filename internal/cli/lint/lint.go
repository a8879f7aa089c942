// Package lint implements `bosun lint`.
package lint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lint"
)

// ErrFindings is returned when the fleet has lint errors, so bosun exits 1.
var ErrFindings = errors.New("lint found errors")

type flagpole struct {
	fleetDir       string
	clusters       []string
	format         string
	showSuppressed bool
	listRules      bool
}

// NewCommand returns `bosun lint`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "lint",
		Short: "Check a fleet against the lessons",
		Long: `Render every cluster of the fleet and check the fleet config and the
rendered manifests against the lessons of running fleets. Each rule is
named after its lesson (L04-equal-instance-sizes); each finding has a
severity, file:line, a message and a hint. Lines marked "(rendered)" count
lines of the rendered output for that cluster (bosun render --out).

Exits 1 when any error is found; warnings do not fail. Suppress a rule for
one cluster in its file (lint.suppress: [{rule, reason}]) or for one object
with the annotation lint.bosun.dev/<rule>: "<reason>". A suppression
without a reason does not count.`,
		Example: `  bosun lint --fleet examples/fleet
  bosun lint --fleet examples/fleet --cluster aws-prod-eu1 --format json
  bosun lint --list-rules`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, flags) },
	}
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory")
	f.StringSliceVar(&flags.clusters, "cluster", nil, "only report on these clusters (repeatable)")
	f.StringVar(&flags.format, "format", "text", "output format: text or json")
	f.BoolVar(&flags.showSuppressed, "show-suppressed", false, "also print suppressed findings (text format)")
	f.BoolVar(&flags.listRules, "list-rules", false, "list the rules and exit")
	cmd.AddCommand(newPoliciesCommand(streams))
	return cmd
}

// newPoliciesCommand returns `bosun lint policies`.
func newPoliciesCommand(streams iostreams.IOStreams) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "policies",
		Short: "Generate the admission policies from the lint rules",
		Long: `Write the fleet component that enforces, in every cluster, the lint rules
CEL can express (L08, L37, L54, L55, L58 and the exemption reason) as
built-in ValidatingAdmissionPolicies, with one binding each. The bindings
are templates: production-only rules are bound in production clusters only,
and the validation actions come from the vars, by environment
(admission.validationActions.<environment>; Warn and Audit when unset). Namespaces
labelled admission.bosun.dev/exempt=true with a reason are exempt.
See docs/safety.md.`,
		Example: `  bosun lint policies --out examples/fleet/manifests/admission/policies.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if out == "" {
				return lint.WriteAdmissionComponent(streams.Out)
			}
			var b bytes.Buffer
			if err := lint.WriteAdmissionComponent(&b); err != nil {
				return err
			}
			if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil { //nolint:gosec // G306: a fleet template without secrets, meant to be committed
				return fmt.Errorf("--out: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of standard output")
	return cmd
}

func run(ctx context.Context, streams iostreams.IOStreams, flags *flagpole) error {
	if flags.listRules {
		tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
		for _, r := range lint.Rules() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Severity, r.Description)
		}
		return tw.Flush()
	}
	if flags.format != "text" && flags.format != "json" {
		return fmt.Errorf("--format %q: expected text or json", flags.format)
	}
	fl, err := fleet.Load(flags.fleetDir)
	if err != nil {
		return err
	}
	rep, err := lint.Run(ctx, fl, lint.Options{Clusters: flags.clusters})
	if err != nil {
		return err
	}
	if flags.format == "json" {
		err = lint.WriteJSON(streams.Out, rep)
	} else {
		err = lint.WriteText(streams.Out, rep, flags.showSuppressed)
	}
	if err != nil {
		return err
	}
	if rep.Errors > 0 {
		return ErrFindings
	}
	return nil
}
