package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bosun-platform/bosun/internal/agent/access"
	"github.com/bosun-platform/bosun/internal/agent/backupschedule"
	"github.com/bosun-platform/bosun/internal/agent/certwatch"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agent/interruption"
	"github.com/bosun-platform/bosun/internal/agent/janitor"
	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/agent/reaper"
	"github.com/bosun-platform/bosun/internal/agent/scaledown"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/provider/nodeshape"
)

// Loop is the pass loop a controller runs on.
type Loop int

const (
	// LoopMain passes every Options.Interval, and early (debounced) when
	// a Notifier on it reports a change.
	LoopMain Loop = iota
	// LoopCapacity passes every Capacity.Interval (seconds: a pod waiting
	// for a node cannot wait), and early (batched) after a change.
	LoopCapacity
	// LoopNodeRemoval passes every Capacity.ScaleDownInterval (node
	// removal acts on minutes).
	LoopNodeRemoval
)

// Registration is one controller in the agent's table: its name in
// --controllers, what it does, where its RBAC is, how it runs and how it
// is built. Adding a controller is adding a Registration to registry
// (docs/agent.md, "Adding a controller").
type Registration struct {
	// Name is the controller's name in --controllers (agentcmd).
	Name string
	// Summary says what it does, for --help and docs (lines after the
	// first are indented by the help).
	Summary string
	// RBAC is its file of RBAC rules in deploy/agent (shared by
	// controllers that need the same rules).
	RBAC string
	// Loop is the loop it passes on.
	Loop Loop
	// Cloud: it acts on the cloud through Deps.Provider (--provider,
	// --cluster); such a controller watches the whole cluster.
	Cloud bool
	// CachesEveryPod reports whether, so configured, it keeps every pod
	// in the shared cache (nil: never).
	CachesEveryPod func(o *Options) bool
	// Validate checks the options only it reads (nil: none).
	Validate func(o *Options) error
	// New builds it from the agent's Deps and Options.
	New func(d controller.Deps, o *Options) (controller.Controller, error)
}

// registry is the table of controllers, in the order --help lists them.
var registry = []Registration{
	{
		Name:    agentcmd.ControllerDownscaler,
		Summary: "scales Deployments, StatefulSets, HPAs and CronJobs down outside\nworking hours and restores them (kube-downscaler annotations, L24)",
		RBAC:    "agent/20-rbac-downscaler.yaml",
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			return downscaler.New(d, downscaler.Options{Defaults: o.Downscaler})
		},
	},
	{
		Name:           agentcmd.ControllerJanitor,
		Summary:        "deletes resources after janitor/ttl or janitor/expires, or by a\nrules file (kube-janitor annotations, L52)",
		RBAC:           "agent/30-rbac-janitor.yaml",
		CachesEveryPod: func(o *Options) bool { return o.Janitor.WatchesPods() },
		Validate:       func(o *Options) error { return o.Janitor.Validate() },
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			return janitor.New(d, o.Janitor)
		},
	},
	{
		Name:           agentcmd.ControllerOverprovisioner,
		Summary:        "keeps headroom with priority -10 pause pods, per the linear or\nladder rules in --overprovisioner-configmap (L12)",
		RBAC:           "agent/50-rbac-overprovisioner.yaml",
		CachesEveryPod: func(*Options) bool { return true },
		Validate: func(o *Options) error {
			if _, _, ok := agentcmd.SplitConfigMap(o.Overprovisioner); !ok {
				return fmt.Errorf("--%s %q: expected namespace/name of the ConfigMap with the linear or ladder rules", agentcmd.FlagOverprovisionerConfigMap, o.Overprovisioner)
			}
			return nil
		},
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			ns, name, _ := agentcmd.SplitConfigMap(o.Overprovisioner)
			return overprovisioner.New(d, overprovisioner.Options{Namespace: ns, ConfigMap: name, LeaveToPreemption: o.OverprovisionerLeaveToPreemption})
		},
	},
	{
		Name:    agentcmd.ControllerProvisioner,
		Summary: "adds nodes for pods the scheduler cannot place, spot first, and\nfalls back to on-demand within seconds of a capacity error\n(L10, L11, L21, L57)",
		RBAC:    "agent/60-rbac-provisioner.yaml",
		Loop:    LoopCapacity,
		Cloud:   true,
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			return provisioner.New(d, provisioner.Options{Templates: nodeshape.ZoneTemplates(d.Region), SharedPods: o.everyPod})
		},
	},
	{
		Name:    agentcmd.ControllerInterruption,
		Summary: "cordons, taints and drains a node when its spot instance gets\nan interruption notice (L19)",
		RBAC:    "agent/70-rbac-interruption.yaml",
		Loop:    LoopCapacity,
		Cloud:   true,
		New: func(d controller.Deps, _ *Options) (controller.Controller, error) {
			return interruption.New(d, interruption.Options{})
		},
	},
	{
		Name:           agentcmd.ControllerScaleDown,
		Summary:        "removes empty and under-used nodes whose pods can move\nelsewhere, on-demand first, through the Eviction API (PDBs and\nsafe-to-evict \"false\" respected)",
		RBAC:           "agent/80-rbac-node-removal.yaml",
		Loop:           LoopNodeRemoval,
		Cloud:          true,
		CachesEveryPod: func(*Options) bool { return true },
		Validate:       func(o *Options) error { return o.Capacity.ScaleDown.Validate() },
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			return scaledown.New(d, o.Capacity.ScaleDown)
		},
	},
	{
		Name:           agentcmd.ControllerReaper,
		Summary:        "replaces on-demand fallback nodes with spot once spot is back\n(L22): spot node first, then drain the on-demand one",
		RBAC:           "agent/80-rbac-node-removal.yaml",
		Loop:           LoopNodeRemoval,
		Cloud:          true,
		CachesEveryPod: func(*Options) bool { return true },
		Validate:       func(o *Options) error { return o.Capacity.Reaper.Validate() },
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			ro := o.Capacity.Reaper
			ro.Templates = nodeshape.ZoneTemplates(d.Region)
			return reaper.New(d, ro)
		},
	},
	{
		Name:     agentcmd.ControllerCertWatch,
		Summary:  "exports bosun_certificate_expiry_seconds for every certificate the\ncluster depends on and emits Events at 30, 14, 7 and 1 days (L27)",
		RBAC:     "agent/90-rbac-certwatch.yaml",
		Validate: func(o *Options) error { return o.CertWatch.Validate() },
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			return certwatch.New(d, o.CertWatch)
		},
	},
	{
		Name:    agentcmd.ControllerAccess,
		Summary: "grants approved emergency access requests (an incident, a second\napprover in production) with time-bound bindings to edit or admin\nand removes them at expiry, also after a restart (L47, L56)",
		RBAC:    "agent/95-rbac-access.yaml",
		Validate: func(o *Options) error {
			if err := o.Access.Config.Validate(); err != nil {
				return fmt.Errorf("--access-production with --access-allow-self-approval: %w", err)
			}
			return nil
		},
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			return access.New(d, o.Access)
		},
	},
	{
		Name:    agentcmd.ControllerBackupSchedule,
		Summary: "backs up the cluster's Secrets on a schedule, encrypted to the\nfleet's age recipients, to a directory or S3, keeping the newest\n--backup-keep; its schedule survives restarts (L29)",
		RBAC:    "agent/96-rbac-backupschedule.yaml",
		Validate: func(o *Options) error {
			if o.Capacity.Cluster == "" {
				return fmt.Errorf("%s: --cluster: expected the fleet's cluster ID (backups are stored under it)", agentcmd.ControllerBackupSchedule)
			}
			return o.BackupSchedule.Validate()
		},
		New: func(d controller.Deps, o *Options) (controller.Controller, error) {
			return backupschedule.New(d, o.BackupSchedule)
		},
	},
}

// Controllers returns the table of controllers, in --help order.
func Controllers() []Registration { return slices.Clone(registry) }

// Lookup returns the registration of the controller name.
func Lookup(name string) (Registration, bool) {
	for _, r := range registry {
		if r.Name == name {
			return r, true
		}
	}
	return Registration{}, false
}

// Names returns the controllers' names, in --help order.
func Names() []string {
	out := make([]string, len(registry))
	for i, r := range registry {
		out[i] = r.Name
	}
	return out
}

// KnownControllers lists the controllers' names for help and error
// messages: "downscaler, janitor, ...".
func KnownControllers() string { return strings.Join(Names(), ", ") }

// Help describes every controller, one block each, for `bosun agent
// --help`.
func Help() string {
	var b strings.Builder
	for _, r := range registry {
		lines := strings.Split(r.Summary, "\n")
		if len(r.Name) <= 11 {
			fmt.Fprintf(&b, "  %-11s %s\n", r.Name, lines[0])
		} else {
			fmt.Fprintf(&b, "  %s\n              %s\n", r.Name, lines[0])
		}
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "              %s\n", l)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// CloudControllers returns, of names, those that act on the cloud.
func CloudControllers(names []string) []string {
	var out []string
	for _, n := range names {
		if r, ok := Lookup(n); ok && r.Cloud {
			out = append(out, n)
		}
	}
	return out
}

// RBACFiles returns the deploy/agent files with the RBAC of the
// controllers names, each once, or an error naming an unknown controller.
func RBACFiles(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		r, ok := Lookup(n)
		if !ok {
			return nil, fmt.Errorf("unknown controller %q (known: %s)", n, KnownControllers())
		}
		if !slices.Contains(out, r.RBAC) {
			out = append(out, r.RBAC)
		}
	}
	return out, nil
}

// registrations returns the registrations of o.Controllers, or an error
// naming the first unknown one.
func registrations(names []string) ([]Registration, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("--%s: name at least one of %s", agentcmd.FlagControllers, KnownControllers())
	}
	out := make([]Registration, 0, len(names))
	for _, n := range names {
		r, ok := Lookup(n)
		if !ok {
			return nil, fmt.Errorf("--%s: unknown controller %q (known: %s)", agentcmd.FlagControllers, n, KnownControllers())
		}
		out = append(out, r)
	}
	return out, nil
}
