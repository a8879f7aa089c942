// Package certs implements `bosun certs`: every certificate a cluster
// depends on and when it expires (L27).
package certs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bosun-platform/bosun/internal/agent/janitor"
	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/certs"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localfleet"
)

type flagpole struct {
	kubeconfig string
	context    string
	fleetDir   string
	stateDir   string
	output     string
	failWithin string
	timeout    time.Duration
}

// NewCommand returns `bosun certs`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List every certificate a cluster depends on and when it expires",
		Long: `List the certificates each cluster depends on, soonest expiry first (L27):

  apiserver-serving     the chain the API server presents (TLS handshake;
                        read even when expired or untrusted)
  kubeconfig-client/ca  the client certificate and CA of the kubeconfig
  secret                tls.crt of every kubernetes.io/tls Secret (keys are
                        never read into the output, kept or logged)
  webhook-ca-bundle     caBundle of validating and mutating webhooks
  apiservice-ca-bundle  caBundle of aggregated APIServices
  file                  a local control plane's certificates on disk, also
                        checked for the lifetime they were generated with

Which clusters:
  (no flag)       the running local fleet of "bosun up" (--state-dir)
  --kubeconfig F  one cluster: the kubeconfig's current context, or --context
  --fleet DIR     every cluster of the fleet, each through the kubeconfig
                  context bosun-<ID> (as bosun up names them) or <ID>; a
                  cluster without one is reported as unreachable

STATUS is ok, warning (30 days or less), critical (7 days or less),
expired or not-yet-valid; a PROBLEM column names generated certificates
whose lifetime is not the one asked for.

Exit status: 0 when nothing needs attention; 1 when a certificate has
expired or has a problem, when one expires within --fail-within, or when a
source could not be read (each is listed on stderr).`,
		Example: `  bosun certs
  bosun certs --kubeconfig ~/.kube/config --context prod -o json
  bosun certs --fleet fleet/ --kubeconfig ~/.kube/fleet --fail-within 14d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), streams, flags)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig file; with --fleet, the one holding a context per cluster (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&flags.context, "context", "", "kubeconfig context (default: the current context; not with --fleet)")
	f.StringVar(&flags.fleetDir, "fleet", "", "fleet directory: scan every cluster of the fleet")
	f.StringVar(&flags.stateDir, "state-dir", "", "state directory of the running bosun up (default $BOSUN_HOME or ~/.bosun); used when neither --kubeconfig nor --fleet is given, and for the on-disk certificates of local clusters")
	f.StringVarP(&flags.output, "output", "o", "table", "output format: table or json")
	f.StringVar(&flags.failWithin, "fail-within", "", "also exit 1 when a certificate expires within this long, e.g. 14d, 72h")
	f.DurationVar(&flags.timeout, "timeout", 30*time.Second, "time limit per cluster")
	return cmd
}

// options are the flags, checked.
type options struct {
	failWithin time.Duration
}

func (fl *flagpole) validate() (options, error) {
	var o options
	var errs []error
	if fl.output != "table" && fl.output != "json" {
		errs = append(errs, fmt.Errorf("--output %q: expected table or json", fl.output))
	}
	if fl.context != "" && fl.fleetDir != "" {
		errs = append(errs, errors.New("--context and --fleet: choose one (with --fleet each cluster's context is named after its ID)"))
	}
	if fl.failWithin != "" {
		d, err := janitor.ParseTTL(fl.failWithin)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("--fail-within %q: expected a duration such as 14d or 72h", fl.failWithin))
		}
		o.failWithin = d
	}
	if fl.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s: expected a positive duration", fl.timeout))
	}
	return o, errors.Join(errs...)
}

// target is one cluster to scan, or why it cannot be.
type target struct {
	certs.Target
	unreachable error
}

func run(ctx context.Context, streams iostreams.IOStreams, fl *flagpole) error {
	o, err := fl.validate()
	if err != nil {
		return err
	}
	targets, err := fl.targets()
	if err != nil {
		return err
	}
	var found []certs.Cert
	var problems []error
	for _, t := range targets {
		if t.unreachable != nil {
			problems = append(problems, fmt.Errorf("cluster %s: unreachable: %w", t.Cluster, t.unreachable))
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, fl.timeout)
		cs, errs := certs.Scan(tctx, t.Target)
		cancel()
		found = append(found, cs...)
		problems = append(problems, errs...)
	}
	now := time.Now()
	assessed := make([]certs.Assessment, len(found))
	for i, c := range found {
		assessed[i] = certs.Assess(c, now)
	}
	sort.SliceStable(assessed, func(i, j int) bool { return assessed[i].NotAfter.Before(assessed[j].NotAfter) })
	if fl.output == "json" {
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(assessed); err != nil {
			return err
		}
	} else {
		writeTable(streams.Out, assessed)
	}
	for _, p := range problems {
		fmt.Fprintf(streams.ErrOut, "warning: %v\n", p)
	}
	attention := 0
	for _, a := range assessed {
		if a.Severity == certs.Expired || len(a.Problems) > 0 || (o.failWithin > 0 && a.Remaining <= o.failWithin) {
			attention++
		}
	}
	if attention > 0 || len(problems) > 0 {
		return fmt.Errorf("%d certificate(s) need attention, %d source(s) could not be read", attention, len(problems))
	}
	return nil
}

func writeTable(w io.Writer, as []certs.Assessment) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tSOURCE\tNAME\tSUBJECT\tNOT AFTER\tREMAINING\tSTATUS\tPROBLEM")
	for _, a := range as {
		name := a.Name
		if a.Namespace != "" {
			name = a.Namespace + "/" + a.Name
		}
		if a.Index > 0 {
			name += fmt.Sprintf(" [%d]", a.Index)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Cluster, a.Source, name, a.Subject,
			a.NotAfter.Format("2006-01-02 15:04"), certs.FormatDuration(a.Remaining), a.Severity, strings.Join(a.Problems, "; "))
	}
	_ = tw.Flush()
}

// targets resolves the flags into the clusters to scan.
func (fl *flagpole) targets() ([]target, error) {
	if fl.fleetDir != "" {
		return fl.fleetTargets()
	}
	if fl.kubeconfig != "" || fl.context != "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = fl.kubeconfig
		raw, err := rules.Load()
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig, %w", err)
		}
		name := fl.context
		if name == "" {
			name = raw.CurrentContext
		}
		if _, ok := raw.Contexts[name]; !ok {
			return nil, fmt.Errorf("kubeconfig: no context %q", name)
		}
		t, err := contextTarget(raw, name, name)
		return []target{t}, err
	}
	dir, err := localfleet.ResolveStateDir(fl.stateDir)
	if err != nil {
		return nil, err
	}
	configs, ids, err := localfleet.RESTConfigs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w, or name a cluster with --kubeconfig or --fleet", err)
	}
	out := make([]target, 0, len(ids))
	for _, id := range ids {
		t, err := clientsFor(id, configs[id])
		if err != nil {
			return nil, err
		}
		t.PKIDir, t.PKILifetime = controlplane.PKIDir(localfleet.ClusterDir(dir, id)), controlplane.CertLifetime()
		out = append(out, t)
	}
	return out, nil
}

// fleetTargets is one target per cluster of the fleet, through the
// kubeconfig context named after the cluster. Local clusters also get
// their certificates on disk, when the state directory has them.
func (fl *flagpole) fleetTargets() ([]target, error) {
	f, err := fleet.Load(fl.fleetDir)
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = fl.kubeconfig
	if fl.kubeconfig == "" && os.Getenv("KUBECONFIG") == "" {
		if dir, err := localfleet.ResolveStateDir(fl.stateDir); err == nil {
			if _, err := os.Stat(localfleet.KubeconfigPath(dir)); err == nil {
				rules.ExplicitPath = localfleet.KubeconfigPath(dir)
			}
		}
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig, %w", err)
	}
	stateDir, _ := localfleet.ResolveStateDir(fl.stateDir)
	var out []target
	for _, cl := range f.Clusters {
		name, err := apply.ClusterContext(raw, cl.ID)
		if err != nil {
			out = append(out, target{Target: certs.Target{Cluster: cl.ID}, unreachable: err})
			continue
		}
		t, err := contextTarget(raw, name, cl.ID)
		if err != nil {
			return nil, err
		}
		if cl.Provider == "local" && stateDir != "" {
			pki := controlplane.PKIDir(localfleet.ClusterDir(stateDir, cl.ID))
			if _, err := os.Stat(pki); err == nil {
				t.PKIDir, t.PKILifetime = pki, controlplane.CertLifetime()
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// contextTarget builds the clients of one kubeconfig context.
func contextTarget(raw *clientcmdapi.Config, contextName, cluster string) (target, error) {
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, contextName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return target{Target: certs.Target{Cluster: cluster}, unreachable: err}, nil
	}
	return clientsFor(cluster, cfg)
}

func clientsFor(cluster string, cfg *rest.Config) (target, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return target{}, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return target{}, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return target{Target: certs.Target{Cluster: cluster, Config: cfg, Client: cs, Dynamic: dyn}}, nil
}
