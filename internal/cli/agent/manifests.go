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
	awsRoleARN  string
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
exactly those. --arg adds an argument to the agent's command line, or
replaces the shipped one for the same flag (--default-uptime).
The Helm chart charts/bosun-agent is generated from the same manifests.

As shipped, only the downscaler runs (the janitor deletes, so it is
chosen with --controllers), and it keeps everything up (--default-uptime=always)
until an annotation gives a workload or namespace a schedule; give a
non-production cluster office hours with --arg=--default-uptime=....

The capacity controllers (` + strings.Join(agent.CloudControllers(agent.Names()), ", ") + `)
run in a pod against AWS only: give --arg=--provider=aws with --cluster,
--region and (interruption) --aws-queue-url, and --aws-role-arn to bind
the service account to the agent's IAM role through IRSA (docs/aws.md).
With the local cloud of "bosun up", reached on the machine that runs it,
they are refused: run them there with
"bosun agent --kubeconfig ... --provider local --cluster ID".`,
		Example: `  bosun agent manifests --controllers downscaler,janitor | kubectl apply -f -
  bosun agent manifests --controllers downscaler --arg="--default-uptime=Mon-Fri 07:30-20:30 Europe/Berlin" | kubectl apply -f -
  bosun agent manifests --controllers provisioner,interruption,scale-down,reaper --aws-role-arn arn:aws:iam::111111111111:role/bosun-agent --arg=--provider=aws --arg=--cluster=prod-eu1 --arg=--region=eu-central-1 --arg=--aws-queue-url=https://sqs.eu-central-1.amazonaws.com/111111111111/bosun-prod-eu1 | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := agent.RenderManifests(deploy.AgentOptions{Controllers: flags.controllers, Namespace: flags.namespace, Image: flags.image, Args: flags.args, AWSRoleARN: flags.awsRoleARN})
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
	cmd.Flags().StringVar(&flags.awsRoleARN, "aws-role-arn", "", "with --arg=--provider=aws: the agent's IAM role (deploy/iam/agent.json), bound to its service account through IRSA")
	return cmd
}
