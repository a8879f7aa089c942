// Package e2e implements `bosun e2e`: the built-in smoke suite against one
// live cluster (L43), with its result recorded in the cluster's status.
package e2e

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/e2e"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/render"
)

type flagpole struct {
	cluster     string
	fleetDir    string
	kubeconfig  string
	provisioner string
	timeout     time.Duration
	noRecord    bool
	output      string
}

// exitError makes the command exit 1 after it printed the result.
type exitError struct{ msg string }

func (e exitError) Error() string { return e.msg }

// ExitCode is the process's exit status.
func (e exitError) ExitCode() int { return 1 }

// Silent: the message is still printed.
func (e exitError) Silent() bool { return false }

// NewCommand returns `bosun e2e`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "e2e --cluster ID [--fleet DIR] [--kubeconfig FILE]",
		Short: "Run the built-in smoke suite against a live cluster and record the result",
		Long: `Run Bosun's smoke suite against one cluster, kwok-backed or real: a
namespace and a Deployment rollout, Service endpoints, a PodDisruptionBudget
refusing an eviction, a pending pod getting a new node from the provisioner,
the downscaler's --at preview, and (with --fleet) every rendered add-on
healthy. The suite works in a namespace bosun-e2e-<random> and deletes it
at the end.

The result (the fleet revision and version the cluster runs, pass/fail per
check, durations) is written to the cluster's ConfigMap
bosun-system/bosun-status (data.e2e), where "bosun promote" reads it; use
--no-record to leave the status alone.

--provisioner auto runs the provisioner check when the cluster has one: a
local cluster under "bosun up", or a cluster whose rendered agent runs the
provisioner controller; otherwise the check is skipped with the reason.
"require" always runs it, "skip" never.

Exit status 1 when a check failed.`,
		Example: `  bosun e2e --cluster local-dev --fleet examples/fleet --kubeconfig ~/.bosun/kubeconfig
  bosun e2e --cluster my-context --kubeconfig kubeconfig --provisioner skip -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, streams, flags)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.cluster, "cluster", "", "cluster ID (with --fleet) or kubeconfig context (required)")
	f.StringVar(&flags.fleetDir, "fleet", "", "fleet directory: checks the rendered add-ons and finds the context bosun-<id> or <id>")
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&flags.provisioner, "provisioner", "auto", "the provisioner check: auto, require or skip")
	f.DurationVar(&flags.timeout, "timeout", 2*time.Minute, "time limit of each check (the provisioner check gets twice this)")
	f.BoolVar(&flags.noRecord, "no-record", false, "do not write the result to the cluster's status")
	f.StringVarP(&flags.output, "output", "o", "", "output format: json (default: a line per check)")
	return cmd
}

func run(cmd *cobra.Command, streams iostreams.IOStreams, flags *flagpole) error {
	if flags.cluster == "" {
		return fmt.Errorf("--cluster: required, the cluster ID or context to test")
	}
	if flags.output != "" && flags.output != "json" {
		return fmt.Errorf("-o %q: expected json", flags.output)
	}
	if flags.provisioner != "auto" && flags.provisioner != "require" && flags.provisioner != "skip" {
		return fmt.Errorf("--provisioner %q: expected auto, require or skip", flags.provisioner)
	}
	opts := e2e.Options{Cluster: flags.cluster, Timeout: flags.timeout, Record: !flags.noRecord}
	if flags.output == "" {
		opts.Out = streams.Out
	}
	var cfg *rest.Config
	var err error
	var cl *fleet.Cluster
	if flags.fleetDir != "" {
		f, err := fleet.Load(flags.fleetDir)
		if err != nil {
			return err
		}
		if cl = f.Cluster(flags.cluster); cl == nil {
			return fmt.Errorf("--cluster: cluster %q is not in fleet %s", flags.cluster, f.Dir)
		}
		r, err := render.New(f)
		if err != nil {
			return fmt.Errorf("preparing the fleet's templates, %w", err)
		}
		if opts.Rendered, err = r.Cluster(cmd.Context(), cl.ID); err != nil {
			return fmt.Errorf("rendering cluster %s, %w", cl.ID, err)
		}
		if cfg, err = lifecycle.KubeconfigContexts(flags.kubeconfig)(cl); err != nil {
			return err
		}
		opts.PoolSelector = e2e.PoolSelector(cl)
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if flags.kubeconfig != "" {
			rules.ExplicitPath = flags.kubeconfig
		}
		raw, err := rules.Load()
		if err != nil {
			return fmt.Errorf("reading kubeconfig, %w", err)
		}
		name, err := apply.ClusterContext(raw, flags.cluster)
		if err != nil {
			return fmt.Errorf("--cluster %s: %w", flags.cluster, err)
		}
		if cfg, err = clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig(); err != nil {
			return fmt.Errorf("--cluster %s: %w", flags.cluster, err)
		}
	}
	cfg.Timeout = 30 * time.Second
	if opts.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	opts.Config = cfg
	switch flags.provisioner {
	case "skip":
		opts.SkipProvisioner = "--provisioner skip"
	case "auto":
		opts.SkipProvisioner = ProvisionerAbsent(cl, opts.Rendered)
	}
	res, err := e2e.Run(cmd.Context(), opts)
	if flags.output == "json" {
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return err
	}
	if flags.output == "" {
		verdict := "passed"
		if !res.Passed {
			verdict = "FAILED"
		}
		rec := "recorded in bosun-system/bosun-status"
		if flags.noRecord {
			rec = "not recorded"
		}
		fmt.Fprintf(streams.Out, "e2e %s on %s in %s (revision %q; %s)\n", verdict, flags.cluster, res.Duration, res.Revision, rec)
	}
	if !res.Passed {
		return exitError{msg: fmt.Sprintf("e2e failed on cluster %s", flags.cluster)}
	}
	return nil
}

// ProvisionerAbsent says why the cluster has no provisioner to test, empty
// when it has one: a local cluster gets it from `bosun up`, any other
// from a rendered `bosun agent` running the provisioner controller.
func ProvisionerAbsent(cl *fleet.Cluster, res *render.Result) string {
	if cl == nil || res == nil {
		return "no fleet given (--fleet): cannot tell whether the cluster runs the provisioner (use --provisioner require)"
	}
	if cl.Provider == "local" {
		return ""
	}
	for _, obj := range res.Objects {
		pod, ok := obj.PodTemplate()
		if !ok {
			continue
		}
		for i := range pod.Spec.Containers {
			if l, ok := agentcmd.ParseCommandLine(&pod.Spec.Containers[i], obj.Object.GetNamespace()); ok && l.Runs(agentcmd.ControllerProvisioner) {
				return ""
			}
		}
	}
	return fmt.Sprintf("cluster %s runs no bosun agent with the provisioner controller", cl.ID)
}
