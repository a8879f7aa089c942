// Package access implements `bosun access`: emergency access with an
// incident, a reason, a time limit and a second person's approval (L47,
// L56). The requests live in the cluster; the agent's access controller
// grants and removes them (internal/agent/access, docs/safety.md).
package access

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bosun-platform/bosun/internal/agent/access"
	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

// target is how to reach the cluster and where its requests are.
type target struct {
	cluster    string
	kubeconfig string
	context    string
	namespace  string
	// client, when set (tests), is used instead of the kubeconfig.
	client kubernetes.Interface
	now    func() time.Time
}

func (t *target) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.cluster, "cluster", "", "cluster ID (required)")
	f.StringVar(&t.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&t.context, "context", "", "kubeconfig context (default: bosun-<ID>, else <ID>, else the current one)")
	f.StringVar(&t.namespace, "requests-namespace", access.DefaultNamespace, "namespace holding the access requests")
	_ = cmd.MarkFlagRequired("cluster")
}

// connect returns a client of the cluster: an explicit --context, else
// bosun-<id> or <id>, else the current context. The identity is the
// kubeconfig's, as the API server authenticates it; no flag sets it.
func (t *target) connect() (kubernetes.Interface, error) {
	if t.client != nil {
		return t.client, nil
	}
	if t.cluster == "" {
		return nil, errors.New("--cluster: expected a cluster ID")
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = t.kubeconfig
	name := t.context
	if name == "" {
		raw, err := rules.Load()
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig, %w", err)
		}
		name, _ = apply.ClusterContext(raw, t.cluster)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: name}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig, %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

func (t *target) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// NewCommand returns `bosun access` and its subcommands.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	return newCommand(streams, &target{})
}

func newCommand(streams iostreams.IOStreams, t *target) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Request, approve and list emergency access to a cluster",
		Long: `People are read-only in production (L56). In an incident, one asks for
edit or admin for a bounded time, naming the incident and why; another
person approves (in production always another person, L47); the agent's
access controller then binds the role to the requester, labelled with the
incident, and removes the binding when the time is up. Identities are
what the API server authenticates (SelfSubjectReview), never a flag.`,
	}
	cmd.AddCommand(requestCommand(streams, t), approveCommand(streams, t), listCommand(streams, t))
	return cmd
}

func requestCommand(streams iostreams.IOStreams, t *target) *cobra.Command {
	var r access.Request
	cmd := &cobra.Command{
		Use:     "request",
		Short:   "Ask for edit or admin for a limited time, naming an incident",
		Example: `  bosun access request --cluster aws-prod-eu1 --incident INC-123 --reason "checkout returns 500s" --role edit --for 2h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := t.connect()
			if err != nil {
				return err
			}
			got, err := access.Submit(cmd.Context(), client, t.namespace, r, t.clock())
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "request %s: %s %s for %s, pending approval by another person (bosun access approve %s --cluster %s)\n",
				got.Name, got.Role, scope(got), got.Duration, got.Name, t.cluster)
			return nil
		},
	}
	t.add(cmd)
	f := cmd.Flags()
	f.StringVar(&r.Incident, "incident", "", "incident ID, e.g. INC-123 (required)")
	f.StringVar(&r.Reason, "reason", "", "why access is needed (required)")
	f.StringVar(&r.Role, "role", "", "edit or admin (required)")
	f.StringVar(&r.Namespace, "namespace", "", "grant in this namespace only (default: cluster-wide)")
	f.DurationVar(&r.Duration, "for", 0, fmt.Sprintf("how long, at most %s (required)", access.MaxDuration))
	for _, name := range []string{"incident", "reason", "role", "for"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func approveCommand(streams iostreams.IOStreams, t *target) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "approve REQUEST",
		Short:   "Approve another person's pending access request",
		Example: `  bosun access approve access-inc-123-x7k2p --cluster aws-prod-eu1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := t.connect()
			if err != nil {
				return err
			}
			got, err := access.Approve(cmd.Context(), client, t.namespace, args[0], t.clock())
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "request %s approved by %s: %s %s for %s (%s); the agent grants it\n",
				got.Name, got.Approver, got.Role, scope(got), got.Requester, got.Incident)
			return nil
		},
	}
	t.add(cmd)
	return cmd
}

func listCommand(streams iostreams.IOStreams, t *target) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show who has or asked for what access, why and until when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := t.connect()
			if err != nil {
				return err
			}
			rs, err := access.List(cmd.Context(), client, t.namespace)
			if err != nil {
				return err
			}
			return writeList(streams.Out, rs)
		},
	}
	t.add(cmd)
	return cmd
}

func scope(r *access.Request) string {
	if r.Namespace == "" {
		return "cluster-wide"
	}
	return "in " + r.Namespace
}

func writeList(w io.Writer, rs []*access.Request) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tSTATE\tINCIDENT\tWHO\tROLE\tSCOPE\tAPPROVER\tUNTIL\tREASON")
	for _, r := range rs {
		until := "-"
		switch {
		case !r.ExpiresAt.IsZero():
			until = r.ExpiresAt.UTC().Format(time.RFC3339)
		case r.State == access.StatePending:
			until = "(" + r.Duration.String() + " once granted)"
		}
		approver := r.Approver
		if approver == "" {
			approver = "-"
		}
		reason := r.Reason
		if r.Message != "" {
			reason += " [" + r.Message + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.State, r.Incident, r.Requester, r.Role, scope(r), approver, until, reason)
	}
	return tw.Flush()
}

// run executes args against t, for tests.
func run(ctx context.Context, streams iostreams.IOStreams, t *target, args ...string) error {
	cmd := newCommand(streams, t)
	cmd.SetArgs(args)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SilenceUsage = true
	return cmd.ExecuteContext(ctx)
}
