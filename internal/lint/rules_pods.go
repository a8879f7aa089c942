package lint

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/fleet"
)

// NdotsConfigItem is the config item holding the cluster's default ndots.
const NdotsConfigItem = "dns_ndots"

// L03: the default ndots of 5 turns every external lookup into a burst of
// search-path queries.
func checkDNSNdots(ctx *clusterContext, r *Rule) {
	clusterDefault, err := strconv.Atoi(ctx.cluster.ConfigItems[NdotsConfigItem])
	clusterOK := err == nil && clusterDefault <= 2
	for _, w := range ctx.workloads {
		spec := &w.pod.Spec
		policy := spec.DNSPolicy
		if policy == corev1.DNSDefault || (spec.HostNetwork && policy != corev1.DNSClusterFirstWithHostNet) {
			continue
		}
		ndots, set := podNdots(spec)
		switch {
		case set && ndots > 2:
			ctx.object(r, w.obj, "pod sets ndots %d; at most 2", ndots)
		case !set && !clusterOK:
			ctx.object(r, w.obj, "pod sets no ndots and the cluster's %s config item is not <= 2", NdotsConfigItem)
		}
	}
}

func podNdots(spec *corev1.PodSpec) (int, bool) {
	if spec.DNSConfig == nil {
		return 0, false
	}
	for _, o := range spec.DNSConfig.Options {
		if o.Name == "ndots" && o.Value != nil {
			n, err := strconv.Atoi(*o.Value)
			if err != nil {
				return 99, true
			}
			return n, true
		}
	}
	return 0, false
}

// L08: DaemonSets run on every node; only Guaranteed QoS makes the
// per-node overhead known.
func checkDaemonSetGuaranteed(ctx *clusterContext, r *Rule) {
	for _, w := range ctx.workloads {
		if w.kind != "DaemonSet" {
			continue
		}
		for _, c := range allContainers(&w.pod.Spec) {
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[res]
				lim, hasLim := c.Resources.Limits[res]
				if !hasReq || !hasLim || req.Cmp(lim) != 0 {
					ctx.object(r, w.obj, "container %s: %s request %s and limit %s must be set and equal", c.Name, res, quantity(req, hasReq), quantity(lim, hasLim))
				}
			}
		}
	}
}

func quantity(q resource.Quantity, set bool) string {
	if !set {
		return "(unset)"
	}
	return q.String()
}

// L12: pause pods at priority -10 are preempted first and, being larger
// than any real pod, always free enough room for it. Two forms: static
// pause Deployments rendered by the fleet, and the agent's overprovisioner
// controller, which makes and sizes them from its ConfigMap.
func checkOverprovisioning(ctx *clusterContext, r *Rule) {
	checkStaticOverprovisioning(ctx, r)
	checkOverprovisioner(ctx, r)
}

// checkStaticOverprovisioning checks pause pods the fleet renders itself.
func checkStaticOverprovisioning(ctx *clusterContext, r *Rule) {
	for _, w := range ctx.workloads {
		if !w.overprovisioning() {
			continue
		}
		if a := ctx.runningOverprovisioner(); a != nil {
			ctx.objectSeverity(r, SeverityWarning, w.obj, "static overprovisioning pods next to the overprovisioner (run by %s): both reserve headroom; expected one form (remove these, the controller sizes its own)", a.name())
		}
		name := w.pod.Spec.PriorityClassName
		if v, ok := ctx.priorityClasses[name]; !ok || v != -10 {
			ctx.object(r, w.obj, "overprovisioning pods use priority class %q (value %s); expected a class of value -10", name, classValue(ctx, name))
		}
		cpu, mem := w.podRequests()
		for _, other := range ctx.workloads {
			if other == w || other.overprovisioning() || other.kind == "DaemonSet" || !sharePool(w, other) {
				continue
			}
			ocpu, omem := other.podRequests()
			if cpu.Cmp(ocpu) <= 0 || mem.Cmp(omem) <= 0 {
				ctx.object(r, w.obj, "overprovisioning pods request %s CPU / %s memory, not more than %s (%s / %s) in the same pool",
					cpu.String(), mem.String(), objectName(other.obj.Object), ocpu.String(), omem.String())
			}
		}
	}
}

// checkOverprovisioner checks the controller form: every agent that runs
// the overprovisioner finds its ConfigMap and can parse it (with the
// controller's own parser), the priority class it uses is -10 when the
// fleet renders it, every tainted pool that runs workloads gets a target
// (the controller skips tainted pools unless they are dedicated), and no
// downscaler scales the pause Deployments the controller keeps.
func checkOverprovisioner(ctx *clusterContext, r *Rule) {
	for _, a := range ctx.overprovisioners {
		if _, _, ok := agentcmd.SplitConfigMap(a.configMap); !ok {
			ctx.object(r, a.w.obj, "container %s: %s %q: expected namespace/name of the ConfigMap with the overprovisioner's linear or ladder rules", a.container, configMapFlag, a.configMap)
			continue
		}
		if a.rules == nil {
			ctx.object(r, a.w.obj, "container %s runs the overprovisioner, which reads its rules from ConfigMap %s (%s), but no such ConfigMap is rendered; expected one with a linear or ladder key (cluster-proportional-autoscaler format)", a.container, a.configMap, a.origin)
			continue
		}
		data, problems := configMapData(a.rules)
		if len(problems) == 0 {
			if _, err := agentapi.ParseParams("data", data); err != nil {
				problems = append(problems, err.Error())
			}
		}
		for _, p := range problems {
			ctx.object(r, a.rules, "the overprovisioner's rules (read by %s) do not parse: %s", a.name(), p)
		}
		ns, _, _ := strings.Cut(a.configMap, "/")
		for _, w := range ctx.downscalerFight(ns) {
			ctx.object(r, w.obj, "runs the downscaler over namespace %s, where the overprovisioner (%s) keeps its pause Deployments: the two would fight over their replicas; expected the namespace excluded (annotation %s: \"true\" on Namespace %s, or --exclude-namespaces)",
				ns, a.name(), agentapi.DownscalerExclude, ns)
		}
	}
	a := ctx.runningOverprovisioner()
	if a == nil {
		return
	}
	if v, ok := ctx.priorityClasses[agentapi.PriorityClassName]; ok && v != int64(agentapi.Priority) {
		for _, o := range ctx.res.Objects {
			if o.Object.GetKind() == "PriorityClass" && o.Object.GetName() == agentapi.PriorityClassName {
				ctx.object(r, o, "value %d: the overprovisioner's pause pods use this class (it creates it only when missing); expected %d", v, agentapi.Priority)
			}
		}
	}
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		if p.Role == fleet.RoleSystem || agentapi.PoolTarget(p) != "" {
			continue
		}
		var users []string
		for _, w := range ctx.workloads {
			if w.longRunning && w.kind != "DaemonSet" && !w.overprovisioning() && inPools(w, p) {
				users = append(users, objectName(w.obj.Object))
			}
		}
		if len(users) == 0 {
			continue
		}
		if len(users) > 3 {
			users = append(users[:3], fmt.Sprintf("%d more", len(users)-3))
		}
		ctx.pool(r, p, "tainted %s, so the overprovisioner (%s) gives it no headroom, yet %s run(s) on it; expected role: dedicated (its own target, Deployment %s, tolerating the taints) or no NoSchedule/NoExecute taint (the cluster's target)",
			taintList(p.Taints), a.name(), strings.Join(users, ", "), agentapi.DeploymentName("pool-"+p.Name))
	}
}

func inPools(w *workload, p *fleet.NodePool) bool {
	for _, wp := range w.pools {
		if wp == p {
			return true
		}
	}
	return false
}

func classValue(ctx *clusterContext, name string) string {
	if v, ok := ctx.priorityClasses[name]; ok {
		return strconv.FormatInt(v, 10)
	}
	return "not rendered"
}

func sharePool(a, b *workload) bool {
	for _, p := range a.pools {
		for _, q := range b.pools {
			if p == q {
				return true
			}
		}
	}
	return false
}

// builtinPriorityClasses exist in every cluster.
var builtinPriorityClasses = map[string]bool{"system-cluster-critical": true, "system-node-critical": true}

// L13: low (-5), default (0) and high (5) let low-priority work be
// sacrificed in peaks.
func checkPriorityClasses(ctx *clusterContext, r *Rule) {
	values := map[int64]bool{}
	for _, v := range ctx.priorityClasses {
		values[v] = true
	}
	var missing []string
	for _, want := range []struct {
		name  string
		value int64
	}{{"low", -5}, {"default", 0}, {"high", 5}} {
		if !values[want.value] {
			missing = append(missing, fmt.Sprintf("%s (%d)", want.name, want.value))
		}
	}
	if len(missing) > 0 {
		ctx.clusterFinding(r, 0, "no PriorityClass rendered for %s", strings.Join(missing, ", "))
	}
	for _, w := range ctx.workloads {
		name := w.pod.Spec.PriorityClassName
		if name == "" || builtinPriorityClasses[name] {
			continue
		}
		if _, ok := ctx.priorityClasses[name]; !ok {
			ctx.object(r, w.obj, "priority class %q is not rendered for this cluster", name)
		}
	}
}

// L26: system and user capacity are separated by labels and taints.
func checkSystemPlacement(ctx *clusterContext, r *Rule) {
	for _, w := range ctx.workloads {
		if w.kind == "DaemonSet" {
			continue
		}
		system := w.namespace() == "kube-system"
		var other []string
		for _, p := range w.pools {
			if (p.Role == fleet.RoleSystem) != system {
				other = append(other, p.Name)
			}
		}
		switch {
		case system && len(w.pools) == 0:
			ctx.object(r, w.obj, "system component fits no node pool; select the system pool and tolerate its taints")
		case system && len(other) > 0:
			ctx.object(r, w.obj, "system component also fits non-system pools %s", strings.Join(other, ", "))
		case !system && len(other) > 0:
			ctx.object(r, w.obj, "pod outside kube-system fits system pools %s", strings.Join(other, ", "))
		}
	}
}

// L35: DaemonSets run on every node; on small nodes their requests eat
// the capacity the node was bought for.
func checkNodeOverhead(ctx *clusterContext, r *Rule) {
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		var cpu, mem resource.Quantity
		for _, w := range ctx.workloads {
			if w.kind != "DaemonSet" || !fits(&w.pod.Spec, p) {
				continue
			}
			c, m := w.podRequests()
			cpu.Add(c)
			mem.Add(m)
		}
		small, ok := smallest(p.InstanceTypes)
		if !ok {
			continue
		}
		cpuShare := float64(cpu.MilliValue()) / float64(small.VCPU*1000)
		memShare := float64(mem.Value()) / float64(small.MemoryMiB*1024*1024)
		if cpuShare > 0.3 || memShare > 0.3 {
			ctx.pool(r, p, "DaemonSets request %s CPU and %s memory, %.0f%% / %.0f%% of a %s; keep it under 30%%",
				cpu.String(), mem.String(), 100*cpuShare, 100*memShare, small.Name)
		}
	}
}

func smallest(types []string) (ec2catalog.InstanceType, bool) {
	var best ec2catalog.InstanceType
	found := false
	for _, name := range types {
		it, ok := ec2catalog.Lookup(name)
		if ok && (!found || it.VCPU < best.VCPU) {
			best, found = it, true
		}
	}
	return best, found
}

// L54: memory cannot be reclaimed; overcommitted nodes OOM-kill.
func checkMemoryLimits(ctx *clusterContext, r *Rule) {
	if !ctx.production() {
		return
	}
	for _, w := range ctx.workloads {
		for _, c := range allContainers(&w.pod.Spec) {
			req, hasReq := c.Resources.Requests[corev1.ResourceMemory]
			lim, hasLim := c.Resources.Limits[corev1.ResourceMemory]
			if !hasReq || !hasLim || req.Cmp(lim) != 0 {
				ctx.object(r, w.obj, "container %s: memory request %s and limit %s must be set and equal in production", c.Name, quantity(req, hasReq), quantity(lim, hasLim))
			}
		}
	}
}

// OwnershipLabels are the pod labels L55 requires in production.
var OwnershipLabels = []string{"application", "team"}

// L55: every production pod links to an application and a team.
func checkOwnershipLabels(ctx *clusterContext, r *Rule) {
	if !ctx.production() {
		return
	}
	for _, w := range ctx.workloads {
		var missing []string
		for _, l := range OwnershipLabels {
			if w.pod.Labels[l] == "" {
				missing = append(missing, l)
			}
		}
		if len(missing) > 0 {
			ctx.object(r, w.obj, "pod template lacks label(s) %s", strings.Join(missing, ", "))
		}
	}
}

// L58: missing requests and probes are the common pitfalls.
func checkRequestsAndProbes(ctx *clusterContext, r *Rule) {
	for _, w := range ctx.workloads {
		for _, c := range w.pod.Spec.Containers {
			var missing []string
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[res]; !ok {
					missing = append(missing, string(res)+" request")
				}
			}
			if w.longRunning && !w.pausePod() && c.ReadinessProbe == nil {
				missing = append(missing, "readinessProbe")
			}
			if len(missing) > 0 {
				ctx.object(r, w.obj, "container %s has no %s", c.Name, strings.Join(missing, ", "))
			}
		}
	}
}
