package lint

import (
	"strings"

	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/render"
)

// Config items of a provider: aws cluster's agent (docs/aws.md).
const (
	// AWSAgentRoleConfigItem is the ARN of the agent's IAM role
	// (deploy/iam/agent.json).
	AWSAgentRoleConfigItem = "aws_agent_role_arn"
	// AWSAgentIdentityConfigItem says how the role reaches the agent's
	// pod: irsa (default: the service account annotation
	// IRSARoleAnnotation) or pod-identity (an EKS Pod Identity
	// association, made outside the fleet).
	AWSAgentIdentityConfigItem = "aws_agent_identity"
	// IRSARoleAnnotation binds a service account to an IAM role (IRSA).
	IRSARoleAnnotation = "eks.amazonaws.com/role-arn"
)

// capacityControllers act on the cloud through --provider.
var capacityControllers = []string{agentcmd.ControllerProvisioner, agentcmd.ControllerInterruption, agentcmd.ControllerScaleDown, agentcmd.ControllerReaper}

// L19 (and L10, L22) on AWS: a provider: aws cluster names its agent's IAM
// role, and an agent that runs the capacity controllers there runs them
// against AWS: --provider aws, the cluster's ID and region, the
// interruption queue, and (IRSA) a service account bound to the role.
func checkAWSAgent(ctx *clusterContext, r *Rule) {
	c := ctx.cluster
	if c.Provider != "aws" {
		return
	}
	role := c.ConfigItems[AWSAgentRoleConfigItem]
	identity := c.ConfigItems[AWSAgentIdentityConfigItem]
	if role == "" {
		ctx.clusterFinding(r, 0, "config item %s is empty; expected the ARN of the agent's IAM role (deploy/iam/agent.json), without which the agent cannot scale the cluster's Auto Scaling groups or read its interruption queue", AWSAgentRoleConfigItem)
	}
	if identity != "" && identity != "irsa" && identity != "pod-identity" {
		ctx.clusterFinding(r, 0, "config item %s is %q; expected irsa or pod-identity", AWSAgentIdentityConfigItem, identity)
	}
	for _, w := range ctx.workloads {
		for i := range w.pod.Spec.Containers {
			l, ok := agentcmd.ParseCommandLine(&w.pod.Spec.Containers[i], w.namespace())
			if !ok {
				continue
			}
			var runs []string
			for _, name := range capacityControllers {
				if l.Runs(name) {
					runs = append(runs, name)
				}
			}
			if len(runs) == 0 {
				continue
			}
			who := objectName(w.obj.Object) + ", container " + w.pod.Spec.Containers[i].Name + " (controllers " + strings.Join(runs, ", ") + ")"
			flag := func(name, want string) {
				got := l.Flag(name)
				switch {
				case len(got) == 0 || got[len(got)-1] == "":
					ctx.object(r, w.obj, "%s: --%s is missing; expected %s", who, name, want)
				case want != "" && got[len(got)-1] != want:
					ctx.object(r, w.obj, "%s: --%s=%s; expected %s on this provider: aws cluster", who, name, got[len(got)-1], want)
				}
			}
			if fight := slicesIntersect(runs, []string{agentcmd.ControllerProvisioner, agentcmd.ControllerScaleDown, agentcmd.ControllerReaper}); len(fight) > 0 {
				if ca := clusterAutoscaler(ctx.workloads); ca != nil {
					ctx.object(r, w.obj, "%s: %s scale the Auto Scaling groups, and so does cluster-autoscaler (%s): the two would fight over them; run one (example fleet: config item aws_capacity)", who, strings.Join(fight, ", "), objectName(ca.obj.Object))
				}
			}
			flag("provider", "aws")
			flag("cluster", c.ID)
			flag("region", c.Region)
			if l.Runs(agentcmd.ControllerInterruption) {
				if q := l.Flag("aws-queue-url"); len(q) == 0 || q[len(q)-1] == "" {
					ctx.object(r, w.obj, "%s: --aws-queue-url is missing; expected the cluster's interruption queue (bosun apply --infra makes bosun-%s)", who, c.ID)
				}
			}
			if role == "" || identity == "pod-identity" {
				continue
			}
			sa := w.pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			got, found := serviceAccountAnnotation(ctx.res.Objects, w.namespace(), sa, IRSARoleAnnotation)
			if got != role {
				what := "is not rendered"
				if found {
					what = "has " + IRSARoleAnnotation + "=" + quoteOrEmpty(got)
				}
				ctx.object(r, w.obj, "%s: service account %s/%s %s; expected annotation %s: %s (IRSA), or config item %s: pod-identity", who, w.namespace(), sa, what, IRSARoleAnnotation, role, AWSAgentIdentityConfigItem)
			}
		}
	}
}

// serviceAccountAnnotation returns an annotation of a rendered service
// account, and whether the service account is rendered.
func serviceAccountAnnotation(objects []*render.Object, ns, name, key string) (string, bool) {
	for _, o := range objects {
		if o.Object.GetKind() == "ServiceAccount" && o.Object.GetNamespace() == ns && o.Object.GetName() == name {
			return o.Object.GetAnnotations()[key], true
		}
	}
	return "", false
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// clusterAutoscaler returns a rendered workload that runs
// cluster-autoscaler, if any.
func clusterAutoscaler(workloads []*workload) *workload {
	for _, w := range workloads {
		for _, c := range w.pod.Spec.Containers {
			if isClusterAutoscaler(c) {
				return w
			}
		}
	}
	return nil
}

func slicesIntersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
			}
		}
	}
	return out
}
