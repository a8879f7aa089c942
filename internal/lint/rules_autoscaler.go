package lint

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxProvisionTime is the longest cluster-autoscaler may wait for a node
// before it treats the group as out of capacity and falls back.
const maxProvisionTime = 5 * time.Minute

// L11: cluster-autoscaler's default --max-node-provision-time of 15 minutes
// means an exhausted spot pool is noticed only after 15 minutes; Bedrock
// waited 10 and 45. Keep it short so fallback starts quickly.
func checkAutoscalerFallback(ctx *clusterContext, r *Rule) {
	for _, w := range ctx.workloads {
		for _, c := range w.pod.Spec.Containers {
			if !isClusterAutoscaler(c) {
				continue
			}
			value, ok := flagValue(append(append([]string{}, c.Command...), c.Args...), "--max-node-provision-time")
			if !ok {
				ctx.object(r, w.obj, "container %s: cluster-autoscaler without --max-node-provision-time waits the default 15m before falling back", c.Name)
				continue
			}
			d, err := time.ParseDuration(value)
			switch {
			case err != nil:
				ctx.object(r, w.obj, "container %s: --max-node-provision-time %q is not a duration", c.Name, value)
			case d > maxProvisionTime:
				ctx.object(r, w.obj, "container %s: --max-node-provision-time %s delays fallback; at most %s", c.Name, d, maxProvisionTime)
			}
		}
	}
}

func isClusterAutoscaler(c corev1.Container) bool {
	if strings.Contains(c.Image, "cluster-autoscaler") {
		return true
	}
	return len(c.Command) > 0 && strings.HasSuffix(c.Command[0], "cluster-autoscaler")
}

// flagValue finds --name=value or --name value in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}
