// Package backup implements `bosun backup`: encrypted backups of a
// cluster's Secrets, their restore and their verification (L29).
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/backup"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
)

// defaultKeep is how many backups retention keeps when the fleet says
// nothing.
const defaultKeep = 14

// NewCommand returns `bosun backup` and its subcommands.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Encrypted backups of a cluster's Secrets: create, list, restore, verify, prune",
		Long: `Back up a cluster's Secrets (and chosen kinds), encrypted with age to the
public keys listed under backup.recipients in the fleet's fleet.yaml (L29).
Only public keys live in the fleet; restoring needs one of the matching
identities (age-keygen makes a pair).

A backup is <cluster>/<UTC time>/objects.tar.gz.age plus manifest.json
(object names and checksums, never values), in a directory or under
s3://bucket/prefix (credentials and region from the AWS SDK's default
chain; AWS_ENDPOINT_URL_S3 points it at another endpoint). The manifest
is written last: an interrupted backup is ignored and pruned later.

Service-account token Secrets are not backed up (a new cluster issues its
own). Owner references, uids and status are dropped from every object.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(createCommand(streams), listCommand(streams), restoreCommand(streams),
		verifyCommand(streams), pruneCommand(streams))
	return cmd
}

// common are the flags every subcommand has.
type common struct {
	cluster  string
	location string
}

func (c *common) add(cmd *cobra.Command, locFlag, locHelp string) {
	cmd.Flags().StringVar(&c.cluster, "cluster", "", "cluster ID (required)")
	cmd.Flags().StringVar(&c.location, locFlag, "", locHelp+" (required)")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired(locFlag)
}

func (c *common) store(ctx context.Context) (backup.Store, error) {
	if c.cluster == "" || strings.ContainsAny(c.cluster, "/\\") || c.cluster == "." || c.cluster == ".." {
		return nil, fmt.Errorf("--cluster %q: expected a cluster ID", c.cluster)
	}
	return backup.OpenStore(ctx, c.location)
}

// target is how to reach the live cluster.
type target struct {
	kubeconfig string
	context    string
}

func (t *target) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&t.context, "context", "", "kubeconfig context (default: bosun-<ID>, else <ID>, else the current one)")
}

// restConfig loads the client config of cluster: an explicit --context,
// else bosun-<id> or <id> (apply.ClusterContext), else the current context.
func (t *target) restConfig(cluster string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = t.kubeconfig
	name := t.context
	if name == "" {
		raw, err := rules.Load()
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig, %w", err)
		}
		name, _ = apply.ClusterContext(raw, cluster) // none: the current context
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: name}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig, %w", err)
	}
	return cfg, nil
}

func createCommand(streams iostreams.IOStreams) *cobra.Command {
	var c common
	var t target
	var fleetDir string
	var resources, recipients []string
	var keep int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Back up a cluster's Secrets, encrypted to the fleet's recipients",
		Example: `  bosun backup create --fleet fleet/ --cluster prod-eu1 --to s3://acme-backups/k8s
  bosun backup create --fleet fleet/ --cluster local-prod --to ~/backups --kinds configmaps`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := fleet.Load(fleetDir)
			if err != nil {
				return err
			}
			if f.Cluster(c.cluster) == nil {
				return fmt.Errorf("--cluster %q: not a cluster of the fleet in %s", c.cluster, fleetDir)
			}
			recips := append(append([]string(nil), f.Settings.Backup.Recipients...), recipients...)
			if len(recips) == 0 {
				return fmt.Errorf("no recipients: list age public keys under backup.recipients in %s/fleet.yaml, or pass --recipient", fleetDir)
			}
			kinds := append(append([]string(nil), f.Settings.Backup.Kinds...), resources...)
			if keep == 0 {
				keep = f.Settings.Backup.Keep
			}
			if keep == 0 {
				keep = defaultKeep
			}
			store, err := c.store(cmd.Context())
			if err != nil {
				return err
			}
			cfg, err := t.restConfig(c.cluster)
			if err != nil {
				return err
			}
			cl, err := backup.NewCluster(c.cluster, cfg)
			if err != nil {
				return err
			}
			start := time.Now()
			m, err := backup.Create(cmd.Context(), cl, store, backup.CreateOptions{Resources: kinds, Recipients: recips})
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "backup %s of %s: %d objects (%s), %d bytes encrypted to %d recipient(s), in %s (%s)\n",
				m.ID, m.Cluster, len(m.Objects), strings.Join(m.Resources, ", "), m.ArchiveSize, len(m.Recipients), store, time.Since(start).Round(time.Millisecond))
			pruned, err := backup.Prune(cmd.Context(), store, c.cluster, keep)
			if err != nil {
				return fmt.Errorf("the backup is written; retention failed: %w", err)
			}
			if len(pruned) > 0 {
				fmt.Fprintf(streams.Out, "retention (keep %d): deleted %s\n", keep, strings.Join(pruned, ", "))
			}
			return nil
		},
	}
	c.add(cmd, "to", "where to write: a directory or s3://bucket/prefix")
	t.add(cmd)
	cmd.Flags().StringVar(&fleetDir, "fleet", ".", "fleet directory (its fleet.yaml lists the recipients)")
	cmd.Flags().StringSliceVar(&resources, "kinds", nil, "resources to back up besides secrets, as resource[.group] (adds to backup.kinds of fleet.yaml)")
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "another age public key to encrypt to (repeatable)")
	cmd.Flags().IntVar(&keep, "keep", 0, "backups of this cluster to keep; older ones are deleted (default backup.keep of fleet.yaml, else 14)")
	return cmd
}

func listCommand(streams iostreams.IOStreams) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a cluster's complete backups, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := c.store(cmd.Context())
			if err != nil {
				return err
			}
			ms, err := backup.List(cmd.Context(), store, c.cluster)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tOBJECTS\tRESOURCES\tBYTES\tRECIPIENTS")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\n", m.ID, m.Created.Format(time.RFC3339), len(m.Objects), strings.Join(m.Resources, ","), m.ArchiveSize, len(m.Recipients))
			}
			return tw.Flush()
		},
	}
	c.add(cmd, "from", "where backups are: a directory or s3://bucket/prefix")
	return cmd
}

// source are the flags that pick and open one backup.
type source struct {
	common
	id       string
	identity string
}

func (s *source) add(cmd *cobra.Command) {
	s.common.add(cmd, "from", "where backups are: a directory or s3://bucket/prefix")
	cmd.Flags().StringVar(&s.id, "backup", "latest", "backup ID (see bosun backup list)")
	cmd.Flags().StringVar(&s.identity, "identity", "", "file with an age identity (AGE-SECRET-KEY-1...) of one of the recipients (required)")
	_ = cmd.MarkFlagRequired("identity")
}

// load opens, checks and decrypts the chosen backup.
func (s *source) load(ctx context.Context) (backup.Manifest, []backup.Object, error) {
	ids, err := backup.ReadIdentities(s.identity)
	if err != nil {
		return backup.Manifest{}, nil, err
	}
	store, err := s.store(ctx)
	if err != nil {
		return backup.Manifest{}, nil, err
	}
	m, err := backup.Find(ctx, store, s.cluster, s.id)
	if err != nil {
		return backup.Manifest{}, nil, err
	}
	objs, err := backup.Load(ctx, store, m, ids)
	return m, objs, err
}

func restoreCommand(streams iostreams.IOStreams) *cobra.Command {
	var s source
	var t target
	var force, dryRun bool
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup into a cluster by server-side apply",
		Long: `Decrypt a backup, check it against its checksums, and apply every object
to the cluster with server-side apply (field manager bosun-restore),
creating missing namespaces. An object written in the cluster after the
backup was taken is newer than the backup: it is left alone and listed,
unless --force.`,
		Example: `  bosun backup restore --cluster prod-eu1 --from s3://acme-backups/k8s --identity ~/.config/bosun/backup.key
  bosun backup restore --cluster prod-eu1 --from ~/backups --backup 20261202T170000Z --identity key.txt --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, objs, err := s.load(cmd.Context())
			if err != nil {
				return err
			}
			cfg, err := t.restConfig(s.cluster)
			if err != nil {
				return err
			}
			cl, err := backup.NewCluster(s.cluster, cfg)
			if err != nil {
				return err
			}
			res := backup.Restore(cmd.Context(), cl, m, objs, backup.RestoreOptions{Force: force, DryRun: dryRun, Out: streams.Out})
			what := "restored"
			if dryRun {
				what = "would restore (dry-run)"
			}
			fmt.Fprintf(streams.Out, "backup %s: %s %d, skipped %d newer in the cluster, failed %d\n", m.ID, what, len(res.Applied), len(res.Skipped), len(res.Failed))
			return res.Err()
		},
	}
	s.add(cmd)
	t.add(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "also overwrite objects changed after the backup was taken")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "server-side dry-run: validate every object, change nothing")
	return cmd
}

func verifyCommand(streams iostreams.IOStreams) *cobra.Command {
	var s source
	var binDir string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Restore a backup into a throwaway local control plane and compare",
		Long: `Prove a backup restores: decrypt it, start a throwaway local control plane
(etcd and kube-apiserver from "make tools"), restore every object into it,
read each back and compare, then stop and delete the control plane.
Objects of custom resources need their CRDs in the backup too
(--kinds customresourcedefinitions.apiextensions.k8s.io).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return verify(cmd.Context(), streams.Out, &s, binDir)
		},
	}
	s.add(cmd)
	cmd.Flags().StringVar(&binDir, "bin-dir", "", "directory with etcd and kube-apiserver (default $BOSUN_BIN_DIR or ~/.cache/bosun/bin/<k8s-version>)")
	return cmd
}

func verify(ctx context.Context, out io.Writer, s *source, binDir string) error {
	m, objs, err := s.load(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "backup %s of %s: %d objects decrypted, checksums match\n", m.ID, m.Cluster, len(objs))
	bins, err := controlplane.FindBinaries(binDir)
	if err != nil {
		return err
	}
	start := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{Name: "verify-" + m.Cluster, Binaries: bins, UnsafeNoFsync: true})
	if err != nil {
		return fmt.Errorf("starting a throwaway control plane: %w", err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(out, "warning: stopping the throwaway control plane: %v\n", err)
		}
	}()
	cl, err := backup.NewCluster(m.Cluster, cp.RESTConfig())
	if err != nil {
		return err
	}
	res := backup.Restore(ctx, cl, m, objs, backup.RestoreOptions{})
	diffs := backup.Compare(ctx, cl.Client, objs)
	for _, d := range diffs {
		fmt.Fprintf(out, "  differs: %s\n", d)
	}
	fmt.Fprintf(out, "restored %d of %d objects into a fresh control plane and read them back in %s: %d difference(s)\n",
		len(res.Applied), len(objs), time.Since(start).Round(time.Millisecond), len(diffs))
	return errors.Join(res.Err(), diffError(len(diffs)))
}

func diffError(n int) error {
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d object(s) differ after the restore", n)
}

func pruneCommand(streams iostreams.IOStreams) *cobra.Command {
	var c common
	var keep int
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete a cluster's oldest backups beyond --keep, and interrupted ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := c.store(cmd.Context())
			if err != nil {
				return err
			}
			done, err := backup.Prune(cmd.Context(), store, c.cluster, keep)
			fmt.Fprintf(streams.Out, "deleted %d backup(s) %s\n", len(done), strings.Join(done, " "))
			return err
		},
	}
	c.add(cmd, "from", "where backups are: a directory or s3://bucket/prefix")
	cmd.Flags().IntVar(&keep, "keep", defaultKeep, "backups to keep")
	return cmd
}
