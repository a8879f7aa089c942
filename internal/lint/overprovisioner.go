package lint

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// The overprovisioner form of L12: instead of static pause Deployments the
// fleet renders the agent with the overprovisioner controller and the
// ConfigMap with its rules; the controller makes and sizes the pause
// Deployments in the cluster. Lint finds the controller through the
// agent's command line, read with agentcmd.ParseCommandLine as `bosun up`
// reads it to run the same controller.

// configMapFlag is the agent's flag for the overprovisioner's ConfigMap,
// as messages name it.
const configMapFlag = "--" + agentcmd.FlagOverprovisionerConfigMap

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
			l, ok := agentcmd.ParseCommandLine(c, w.namespace())
			if !ok || !l.Runs(agentcmd.ControllerOverprovisioner) {
				continue
			}
			a := &overprovisionerAgent{w: w, container: c.Name}
			var explicit bool
			if a.configMap, explicit = l.OverprovisionerConfigMap(); explicit {
				a.origin = configMapFlag
			} else {
				a.origin = fmt.Sprintf("the default of %s: $%s or %s, and %s", configMapFlag, agentcmd.PodNamespaceEnv, agentcmd.DefaultNamespace, agentcmd.DefaultOverprovisionerConfigMap)
			}
			ns, name, _ := agentcmd.SplitConfigMap(a.configMap)
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

// downscalerFight returns the workloads whose agent runs the downscaler
// over namespace ns without excluding it. It would scale the
// overprovisioner's pause Deployments there down, the overprovisioner
// would set their replicas back, and so on every pass.
func (ctx *clusterContext) downscalerFight(ns string) []*workload {
	if ctx.namespaceAnnotationTrue(ns, agentapi.DownscalerExclude) {
		return nil
	}
	var out []*workload
	for _, w := range ctx.workloads {
		for i := range w.pod.Spec.Containers {
			c := &w.pod.Spec.Containers[i]
			l, ok := agentcmd.ParseCommandLine(c, w.namespace())
			if !ok || !l.Runs(agentcmd.ControllerDownscaler) {
				continue
			}
			if v := l.Flag("namespace"); len(v) > 0 && v[len(v)-1] != "" && v[len(v)-1] != ns {
				continue // it watches another namespace only
			}
			if len(l.Flag("include-labels")) > 0 || len(l.Flag("exclude-names")) > 0 {
				continue // a selection lint does not evaluate
			}
			if slices.Contains(l.List("exclude-namespaces", []string{"kube-system", l.Namespace}), ns) {
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
