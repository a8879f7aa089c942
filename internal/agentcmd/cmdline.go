// Package agentcmd is the agent's command line as rendered manifests
// carry it: the flags and defaults of `bosun agent` that others read, the
// controllers' names, and the parsing of a container's command line.
// `bosun lint` checks a fleet's agent by it and `bosun up` runs the
// controllers the fleet's agent would run; both read it here, in a leaf
// package, so that neither imports the agent and its controllers.
package agentcmd

import (
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Controller names for --controllers. The agent's registration table
// (internal/agent) binds each to its package; lists of controllers (flag
// help, RBAC files, docs) come from that table.
const (
	ControllerDownscaler      = "downscaler"
	ControllerJanitor         = "janitor"
	ControllerOverprovisioner = "overprovisioner"
	ControllerProvisioner     = "provisioner"
	ControllerInterruption    = "interruption"
	ControllerScaleDown       = "scale-down"
	ControllerReaper          = "reaper"
	ControllerCertWatch       = "certwatch"
	ControllerAccess          = "access"
	ControllerBackupSchedule  = "backupschedule"
)

// DefaultOverprovisionerConfigMap is the name of the overprovisioner's
// rules ConfigMap when --overprovisioner-configmap is not given (in the
// agent's own namespace).
const DefaultOverprovisionerConfigMap = "overprovisioning"

// Flags and defaults of `bosun agent` that others read from a container's
// command line.
const (
	// FlagControllers lists the controllers to run (comma-separated,
	// repeatable); DefaultControllers when not given.
	FlagControllers = "controllers"
	// FlagOverprovisionerConfigMap names the overprovisioner's rules
	// ConfigMap, namespace/name.
	FlagOverprovisionerConfigMap = "overprovisioner-configmap"
	// PodNamespaceEnv holds the agent's own namespace (the downward API
	// sets it in a pod).
	PodNamespaceEnv = "POD_NAMESPACE"
	// DefaultNamespace is the agent's own namespace when PodNamespaceEnv
	// is unset or empty.
	DefaultNamespace = "bosun-system"
	// FlagKubeconfig is the kubeconfig path; without it the agent runs
	// with the in-cluster config.
	FlagKubeconfig = "kubeconfig"
	// FlagListenAddress is where the agent serves /metrics, /healthz and
	// /readyz, without authentication; "" turns them off.
	FlagListenAddress = "listen-address"
	// DefaultListenAddress is the listen address in-cluster (no
	// --kubeconfig): every interface of the pod, so that Prometheus and
	// the kubelet's probes reach it.
	DefaultListenAddress = ":8080"
	// WorkstationListenAddress is the listen address with --kubeconfig
	// (a workstation, or `bosun up`'s machine): loopback only, since on
	// every interface the unauthenticated endpoints would be open to the
	// machine's network.
	WorkstationListenAddress = "127.0.0.1:8080"
)

// ChooseListenAddress returns where the agent serves its endpoints and why,
// for its log: an explicit --listen-address always wins (set reports that
// it was given; "" turns the endpoints off); else DefaultListenAddress
// in-cluster, or WorkstationListenAddress when a kubeconfig is given.
func ChooseListenAddress(explicit string, set bool, kubeconfig string) (addr, why string) {
	switch {
	case set && explicit == "":
		return "", "--listen-address is empty: endpoints off"
	case set:
		return explicit, "--listen-address given"
	case kubeconfig != "":
		return WorkstationListenAddress, "--kubeconfig given (outside a cluster): loopback only by default, give --listen-address to open it"
	default:
		return DefaultListenAddress, "in-cluster (no --kubeconfig): every interface, for Prometheus and the kubelet's probes"
	}
}

// DefaultControllers are the controllers the agent runs without
// --controllers.
func DefaultControllers() []string { return []string{ControllerDownscaler} }

// CommandLine is a container that runs `bosun agent`, read from a pod
// template without running it.
type CommandLine struct {
	// Args are the arguments after `agent`.
	Args []string
	// Namespace is the agent's own namespace as the container sees it:
	// $POD_NAMESPACE (a value, or the pod's namespace through the downward
	// API), else DefaultNamespace.
	Namespace string
	// Env is the container's environment as the agent reads it: variables
	// with literal values, and POD_NAMESPACE set to Namespace. Values from
	// other sources (Secrets, fields) are left out.
	Env map[string]string
}

// ParseCommandLine reads the command line of a container in a pod of
// namespace podNamespace. It reports false unless the container runs
// `bosun agent`: either the image's entrypoint is bosun and the arguments
// start with agent, or the command's program is bosun. `bosun agent
// manifests` and other subcommands do not count.
func ParseCommandLine(c *corev1.Container, podNamespace string) (*CommandLine, bool) {
	argv := append(append([]string{}, c.Command...), c.Args...)
	var rest []string
	switch {
	case len(argv) > 0 && argv[0] == "agent":
		rest = argv[1:]
	case len(argv) > 1 && path.Base(argv[0]) == "bosun" && argv[1] == "agent":
		rest = argv[2:]
	default:
		return nil, false
	}
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		return nil, false
	}
	l := &CommandLine{Args: rest, Namespace: containerNamespace(c, podNamespace), Env: map[string]string{}}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			l.Env[e.Name] = e.Value
		}
	}
	l.Env[PodNamespaceEnv] = l.Namespace
	return l, true
}

// containerNamespace is the agent's own namespace as the container sees it.
func containerNamespace(c *corev1.Container, podNamespace string) string {
	for _, e := range c.Env {
		if e.Name != PodNamespaceEnv {
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			return podNamespace
		}
		if e.Value != "" {
			return e.Value
		}
	}
	return DefaultNamespace
}

// Flag returns every value of the flag name (without dashes), given as
// --name=value or --name value, in order; nothing after -- is a flag.
func (l *CommandLine) Flag(name string) []string {
	var out []string
	for i := 0; i < len(l.Args); i++ {
		arg := l.Args[i]
		if arg == "--" {
			break
		}
		if v, ok := strings.CutPrefix(arg, "--"+name+"="); ok {
			out = append(out, v)
		} else if arg == "--"+name && i+1 < len(l.Args) {
			out = append(out, l.Args[i+1])
			i++
		}
	}
	return out
}

// List returns the items of a list flag (comma-separated, repeatable), or
// def when it is not given.
func (l *CommandLine) List(name string, def []string) []string {
	values := l.Flag(name)
	if len(values) == 0 {
		return def
	}
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(item))
		}
	}
	return out
}

// Runs reports whether the agent runs controller.
func (l *CommandLine) Runs(controller string) bool {
	return slices.Contains(l.List(FlagControllers, DefaultControllers()), controller)
}

// ListenAddress returns where this container's agent serves /metrics,
// /healthz and /readyz, and why, as `bosun agent` chooses it
// (ChooseListenAddress): the last --listen-address, else by whether a
// --kubeconfig is given.
func (l *CommandLine) ListenAddress() (addr, why string) {
	var explicit, kubeconfig string
	v := l.Flag(FlagListenAddress)
	if len(v) > 0 {
		explicit = v[len(v)-1]
	}
	if kc := l.Flag(FlagKubeconfig); len(kc) > 0 {
		kubeconfig = kc[len(kc)-1]
	}
	return ChooseListenAddress(explicit, len(v) > 0, kubeconfig)
}

// OverprovisionerConfigMap returns the overprovisioner's rules ConfigMap,
// namespace/name as Options.Overprovisioner takes it: the last
// --overprovisioner-configmap, or (explicit false) its default,
// DefaultOverprovisionerConfigMap in the agent's own namespace.
func (l *CommandLine) OverprovisionerConfigMap() (configMap string, explicit bool) {
	if v := l.Flag(FlagOverprovisionerConfigMap); len(v) > 0 {
		return v[len(v)-1], true
	}
	return l.Namespace + "/" + DefaultOverprovisionerConfigMap, false
}

// SplitConfigMap splits the overprovisioner's namespace/name; ok is false
// unless both are given.
func SplitConfigMap(ref string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(ref, "/")
	return namespace, name, ok && namespace != "" && name != ""
}
