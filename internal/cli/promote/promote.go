// Package promote implements `bosun promote`: move a fleet revision from
// one release channel to the next, only once the e2e suite passed at that
// revision on every cluster of the lower channel (L43, L02).
package promote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/channels"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
)

type flagpole struct {
	to         string
	fleetDir   string
	kubeconfig string
	timeout    time.Duration
}

// NewCommand returns `bosun promote`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "promote CHANNEL --to NEXT",
		Short: "Promote a channel's fleet revision to the next channel once e2e passed on all its clusters",
		Long: `Promote the fleet revision that CHANNEL follows to the next channel
(dev -> alpha -> beta -> stable, one step at a time) by writing it to
channels.yaml. It is refused unless every cluster of CHANNEL runs that
revision fully (its status in bosun-system/bosun-status) and "bosun e2e"
passed there at that revision and version. dev follows the working tree:
promoting it needs a clean working tree under the fleet directory (commit
first), and promotes HEAD.

The command edits channels.yaml only; committing it is your job (bosun
never commits). The controller reads channels.yaml from the working tree,
so its next pass renders the clusters of NEXT at the new revision,
non-production clusters before production ones.

A fleet that is not in a git repository has one implicit revision, which
every channel follows: there is nothing to promote.`,
		Example: `  bosun promote beta --to stable --fleet fleet/ --kubeconfig kubeconfig`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), streams, flags, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.to, "to", "", "the next channel (required)")
	f.StringVar(&flags.fleetDir, "fleet", ".", "fleet directory (in a git repository)")
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig with a context per cluster, bosun-<id> or <id> (default $KUBECONFIG or ~/.kube/config)")
	f.DurationVar(&flags.timeout, "timeout", 10*time.Second, "how long to wait for each cluster's API")
	return cmd
}

func run(ctx context.Context, streams iostreams.IOStreams, flags *flagpole, from string) error {
	if channels.Rank(from) < 0 {
		return fmt.Errorf("channel %q: expected one of %s", from, strings.Join(channels.Order, ", "))
	}
	if flags.to == "" {
		return errors.New("--to: required, the channel to promote to")
	}
	if channels.Rank(flags.to) != channels.Rank(from)+1 {
		next := "none: stable is the last"
		if r := channels.Rank(from); r+1 < len(channels.Order) {
			next = channels.Order[r+1]
		}
		return fmt.Errorf("--to %q: a revision moves one channel at a time; the channel after %s is %s", flags.to, from, next)
	}
	f, err := fleet.Load(flags.fleetDir)
	if err != nil {
		return err
	}
	chans, err := channels.Open(flags.fleetDir)
	if err != nil {
		return err
	}
	if !chans.IsGit() {
		return fmt.Errorf("fleet %s is not in a git repository: every channel follows its one implicit revision (%s), so there is nothing to promote", f.Dir, channels.WorkingTree)
	}
	rev, _, err := chans.Resolve(from)
	if err != nil {
		return err
	}
	if strings.HasSuffix(rev, channels.DirtySuffix) {
		return fmt.Errorf("channel %s follows the working tree, which has uncommitted changes under %s: commit them, let the controller apply HEAD and run bosun e2e, then promote", from, f.Dir)
	}
	cfgFor := lifecycle.KubeconfigContexts(flags.kubeconfig)
	var inputs []lifecycle.PromotionInput
	for _, cl := range f.Clusters {
		if cl.Channel != from {
			continue
		}
		in := lifecycle.PromotionInput{Cluster: cl.ID}
		cfg, err := cfgFor(cl)
		if err == nil {
			cfg.Timeout = flags.timeout
			var cs kubernetes.Interface
			if cs, err = kubernetes.NewForConfig(cfg); err == nil {
				in.Live, err = lifecycle.ReadStatus(ctx, cs)
			}
		}
		in.Err = err
		inputs = append(inputs, in)
	}
	if err := lifecycle.CheckPromotion(from, rev, inputs); err != nil {
		return err
	}
	old := chans.Revisions[flags.to]
	if err := chans.Set(flags.to, rev); err != nil {
		return err
	}
	if old == "" {
		old = "the working tree"
	}
	fmt.Fprintf(streams.Out, "channel %s: %s -> %s (e2e passed on %d cluster(s) of %s)\n", flags.to, old, rev, len(inputs), from)
	fmt.Fprintf(streams.Out, "updated %s/%s; commit it (bosun does not commit). The controller renders the %s clusters at %s from its next pass, non-production first.\n", chans.Dir, channels.File, flags.to, rev[:12])
	return nil
}
