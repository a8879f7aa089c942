// Package version implements `bosun version`.
package version

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	v "github.com/bosun-platform/bosun/internal/version"
)

type flagpole struct {
	output string
}

// NewCommand returns `bosun version`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Bosun's version, commit, Go version and pinned Kubernetes version",
		Long: `Print the identity of this bosun binary: its version and commit, the Go
version it was built with, and the Kubernetes and kwok releases whose
binaries it runs for local clusters (built by "make tools").`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := v.Get()
			switch flags.output {
			case "text":
				_, err := fmt.Fprint(streams.Out, info.String())
				return err
			case "json":
				enc := json.NewEncoder(streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			default:
				return fmt.Errorf("--output %q: expected text or json", flags.output)
			}
		},
	}
	cmd.Flags().StringVarP(&flags.output, "output", "o", "text", "output format: text or json")
	return cmd
}
