package lint

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// The overprovisioner form of L12: instead of static pause Deployments the
// fleet renders the agent with the overprovisioner controller and the
// ConfigMap with its rules; the controller makes and sizes the pause
// Deployments in the cluster. Lint finds the controller through the
// agent's command line, the way the agent itself reads it.

// Agent flags and their defaults, as `bosun agent` has them.
const (
	agentControllersFlag      = "--controllers"
	agentConfigMapFlag        = "--overprovisioner-configmap"
	agentDefaultNamespace     = "bosun-system"
	agentPodNamespaceEnv      = "POD_NAMESPACE"
	overprovisionerController = "overprovisioner"
	downscalerController      = "downscaler"
)

// overprovisionerAgent is a rendered container that runs `bosun agent`
// with the overprovisioner controller.
type overprovisionerAgent struct {
	w         *workload
	container string
	// configMap is the rules ConfigMap, namespace/name.
	configMap string
	// origin says where configMap came from, for messages.
	origin string
	// rules is the rendered ConfigMap; nil when the fleet renders none.
	rules *render.Object
}

func (a *overprovisionerAgent) name() string {
	return fmt.Sprintf("%s, container %s", objectName(a.w.obj.Object), a.container)
}

// findOverprovisioners returns the containers among the workloads that run
// the overprovisioner, each with the ConfigMap it reads.
func findOverprovisioners(workloads []*workload, objects []*render.Object) []*overprovisionerAgent {
	var out []*overprovisionerAgent
	for _, w := range workloads {
		for i := range w.pod.Spec.Containers {
			c := &w.pod.Spec.Containers[i]
			args, ok := agentArgs(c)
			if !ok || !runsController(args, overprovisionerController) {
				continue
			}
			a := &overprovisionerAgent{w: w, container: c.Name}
			if v := flagValues(args, agentConfigMapFlag); len(v) > 0 {
				a.configMap, a.origin = v[len(v)-1], agentConfigMapFlag
			} else {
				ns := agentNamespace(w, c)
				a.configMap = ns + "/" + overprovisioner.DefaultConfigMap
				a.origin = fmt.Sprintf("the default of %s: $%s or %s, and %s", agentConfigMapFlag, agentPodNamespaceEnv, agentDefaultNamespace, overprovisioner.DefaultConfigMap)
			}
			ns, name, _ := strings.Cut(a.configMap, "/")
			for _, o := range objects {
				if o.Object.GetKind() == "ConfigMap" && o.Object.GetNamespace() == ns && o.Object.GetName() == name {
					a.rules = o
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// agentArgs returns the arguments after `agent` when the container runs
// `bosun agent`: either the image's entrypoint is bosun and the arguments
// start with agent, or the command's program is bosun. `bosun agent
// manifests` and other subcommands do not count.
func agentArgs(c *corev1.Container) ([]string, bool) {
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
	return rest, true
}

// flagValues returns every value of --name=value or --name value in args,
// in order.
func flagValues(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		if v, ok := strings.CutPrefix(args[i], name+"="); ok {
			out = append(out, v)
		} else if args[i] == name && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
	}
	return out
}

// runsController reports whether --controllers (a list, repeatable; the
// agent's default is the downscaler alone) names controller.
func runsController(args []string, controller string) bool {
	values := flagValues(args, agentControllersFlag)
	if len(values) == 0 {
		return controller == downscalerController
	}
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			if strings.TrimSpace(c) == controller {
				return true
			}
		}
	}
	return false
}

// listFlag returns the items of a list flag (comma-separated, repeatable),
// or def when it is not given.
func listFlag(args []string, name string, def []string) []string {
	values := flagValues(args, name)
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

// downscalerFight returns the workloads whose agent runs the downscaler
// over namespace ns without excluding it. It would scale the
// overprovisioner's pause Deployments there down, the overprovisioner
// would set their replicas back, and so on every pass.
func (ctx *clusterContext) downscalerFight(ns string) []*workload {
	if ctx.namespaceAnnotationTrue(ns, downscaler.AnnotationExclude) {
		return nil
	}
	var out []*workload
	for _, w := range ctx.workloads {
		for i := range w.pod.Spec.Containers {
			c := &w.pod.Spec.Containers[i]
			args, ok := agentArgs(c)
			if !ok || !runsController(args, downscalerController) {
				continue
			}
			if v := flagValues(args, "--namespace"); len(v) > 0 && v[len(v)-1] != "" && v[len(v)-1] != ns {
				continue // it watches another namespace only
			}
			if len(flagValues(args, "--include-labels")) > 0 || len(flagValues(args, "--exclude-names")) > 0 {
				continue // a selection lint does not evaluate
			}
			if slices.Contains(listFlag(args, "--exclude-namespaces", []string{"kube-system", agentNamespace(w, c)}), ns) {
				continue
			}
			out = append(out, w)
		}
	}
	return out
}

// namespaceAnnotationTrue reports whether the rendered Namespace ns has
// the annotation key set to true.
func (ctx *clusterContext) namespaceAnnotationTrue(ns, key string) bool {
	for _, o := range ctx.res.Objects {
		if o.Object.GetKind() == "Namespace" && o.Object.GetName() == ns {
			b, err := strconv.ParseBool(strings.TrimSpace(o.Object.GetAnnotations()[key]))
			return err == nil && b
		}
	}
	return false
}

// agentNamespace is the agent's own namespace as it sees it: $POD_NAMESPACE
// (a value, or the pod's namespace through the downward API), else the
// agent's default.
func agentNamespace(w *workload, c *corev1.Container) string {
	for _, e := range c.Env {
		if e.Name != agentPodNamespaceEnv {
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			return w.namespace()
		}
		if e.Value != "" {
			return e.Value
		}
	}
	return agentDefaultNamespace
}

// overprovisionerTarget is the controller's target for a pool's nodes:
// "pool-<name>", "cluster" or "" (no headroom).
func overprovisionerTarget(p *fleet.NodePool) string {
	taints := make([]corev1.Taint, 0, len(p.Taints))
	for _, t := range p.Taints {
		taints = append(taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return overprovisioner.TargetFor(p.NodeLabels(), taints)
}

// runningOverprovisioner returns an agent that runs the overprovisioner
// with its ConfigMap rendered, or nil.
func (ctx *clusterContext) runningOverprovisioner() *overprovisionerAgent {
	for _, a := range ctx.overprovisioners {
		if a.rules != nil {
			return a
		}
	}
	return nil
}

// configMapData returns a ConfigMap's string data and, for each rules key
// whose value is not a string (an unquoted JSON object that YAML read as
// a map), what was found instead.
func configMapData(o *render.Object) (map[string]string, []string) {
	data := map[string]string{}
	var problems []string
	raw, _ := o.Object.Object["data"].(map[string]any)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		if s, ok := v.(string); ok {
			data[k] = s
			continue
		}
		if k == "linear" || k == "ladder" {
			problems = append(problems, fmt.Sprintf("data.%s: expected a string holding a JSON document (quote it: %s: '{...}'), got %s", k, k, yamlKind(v)))
		}
	}
	return data, problems
}

func yamlKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}

func taintList(taints []fleet.Taint) string {
	out := make([]string, 0, len(taints))
	for _, t := range taints {
		out = append(out, fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect))
	}
	return strings.Join(out, ", ")
}
