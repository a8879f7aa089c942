// Package agent implements `bosun agent`, the in-cluster binary that runs
// the downscaler (L24) and the janitor (L52).
package agent

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/agent/access"
	"github.com/bosun-platform/bosun/internal/agent/backupschedule"
	"github.com/bosun-platform/bosun/internal/agent/certwatch"
	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agent/janitor"
	"github.com/bosun-platform/bosun/internal/agent/reaper"
	"github.com/bosun-platform/bosun/internal/agent/scaledown"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/localfleet"
	"github.com/bosun-platform/bosun/internal/schedule"
)

// gcPercent is the agent's GOGC unless the environment sets one. The
// agent's heap is mostly its informer caches, which live as long as the
// process: Go's default (100) lets the heap grow to twice them between
// collections, 50 to one and a half, for a collection twice as often
// (docs/agent.md, "Memory", has the measured cost).
const gcPercent = 50

type flagpole struct {
	kubeconfig     string
	controllers    []string
	namespace      string
	interval       time.Duration
	dryRun         bool
	once           bool
	at             string
	leaderElect    bool
	leaseNamespace string
	leaseName      string
	listen         string
	listenSet      bool // --listen-address was given
	pprof          string
	logFormat      string
	qps            float32
	burst          int
	logLevel       string

	uptime, downtime               string
	upscalePeriod, downscalePeriod string
	downtimeReplicas               int32
	gracePeriod                    time.Duration
	excludeNamespaces              []string
	excludeNames                   string
	includeLabels                  string

	overprovisioner           string
	leaveToPreemption         bool
	provider                  string
	awsQueueURL               string
	localCloud                string
	cluster                   string
	region                    string
	capacityInterval          time.Duration
	scaleDownInterval         time.Duration
	scaleDownThreshold        float64
	scaleDownUnneeded         time.Duration
	scaleDownDelayAfterAdd    time.Duration
	drainTimeout              time.Duration
	reaperMinAge              time.Duration
	janitorResources          []string
	janitorExcludeResources   []string
	janitorClusterScoped      bool
	janitorInclude            []string
	janitorExclude            []string
	janitorRules              string
	janitorNotifyBefore       time.Duration
	janitorMaxDeletions       int
	janitorDeletionsPerSecond float64
	certWatchPKIDir           string
	certWatchConfigMap        string
	accessNamespace           string
	accessProduction          bool
	accessSelfApproval        bool
	backupEvery               time.Duration
	backupTo                  string
	backupRecipients          []string
	backupResources           []string
	backupKeep                int
	backupStatus              string
}

// NewCommand returns `bosun agent`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	cmd, _ := newCommand(streams, os.Getenv)
	return cmd
}

// ParseOptions turns the arguments of a rendered `bosun agent` container
// (those after "agent") into agent.Options exactly as the agent in that
// container would, with env as its environment (POD_NAMESPACE,
// DEFAULT_UPTIME, ...; the host's environment is not read). `bosun up`
// runs what each cluster's rendered agent declares this way.
func ParseOptions(args []string, env map[string]string, streams iostreams.IOStreams) (agent.Options, error) {
	cmd, flags := newCommand(streams, func(k string) string { return env[k] })
	f := cmd.Flags()
	if err := f.Parse(args); err != nil {
		return agent.Options{}, fmt.Errorf("the agent's arguments %q: %w", args, err)
	}
	if f.NArg() > 0 {
		return agent.Options{}, fmt.Errorf("the agent's arguments %q: unexpected %q (the agent takes flags only)", args, f.Args())
	}
	flags.complete(cmd)
	return flags.options(streams)
}

// newCommand builds `bosun agent` with getenv as the source of the
// environment defaults, and returns its flags.
func newCommand(streams iostreams.IOStreams, getenv func(string) string) (*cobra.Command, *flagpole) {
	flags := &flagpole{}
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the in-cluster controllers: " + agent.KnownControllers(),
		Long: `Run Bosun's in-cluster controllers, each enabled with --controllers:

` + agent.Help() + `

The capacity controllers (` + strings.Join(agent.CloudControllers(agent.Names()), ", ") + `)
talk to the cloud through --provider for the node groups of --cluster.
--provider local is the local cloud of "bosun up": run them on the machine
that runs it, against the cluster with --kubeconfig; --local-cloud names its
state directory (default $BOSUN_HOME or ~/.bosun). --provider aws manages
the cluster's EC2 Auto Scaling groups (tagged bosun.dev/cluster=ID) in
--region, with credentials from the SDK's default chain (environment,
shared config, IRSA or EKS Pod Identity) and interruption events from
--aws-queue-url (docs/aws.md).
The provisioner and the interruption handler run every --capacity-interval
(and the provisioner early when pods turn unschedulable), the scale-down and
the reaper every --scale-down-interval, independent of --interval.

The agent runs Go's garbage collector at GOGC=50 unless the environment
sets GOGC: its heap is mostly informer caches (docs/agent.md, "Memory").

Runs in-cluster, or against --kubeconfig. Leader election is on by default
in-cluster. Serves /metrics, /healthz and /readyz, without authentication,
on --listen-address: by default on every interface (:8080) in-cluster, and
on loopback (127.0.0.1:8080) with --kubeconfig, so that a workstation does
not open them to its network; the log says which address and why.

--once runs a single pass and exits (for a CronJob). --dry-run logs and counts
what would change and changes nothing. --once --dry-run --at TIME previews
what each controller would do at TIME.`,
		Example: `  bosun agent --kubeconfig ~/.bosun/kubeconfig --controllers downscaler --default-uptime "Mon-Fri 07:30-20:30 Europe/Berlin"
  bosun agent --kubeconfig kc --controllers downscaler,janitor --once --dry-run --at 2026-12-24T22:00:00+01:00
  bosun agent --kubeconfig ~/.bosun/clusters/local-prod/kubeconfig --controllers provisioner,interruption --provider local --cluster local-prod
  bosun agent --controllers provisioner,interruption,scale-down,reaper --provider aws --cluster prod-eu --region eu-central-1 --aws-queue-url https://sqs.eu-central-1.amazonaws.com/123456789012/bosun-prod-eu`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags.complete(cmd)
			opts, err := flags.options(streams)
			if err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(gcPercent)
			}
			return agent.Run(cmd.Context(), opts)
		},
	}
	cmd.AddCommand(newManifestsCommand(streams))
	ownNS := envOr(agentcmd.PodNamespaceEnv, agentcmd.DefaultNamespace)
	f := cmd.Flags()
	f.StringVar(&flags.kubeconfig, agentcmd.FlagKubeconfig, "", "kubeconfig path (default: in-cluster config)")
	f.StringSliceVar(&flags.controllers, agentcmd.FlagControllers, agentcmd.DefaultControllers(), "controllers to run: "+agent.KnownControllers())
	f.StringVar(&flags.overprovisioner, agentcmd.FlagOverprovisionerConfigMap, ownNS+"/"+agentcmd.DefaultOverprovisionerConfigMap, "overprovisioner: namespace/name of the ConfigMap with its linear or ladder rules (cluster-proportional-autoscaler format); the pause Deployments go to that namespace")
	f.BoolVar(&flags.leaveToPreemption, "overprovisioner-leave-to-preemption", false, "overprovisioner: do not delete the pause pods that pending pods of higher priority need at once (burst release); leave them to the scheduler's preemption, one victim set per scheduling cycle (for comparison)")
	f.StringVar(&flags.provider, "provider", "", "capacity controllers: the cloud (local, aws)")
	f.StringVar(&flags.awsQueueURL, "aws-queue-url", "", "capacity controllers with --provider aws: the SQS queue URL of the cluster's interruption events (created by bosun apply --infra)")
	f.StringVar(&flags.localCloud, "local-cloud", "", "capacity controllers with --provider local: the state `directory` of bosun up, which holds the local cloud's cloud.json (default $BOSUN_HOME or ~/.bosun)")
	f.StringVar(&flags.cluster, "cluster", "", "capacity controllers: this cluster's ID in the fleet (selects its node groups)")
	f.StringVar(&flags.region, "region", "local", "capacity controllers: the cluster's region (node templates; with --provider aws, its AWS region)")
	f.DurationVar(&flags.capacityInterval, "capacity-interval", time.Second, "capacity controllers: time between passes")
	f.DurationVar(&flags.scaleDownInterval, "scale-down-interval", 10*time.Second, "scale-down and reaper: time between passes")
	f.Float64Var(&flags.scaleDownThreshold, "scale-down-utilization-threshold", 0.5, "scale-down: a node whose CPU and memory requests are both below this share of allocatable is under-used")
	f.DurationVar(&flags.scaleDownUnneeded, "scale-down-unneeded-time", 10*time.Minute, "scale-down: how long a node stays unneeded before it is removed")
	f.DurationVar(&flags.scaleDownDelayAfterAdd, "scale-down-delay-after-add", 10*time.Minute, "scale-down: no removal this long after the cluster's latest launch")
	f.DurationVar(&flags.drainTimeout, "drain-timeout", 5*time.Minute, "scale-down and reaper: a drain still blocked (PDB) after this long fails and the node is uncordoned")
	f.DurationVar(&flags.reaperMinAge, "reaper-min-age", 2*time.Hour, "reaper: on-demand nodes younger than this stay (L22)")
	f.StringVar(&flags.namespace, "namespace", "", "watch only this namespace (default: all)")
	f.DurationVar(&flags.interval, "interval", 30*time.Second, "time between passes")
	f.BoolVar(&flags.dryRun, "dry-run", false, "log and count what would change; change nothing")
	f.BoolVar(&flags.once, "once", false, "run one pass of each controller, print what it did, and exit")
	f.StringVar(&flags.at, "at", "", "with --once --dry-run: pretend it is this time (RFC 3339 or YYYY-MM-DDTHH:MM)")
	f.BoolVar(&flags.leaderElect, "leader-elect", false, "elect a leader on a Lease (default: on in-cluster)")
	f.StringVar(&flags.leaseNamespace, "lease-namespace", ownNS, "namespace of the leader-election Lease (default $POD_NAMESPACE or bosun-system)")
	f.StringVar(&flags.leaseName, "lease-name", "bosun-agent", "name of the leader-election Lease")
	f.StringVar(&flags.listen, agentcmd.FlagListenAddress, "", `address for /metrics, /healthz and /readyz (default `+agentcmd.DefaultListenAddress+` in-cluster, `+agentcmd.WorkstationListenAddress+` with --kubeconfig; "" disables)`)
	f.StringVar(&flags.pprof, "pprof-address", "", `address for Go's profiles under /debug/pprof/, e.g. 127.0.0.1:6060 ("" disables; off by default: profiles show the process's memory, keep them on loopback)`)
	f.Float32Var(&flags.qps, "kube-api-qps", 50, "API requests per second the agent may send")
	f.IntVar(&flags.burst, "kube-api-burst", 100, "API request burst")
	f.StringVar(&flags.logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&flags.logLevel, "log-level", "info", "log level: debug, info, warn, error")

	f.StringVar(&flags.uptime, "default-uptime", envOr("DEFAULT_UPTIME", "always"), "downscaler: default uptime schedule (env DEFAULT_UPTIME)")
	f.StringVar(&flags.downtime, "default-downtime", envOr("DEFAULT_DOWNTIME", "never"), "downscaler: default downtime schedule (env DEFAULT_DOWNTIME)")
	f.StringVar(&flags.upscalePeriod, "upscale-period", getenv("UPSCALE_PERIOD"), "downscaler: default upscale period; selects period mode (env UPSCALE_PERIOD)")
	f.StringVar(&flags.downscalePeriod, "downscale-period", getenv("DOWNSCALE_PERIOD"), "downscaler: default downscale period; selects period mode (env DOWNSCALE_PERIOD)")
	f.Int32Var(&flags.downtimeReplicas, "downtime-replicas", 0, "downscaler: replicas during downtime")
	f.DurationVar(&flags.gracePeriod, "grace-period", 15*time.Minute, "downscaler: leave workloads younger than this alone")
	f.StringSliceVar(&flags.excludeNamespaces, "exclude-namespaces", []string{"kube-system", ownNS}, "downscaler: namespaces never scaled")
	f.StringVar(&flags.excludeNames, "exclude-names", "", "downscaler: regular expression of workload names never scaled")
	f.StringVar(&flags.includeLabels, "include-labels", "", "downscaler: label selector; only matching workloads are scaled")

	f.StringSliceVar(&flags.janitorResources, "janitor-resources", nil, "janitor: plural resource names to watch (default: common namespaced kinds)")
	f.StringSliceVar(&flags.janitorExcludeResources, "janitor-exclude-resources", nil, "janitor: plural resource names never watched")
	f.BoolVar(&flags.janitorClusterScoped, "janitor-cluster-scoped", false, "janitor: allow cluster-scoped resources such as namespaces")
	f.StringSliceVar(&flags.janitorInclude, "janitor-include-namespaces", nil, "janitor: only these namespaces (default: all)")
	f.StringSliceVar(&flags.janitorExclude, "janitor-exclude-namespaces", []string{"kube-system", "kube-public", "kube-node-lease", "default", ownNS}, "janitor: namespaces never touched")
	f.StringVar(&flags.janitorRules, "janitor-rules-file", "", "janitor: YAML rules file (CEL expressions) for objects without janitor annotations")
	f.DurationVar(&flags.janitorNotifyBefore, "janitor-notify-before", time.Hour, "janitor: send a DeleteScheduled event this long before deleting (0: none)")
	f.IntVar(&flags.janitorMaxDeletions, "janitor-max-deletions", 100, "janitor: at most this many deletions per pass")
	f.Float64Var(&flags.janitorDeletionsPerSecond, "janitor-deletions-per-second", 1, "janitor: rate limit on deletions")
	f.StringVar(&flags.certWatchPKIDir, "certwatch-pki-dir", "", "certwatch: a directory of PEM certificates to watch too (a local control plane's pki directory)")
	f.StringVar(&flags.certWatchConfigMap, "certwatch-state-configmap", ownNS+"/"+certwatch.DefaultStateConfigMap, "certwatch: namespace/name of the ConfigMap that keeps the thresholds already announced")
	f.StringVar(&flags.accessNamespace, "access-namespace", access.DefaultNamespace, "access: namespace of the emergency access requests (bosun access request)")
	f.BoolVar(&flags.accessProduction, "access-production", false, "access: the cluster is production: a request needs a second approver (L47)")
	f.BoolVar(&flags.accessSelfApproval, "access-allow-self-approval", false, "access: let a requester approve their own request (refused with --access-production)")
	f.DurationVar(&flags.backupEvery, "backup-every", 24*time.Hour, "backupschedule: time between backups")
	f.StringVar(&flags.backupTo, "backup-to", "", "backupschedule: where backups go: a directory or s3://bucket/prefix (S3 credentials from the standard AWS chain)")
	f.StringSliceVar(&flags.backupRecipients, "backup-recipients", nil, "backupschedule: age public keys (age1...) the backups are encrypted to (the fleet's backup.recipients); never a private key")
	f.StringSliceVar(&flags.backupResources, "backup-resources", nil, "backupschedule: kinds to back up besides Secrets, as resource[.group] (add RBAC to list them)")
	f.IntVar(&flags.backupKeep, "backup-keep", backupschedule.DefaultKeep, "backupschedule: how many backups of the cluster to keep")
	f.StringVar(&flags.backupStatus, "backup-status-configmap", backupschedule.DefaultStatusNamespace+"/"+backupschedule.DefaultStatusConfigMap, "backupschedule: namespace/name of the ConfigMap that keeps the schedule (last backup, next due)")
	return cmd, flags
}

// complete fills in the defaults that depend on other flags: leader
// election (on in-cluster, unless --once) and whether --listen-address was
// given (see agentcmd.ChooseListenAddress).
func (f *flagpole) complete(cmd *cobra.Command) {
	if !cmd.Flags().Changed("leader-elect") {
		f.leaderElect = f.kubeconfig == "" && !f.once
	}
	f.listenSet = cmd.Flags().Changed(agentcmd.FlagListenAddress)
}

// options validates the flags and turns them into agent.Options.
func (f *flagpole) options(streams iostreams.IOStreams) (agent.Options, error) {
	scaleDown := scaledown.DefaultOptions()
	scaleDown.UtilizationThreshold, scaleDown.UnneededTime = f.scaleDownThreshold, f.scaleDownUnneeded
	scaleDown.DelayAfterScaleUp, scaleDown.DrainTimeout = f.scaleDownDelayAfterAdd, f.drainTimeout
	reaper := reaper.DefaultOptions()
	reaper.MinAge, reaper.DrainTimeout = f.reaperMinAge, f.drainTimeout
	o := agent.Options{
		Kubeconfig: f.kubeconfig, Controllers: f.controllers, Namespace: f.namespace, Interval: f.interval,
		DryRun: f.dryRun, Once: f.once, LeaderElect: f.leaderElect, LeaseNamespace: f.leaseNamespace,
		LeaseName: f.leaseName, PprofAddress: f.pprof, Out: streams.Out, QPS: f.qps, Burst: f.burst,
		Overprovisioner: f.overprovisioner, OverprovisionerLeaveToPreemption: f.leaveToPreemption,
		Capacity: agent.Capacity{
			Name: f.provider, LocalCloud: f.localCloud, AWSQueueURL: f.awsQueueURL, Cluster: f.cluster, Region: f.region, Interval: f.capacityInterval,
			ScaleDownInterval: f.scaleDownInterval, ScaleDown: scaleDown, Reaper: reaper,
		},
	}
	o.ListenAddress, o.ListenReason = agentcmd.ChooseListenAddress(f.listen, f.listenSet, f.kubeconfig)
	if o.Capacity.Name == agent.ProviderLocal && o.Capacity.LocalCloud == "" {
		dir, err := localfleet.DefaultStateDir()
		if err != nil {
			return o, fmt.Errorf("--provider local: no --local-cloud, and no default state directory to find the local cloud in (%w); pass --local-cloud with the state directory of the running bosun up, on the machine that runs it", err)
		}
		o.Capacity.LocalCloud = dir
	}
	logger, err := newLogger(streams, f.logFormat, f.logLevel)
	if err != nil {
		return o, err
	}
	o.Logger = logger
	if f.at != "" {
		if o.At, err = schedule.ParseInstant(f.at); err != nil {
			return o, fmt.Errorf("--at: %w", err)
		}
	}
	for name, expr := range map[string]string{"--default-uptime": f.uptime, "--default-downtime": f.downtime, "--upscale-period": f.upscalePeriod, "--downscale-period": f.downscalePeriod} {
		if strings.TrimSpace(expr) == "" {
			continue
		}
		if _, err := schedule.Parse(expr); err != nil {
			return o, fmt.Errorf("%s: %w", name, err)
		}
	}
	d := downscaler.Defaults{
		Uptime: f.uptime, Downtime: f.downtime, UpscalePeriod: f.upscalePeriod, DownscalePeriod: f.downscalePeriod,
		DowntimeReplicas: f.downtimeReplicas, GracePeriod: f.gracePeriod, ExcludeNamespaces: f.excludeNamespaces,
	}
	if f.excludeNames != "" {
		if d.ExcludeNames, err = regexp.Compile(f.excludeNames); err != nil {
			return o, fmt.Errorf("--exclude-names: %w", err)
		}
	}
	if f.includeLabels != "" {
		if d.IncludeSelector, err = labels.Parse(f.includeLabels); err != nil {
			return o, fmt.Errorf("--include-labels: %w", err)
		}
	}
	o.Downscaler = d
	j := janitor.Options{
		Resources: f.janitorResources, ExcludeResources: f.janitorExcludeResources, ClusterScoped: f.janitorClusterScoped, IncludeNamespaces: f.janitorInclude,
		ExcludeNamespaces: f.janitorExclude, NotifyBefore: f.janitorNotifyBefore,
		MaxDeletionsPerPass: f.janitorMaxDeletions, DeletionsPerSecond: f.janitorDeletionsPerSecond,
	}
	if f.janitorRules != "" {
		if j.Rules, err = janitor.LoadRules(f.janitorRules); err != nil {
			return o, err
		}
	}
	o.Janitor = j
	ns, name, _ := agentcmd.SplitConfigMap(f.certWatchConfigMap)
	o.CertWatch = certwatch.Options{StateNamespace: ns, StateConfigMap: name, PKIDir: f.certWatchPKIDir}
	bns, bname, _ := agentcmd.SplitConfigMap(f.backupStatus)
	o.BackupSchedule = backupschedule.Options{
		Every: f.backupEvery, To: f.backupTo, Recipients: f.backupRecipients, Resources: f.backupResources, Keep: f.backupKeep,
		StatusNamespace: bns, StatusConfigMap: bname,
	}
	o.Access = access.Options{Namespace: f.accessNamespace, Config: access.Config{Production: f.accessProduction, AllowSelfApproval: f.accessSelfApproval}}
	return o, o.Validate()
}

func newLogger(streams iostreams.IOStreams, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: expected debug, info, warn or error", level)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(streams.ErrOut, hopts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(streams.ErrOut, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: expected json or text", format)
}
