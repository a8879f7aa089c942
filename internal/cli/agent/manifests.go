package agent

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

type manifestsFlagpole struct {
	controllers []string
	namespace   string
	image       string
	args        []string
}

// newManifestsCommand returns `bosun agent manifests`.
func newManifestsCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &manifestsFlagpole{}
	cmd := &cobra.Command{
		Use:   "manifests",
		Short: "Print the agent's install manifests, with RBAC for the chosen controllers only",
		Long: `Print the manifests that install the agent (namespace, service account,
RBAC, Deployment) as one YAML stream for kubectl apply. Only the RBAC of the
controllers named with --controllers is included, and the Deployment runs
exactly those. --arg adds an argument to the agent's command line.

As shipped, the downscaler keeps everything up (--default-uptime=always)
until an annotation gives a workload or namespace a schedule; give a
non-production cluster office hours with --arg=--default-uptime=....

The capacity controllers (` + strings.Join(agent.CloudControllers(agent.Names()), ", ") + `)
are refused: their one provider so far, the local cloud of "bosun up", is
reached on the machine that runs it, not from a pod. Run them there with
"bosun agent --kubeconfig ... --provider local --cluster ID".`,
		Example: `  bosun agent manifests --controllers downscaler,janitor | kubectl apply -f -
  bosun agent manifests --controllers downscaler --arg="--default-uptime=Mon-Fri 07:30-20:30 Europe/Berlin" | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := agent.RenderManifests(deploy.AgentOptions{Controllers: flags.controllers, Namespace: flags.namespace, Image: flags.image, Args: flags.args})
			if err != nil {
				return err
			}
			_, err = streams.Out.Write(out)
			return err
		},
	}
	cmd.Flags().StringSliceVar(&flags.controllers, "controllers", agent.DefaultManifestControllers(), "controllers to install: "+agent.KnownControllers())
	cmd.Flags().StringArrayVar(&flags.args, "arg", nil, "extra argument for the agent's command line (repeatable)")
	cmd.Flags().StringVar(&flags.namespace, "namespace", "bosun-system", "namespace to install into")
	cmd.Flags().StringVar(&flags.image, "image", "", "container image (default: as shipped)")
	return cmd
}
