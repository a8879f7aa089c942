package agent

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
)

type manifestsFlagpole struct {
	controllers []string
	namespace   string
	image       string
	args        []string
	awsRoleARN  string
	fleetDir    string
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
			args, err := backupArgs(flags.controllers, flags.fleetDir, flags.args)
			if err != nil {
				return err
			}
			out, err := agent.RenderManifests(deploy.AgentOptions{Controllers: flags.controllers, Namespace: flags.namespace, Image: flags.image, Args: args, AWSRoleARN: flags.awsRoleARN})
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
	cmd.Flags().StringVar(&flags.fleetDir, "fleet", "", "with --controllers backupschedule: the fleet directory whose backup.recipients, backup.kinds and backup.keep the scheduled backups use")
	return cmd
}

// backupArgs adds, when the scheduled backups are installed, the fleet's
// backup settings (recipients, kinds, keep) to args, unless args give
// them, and refuses to render a backupschedule that could not start: no
// recipients, no --backup-to or no --cluster.
func backupArgs(controllers []string, fleetDir string, args []string) ([]string, error) {
	if !slices.Contains(controllers, agentcmd.ControllerBackupSchedule) {
		return args, nil
	}
	given := func(name string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return a == name || strings.HasPrefix(a, name+"=") })
	}
	out := slices.Clone(args)
	if fleetDir != "" {
		fl, err := fleet.Load(fleetDir)
		if err != nil {
			return nil, err
		}
		b := fl.Settings.Backup
		if len(b.Recipients) > 0 && !given("--backup-recipients") {
			out = append(out, "--backup-recipients="+strings.Join(b.Recipients, ","))
		}
		if len(b.Kinds) > 0 && !given("--backup-resources") {
			out = append(out, "--backup-resources="+strings.Join(b.Kinds, ","))
		}
		if b.Keep > 0 && !given("--backup-keep") {
			out = append(out, "--backup-keep="+strconv.Itoa(b.Keep))
		}
	}
	for _, need := range []struct{ flag, what string }{
		{"--backup-recipients", "the age public keys to encrypt to: give --fleet DIR (its backup.recipients) or --arg=--backup-recipients=age1..."},
		{"--backup-to", "where backups go: --arg=--backup-to=s3://bucket/prefix"},
		{"--cluster", "the fleet's cluster ID, the backups' folder: --arg=--cluster=ID"},
	} {
		if !slices.ContainsFunc(out, func(a string) bool { return a == need.flag || strings.HasPrefix(a, need.flag+"=") }) {
			return nil, fmt.Errorf("--controllers %s: no %s; expected %s", agentcmd.ControllerBackupSchedule, need.flag, need.what)
		}
	}
	return out, nil
}
