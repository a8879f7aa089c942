package lint

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// OverprovisioningLabel marks the pause pods that reserve headroom (L12).
const OverprovisioningLabel = "bosun.dev/overprovisioning"

// clusterContext is what cluster rules see: the cluster, its rendered
// objects and the pod templates found in them.
type clusterContext struct {
	fleet     *fleet.Fleet
	res       *render.Result
	cluster   *fleet.Cluster
	workloads []*workload
	// priorityClasses maps rendered PriorityClass names to their values.
	priorityClasses map[string]int64
	// overprovisioners are the rendered containers that run the agent's
	// overprovisioner controller (L12), with the ConfigMap it reads.
	overprovisioners []*overprovisionerAgent
	findings         []Finding
}

// workload is an object with a pod template.
type workload struct {
	obj  *render.Object
	kind string
	pod  corev1.PodTemplateSpec
	// longRunning is false for Jobs and CronJobs.
	longRunning bool
	// pools are the node pools the pod fits (nodeSelector and taints).
	pools []*fleet.NodePool
}

func (w *workload) overprovisioning() bool {
	return w.pod.Labels[OverprovisioningLabel] == "true"
}

// pausePod is true for pause pods that only hold room: static
// overprovisioning and the agent's overprovisioner's (L12). They need no
// readiness probe (L58).
func (w *workload) pausePod() bool {
	return w.overprovisioning() || w.pod.Labels[agentapi.LabelManaged] != ""
}

func (w *workload) namespace() string {
	if ns := w.obj.Object.GetNamespace(); ns != "" {
		return ns
	}
	return "default"
}

// podRequests sums the requests of the pod's containers.
func (w *workload) podRequests() (cpu, mem resource.Quantity) {
	for _, c := range w.pod.Spec.Containers {
		if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
			cpu.Add(q)
		}
		if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			mem.Add(q)
		}
	}
	return cpu, mem
}

func newClusterContext(f *fleet.Fleet, res *render.Result) *clusterContext {
	ctx := &clusterContext{fleet: f, res: res, cluster: res.Cluster, priorityClasses: map[string]int64{}}
	for _, o := range res.Objects {
		if o.Object.GetKind() == "PriorityClass" {
			v, _, _ := unstructured.NestedInt64(o.Object.Object, "value")
			ctx.priorityClasses[o.Object.GetName()] = v
		}
		if w := toWorkload(o); w != nil {
			w.pools = ctx.poolsFor(&w.pod.Spec)
			ctx.workloads = append(ctx.workloads, w)
		}
	}
	ctx.overprovisioners = findOverprovisioners(ctx.workloads, res.Objects)
	return ctx
}

func toWorkload(o *render.Object) *workload {
	pod, ok := o.PodTemplate()
	if !ok {
		return nil
	}
	kind := o.Object.GetKind()
	return &workload{obj: o, kind: kind, pod: *pod, longRunning: kind != "Job" && kind != "CronJob"}
}

// poolsFor returns the pools a pod fits by its nodeSelector and
// tolerations.
func (ctx *clusterContext) poolsFor(spec *corev1.PodSpec) []*fleet.NodePool {
	var out []*fleet.NodePool
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		if fits(spec, p) {
			out = append(out, p)
		}
	}
	return out
}

func fits(spec *corev1.PodSpec, p *fleet.NodePool) bool {
	labels := p.NodeLabels()
	for k, v := range spec.NodeSelector {
		if labels[k] != v {
			return false
		}
	}
	for _, t := range p.Taints {
		if t.Effect == "PreferNoSchedule" {
			continue
		}
		if !tolerates(spec.Tolerations, t) {
			return false
		}
	}
	return true
}

func tolerates(tols []corev1.Toleration, t fleet.Taint) bool {
	taint := &corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)}
	for i := range tols {
		if tols[i].ToleratesTaint(taint) {
			return true
		}
	}
	return false
}

func objectName(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s/%s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s/%s", u.GetKind(), u.GetName())
}

func (ctx *clusterContext) add(r *Rule, f Finding) {
	f.Rule, f.Lesson, f.Cluster = r.Name, r.Lesson(), ctx.cluster.ID
	if f.Severity == "" {
		f.Severity = r.Severity
	}
	if f.Hint == "" {
		f.Hint = r.Hint
	}
	ctx.findings = append(ctx.findings, f)
}

// object reports a finding about a rendered object.
func (ctx *clusterContext) object(r *Rule, o *render.Object, format string, args ...any) {
	ctx.add(r, Finding{File: o.File, Line: o.Line, Rendered: true, Object: objectName(o.Object), Message: fmt.Sprintf(format, args...), obj: o})
}

// objectSeverity reports a finding about an object with another severity.
func (ctx *clusterContext) objectSeverity(r *Rule, sev Severity, o *render.Object, format string, args ...any) {
	ctx.add(r, Finding{Severity: sev, File: o.File, Line: o.Line, Rendered: true, Object: objectName(o.Object), Message: fmt.Sprintf(format, args...), obj: o})
}

// pool reports a finding about a node pool.
func (ctx *clusterContext) pool(r *Rule, p *fleet.NodePool, format string, args ...any) {
	ctx.add(r, Finding{File: ctx.cluster.File, Line: p.Line, Message: fmt.Sprintf("node pool %q: ", p.Name) + fmt.Sprintf(format, args...)})
}

// poolWith reports a finding about a node pool with its own severity and
// hint.
func (ctx *clusterContext) poolWith(r *Rule, p *fleet.NodePool, sev Severity, hint, format string, args ...any) {
	ctx.add(r, Finding{Severity: sev, Hint: hint, File: ctx.cluster.File, Line: p.Line, Message: fmt.Sprintf("node pool %q: ", p.Name) + fmt.Sprintf(format, args...)})
}

// clusterFinding reports a finding about the cluster file.
func (ctx *clusterContext) clusterFinding(r *Rule, line int, format string, args ...any) {
	if line == 0 {
		line = ctx.cluster.Line
	}
	ctx.add(r, Finding{File: ctx.cluster.File, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (ctx *clusterContext) production() bool {
	return strings.EqualFold(ctx.cluster.Environment, "production")
}

// fleetContext is what fleet-wide rules see.
type fleetContext struct {
	fleet *fleet.Fleet
	// merged holds each rendered cluster, with merged config items, by ID.
	merged   map[string]*fleet.Cluster
	findings []Finding
}

// items returns the merged config items of c when it was rendered, else
// its own.
func (ctx *fleetContext) items(c *fleet.Cluster) map[string]string {
	if m, ok := ctx.merged[c.ID]; ok {
		return m.ConfigItems
	}
	return c.ConfigItems
}

func (ctx *fleetContext) cluster(r *Rule, c *fleet.Cluster, line int, format string, args ...any) {
	if line == 0 {
		line = c.Line
	}
	ctx.findings = append(ctx.findings, Finding{Rule: r.Name, Lesson: r.Lesson(), Severity: r.Severity, Cluster: c.ID,
		File: c.File, Line: line, Message: fmt.Sprintf(format, args...), Hint: r.Hint})
}

// allContainers returns init and regular containers.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
}
