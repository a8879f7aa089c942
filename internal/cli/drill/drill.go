// Package drill is the `bosun drill` command (internal/drill does the
// work).
package drill

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/backup"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/drill"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

type flagpole struct {
	fleetDir, cluster, from, backupID, identity, binDir, output string
	timeout, bootDelay                                          time.Duration
	skipChecks, keep                                            bool
}

// NewCommand returns `bosun drill`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "drill --fleet DIR --cluster ID --from LOCATION --identity FILE",
		Short: "Disaster-recovery drill: recreate a cluster from code on a fresh local control plane, restore its backup, check it",
		Long: `Prove a cluster can be recovered (L28). The drill:

  1. reads the cluster's latest backup (or --backup ID) from --from and
     decrypts it with --identity, checking every checksum;
  2. starts a fresh local control plane (etcd, kube-apiserver, scheduler,
     controller-manager) with kwok nodes for each of the cluster's node
     pools (its minimum, at least one) and Bosun's provisioner for more;
  3. applies the cluster's rendered manifests from the fleet, as
     "bosun apply" does, and waits until every workload rolled out;
  4. restores the backup (server-side apply) and reads every object back;
  5. runs the smoke suite ("bosun e2e") against it.

It prints each phase with its duration as it goes, then the time to
recovery and what differs from the backup; -o json prints the report for
machines. The control plane is stopped and deleted at the end (--keep
leaves it running and prints its kubeconfig). A cluster of any provider
is recreated on the local one: the drill proves the code and the backup,
not the cloud.

Exit status 1 when a phase failed or an object differs.`,
		Example: `  bosun drill --fleet examples/fleet --cluster local-prod --from ~/backups --identity ~/.config/bosun/backup.key
  bosun drill --fleet . --cluster aws-prod-eu1 --from s3://acme-backups/k8s --identity key.txt -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, streams, flags)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory")
	f.StringVar(&flags.cluster, "cluster", "", "cluster ID (required)")
	f.StringVar(&flags.from, "from", "", "where the backups are: a directory or s3://bucket/prefix (required)")
	f.StringVar(&flags.backupID, "backup", "latest", "backup ID (see bosun backup list)")
	f.StringVar(&flags.identity, "identity", "", "file with an age identity (AGE-SECRET-KEY-1...) of one of the fleet's backup recipients (required)")
	f.StringVar(&flags.binDir, "bin-dir", "", "directory of the control-plane binaries (default $BOSUN_BIN_DIR or the cache of make tools)")
	f.DurationVar(&flags.timeout, "timeout", 2*time.Minute, "time limit for the workloads to roll out, and for each smoke check")
	f.DurationVar(&flags.bootDelay, "boot-delay", 2*time.Second, "how long the drill's simulated nodes take to boot")
	f.BoolVar(&flags.skipChecks, "skip-checks", false, "do not run the smoke suite")
	f.BoolVar(&flags.keep, "keep", false, "leave the control plane running and print its kubeconfig")
	f.StringVarP(&flags.output, "output", "o", "", "output format: json (default: progress and a table)")
	return cmd
}

func run(cmd *cobra.Command, streams iostreams.IOStreams, flags *flagpole) error {
	switch {
	case flags.cluster == "":
		return fmt.Errorf("--cluster: required, the ID of the cluster to recover")
	case flags.from == "":
		return fmt.Errorf("--from: required, where the cluster's backups are (a directory or s3://bucket/prefix)")
	case flags.identity == "":
		return fmt.Errorf("--identity: required, a file with the age identity of one of the fleet's backup recipients")
	case flags.output != "" && flags.output != "json":
		return fmt.Errorf("-o %q: expected json", flags.output)
	case flags.timeout <= 0:
		return fmt.Errorf("--timeout %s: expected a duration above 0", flags.timeout)
	}
	ctx := cmd.Context()
	f, err := fleet.Load(flags.fleetDir)
	if err != nil {
		return err
	}
	if f.Cluster(flags.cluster) == nil {
		return fmt.Errorf("--cluster: cluster %q is not in fleet %s", flags.cluster, f.Dir)
	}
	r, err := render.New(f)
	if err != nil {
		return fmt.Errorf("preparing the fleet's templates, %w", err)
	}
	rendered, err := r.Cluster(ctx, flags.cluster)
	if err != nil {
		return fmt.Errorf("rendering cluster %s, %w", flags.cluster, err)
	}
	ids, err := backup.ReadIdentities(flags.identity)
	if err != nil {
		return err
	}
	store, err := backup.OpenStore(ctx, flags.from)
	if err != nil {
		return err
	}
	bins, err := controlplane.FindBinaries(flags.binDir)
	if err != nil {
		return err
	}
	opts := drill.Options{
		Rendered: rendered, Store: store, BackupID: flags.backupID, Identities: ids, Binaries: bins,
		HealthTimeout: flags.timeout, BootDelay: flags.bootDelay, SkipChecks: flags.skipChecks, Keep: flags.keep,
		Out: streams.ErrOut,
	}
	rep, err := drill.Run(ctx, opts)
	if err != nil {
		return err
	}
	if flags.output == "json" {
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeText(streams, rep)
	}
	if flags.keep {
		<-ctx.Done() // Ctrl-C
		if err := rep.Stop(); err != nil {
			fmt.Fprintf(streams.ErrOut, "stopping the drill's control plane: %v\n", err)
		}
	}
	return rep.Err()
}

func writeText(streams iostreams.IOStreams, rep *drill.Report) {
	fmt.Fprintf(streams.Out, "drill of %s from backup %s (taken %s)\n\n", rep.Cluster, rep.Backup, rep.BackupTaken.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tDURATION\tRESULT\tDETAIL")
	for _, p := range rep.Phases {
		result := "ok"
		detail := p.Detail
		if p.Error != "" {
			result = "FAILED"
			detail = strings.TrimSpace(detail + " " + p.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Duration.Round(time.Millisecond), result, detail)
	}
	_ = tw.Flush()
	for _, d := range rep.Differences {
		fmt.Fprintf(streams.Out, "  differs: %s\n", d)
	}
	verdict := "recovered"
	if !rep.Passed {
		verdict = "NOT recovered"
	}
	fmt.Fprintf(streams.Out, "\n%s: time to recovery %s\n", verdict, rep.TimeToRecovery.Round(time.Millisecond))
	if rep.Kubeconfig != "" {
		fmt.Fprintf(streams.Out, "the control plane keeps running (--keep): kubectl --kubeconfig %s; stop it with Ctrl-C\n", rep.Kubeconfig)
	}
}
