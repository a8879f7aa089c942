package lint

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/agentapi"
)

// The lint rules that CEL can express also run in every cluster as built-in
// ValidatingAdmissionPolicies (L32 prefers built-ins to webhooks), so that
// what is deployed outside the fleet meets the same rules. Each such rule
// keeps its CEL form here, next to its Go form in rules_*.go; a unit test
// runs both over the same objects and fails when their verdicts differ.

// Exemption labels and annotations on namespaces.
const (
	// ExemptLabel on a Namespace set to "true" exempts its workloads from
	// the admission policies (not from lint).
	ExemptLabel = "admission.bosun.dev/exempt"
	// ExemptReasonAnnotation must say why; a Namespace with the exemption
	// label and no reason is refused (policy bosun-exemption-reason) and
	// reported by lint (L37-exemption-reason).
	ExemptReasonAnnotation = "admission.bosun.dev/exempt-reason"
	// PolicyPrefix starts the name of every generated policy and binding.
	PolicyPrefix = "bosun-"
	// RuleAnnotation on a generated policy names the lint rule it enforces.
	RuleAnnotation = "admission.bosun.dev/rule"
)

// SystemNamespaces are never matched by the workload policies: the
// provider's own components run there and are not the fleet's to change.
// Lint still checks what the fleet renders into them.
var SystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// celForm is a rule as a ValidatingAdmissionPolicy.
type celForm struct {
	// production: the policy is bound only in production clusters, like
	// the rule that returns early outside production.
	production bool
	// namespaces: the policy validates Namespaces; otherwise workloads
	// (the kinds with a pod template, and bare Pods).
	namespaces bool
	// checks all pass exactly when the Go form finds nothing.
	checks []celCheck
}

// celCheck is one validation; its message names the rule.
type celCheck struct {
	expression string
	message    string
}

// workloadVariables let the checks see every kind's pod template the same
// way render.Object.PodTemplate does.
var workloadVariables = []admissionv1.Variable{
	{Name: "pod", Expression: "object.kind == 'Pod' ? object : (object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template : object.spec.template)"},
	{Name: "spec", Expression: "variables.pod.spec"},
	{Name: "labels", Expression: "has(variables.pod.metadata) && has(variables.pod.metadata.labels) ? variables.pod.metadata.labels : {}"},
	{Name: "containers", Expression: "(has(variables.spec.initContainers) ? variables.spec.initContainers : []) + variables.spec.containers"},
	{Name: "longRunning", Expression: "!(object.kind in ['Job', 'CronJob'])"},
	{Name: "pausePod", Expression: "('" + OverprovisioningLabel + "' in variables.labels && variables.labels['" + OverprovisioningLabel + "'] == 'true') || ('" + agentapi.LabelManaged + "' in variables.labels && variables.labels['" + agentapi.LabelManaged + "'] != '')"},
	{Name: "podNonRoot", Expression: "has(variables.spec.securityContext) && has(variables.spec.securityContext.runAsNonRoot) && variables.spec.securityContext.runAsNonRoot"},
	{Name: "podSeccomp", Expression: "has(variables.spec.securityContext) && has(variables.spec.securityContext.seccompProfile) && variables.spec.securityContext.seccompProfile.type in ['RuntimeDefault', 'Localhost']"},
}

// notOwned skips objects a controller made (a Deployment's ReplicaSets, a
// Job's Pods): their owner was checked when it was admitted.
const notOwned = "!has(object.metadata.ownerReferences) || !object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller)"

// sc guards a container's securityContext field: has(c.securityContext.f).
func sc(field string) string {
	return "has(c.securityContext) && has(c.securityContext." + field + ")"
}

// L37 as CEL: one check per field so the message says which one.
var celPodSecurity = &celForm{checks: []celCheck{
	{"!(has(variables.spec.hostNetwork) && variables.spec.hostNetwork) && !(has(variables.spec.hostPID) && variables.spec.hostPID) && !(has(variables.spec.hostIPC) && variables.spec.hostIPC)",
		"uses host namespaces (hostNetwork, hostPID or hostIPC)"},
	{"(has(variables.spec.serviceAccountName) && !(variables.spec.serviceAccountName in ['', 'default'])) || (has(variables.spec.automountServiceAccountToken) && !variables.spec.automountServiceAccountToken)",
		"mounts the default service account's token (set automountServiceAccountToken: false or use a service account of its own)"},
	{"variables.podNonRoot || variables.containers.all(c, " + sc("runAsNonRoot") + " && c.securityContext.runAsNonRoot)",
		"a container's runAsNonRoot is not true (set it on the pod or every container)"},
	{"!variables.containers.exists(c, " + sc("privileged") + " && c.securityContext.privileged)",
		"a container is privileged"},
	{"variables.containers.all(c, " + sc("allowPrivilegeEscalation") + " && !c.securityContext.allowPrivilegeEscalation)",
		"a container's allowPrivilegeEscalation is not false"},
	{"variables.containers.all(c, " + sc("capabilities") + " && has(c.securityContext.capabilities.drop) && c.securityContext.capabilities.drop.exists(d, d.upperAscii() == 'ALL'))",
		"a container does not drop ALL capabilities"},
	{"variables.containers.all(c, !(" + sc("capabilities") + " && has(c.securityContext.capabilities.add)) || c.securityContext.capabilities.add.all(a, a == 'NET_BIND_SERVICE'))",
		"a container adds capabilities other than NET_BIND_SERVICE"},
	{"variables.podSeccomp || variables.containers.all(c, " + sc("seccompProfile") + " && c.securityContext.seccompProfile.type in ['RuntimeDefault', 'Localhost'])",
		"a container has no RuntimeDefault seccomp profile (set it on the pod or every container)"},
	{"variables.containers.all(c, " + sc("readOnlyRootFilesystem") + " && c.securityContext.readOnlyRootFilesystem)",
		"a container's root file system is writable (set readOnlyRootFilesystem: true)"},
}}

// L55 as CEL.
var celOwnershipLabels = &celForm{production: true, checks: []celCheck{
	{"['" + strings.Join(OwnershipLabels, "', '") + "'].all(l, l in variables.labels && variables.labels[l] != '')",
		"the pod template lacks label application or team"},
}}

// resourcesHave is true when c.resources.<kind> has the resource.
func resourcesHave(kind, res string) string {
	return "has(c.resources) && has(c.resources." + kind + ") && '" + res + "' in c.resources." + kind
}

// equalRequestLimit is true when c requests exactly its limit of res.
func equalRequestLimit(res string) string {
	return resourcesHave("requests", res) + " && " + resourcesHave("limits", res) +
		" && quantity(string(c.resources.requests['" + res + "'])).compareTo(quantity(string(c.resources.limits['" + res + "']))) == 0"
}

// L54 as CEL.
var celMemoryLimit = &celForm{production: true, checks: []celCheck{
	{"variables.containers.all(c, " + equalRequestLimit("memory") + ")",
		"a container's memory request and limit are not set and equal (no memory overcommit in production)"},
}}

// L58 as CEL: only the regular containers, as in the Go form.
var celRequestsAndProbes = &celForm{checks: []celCheck{
	{"variables.spec.containers.all(c, " + resourcesHave("requests", "cpu") + " && " + resourcesHave("requests", "memory") + ")",
		"a container has no cpu or memory request"},
	{"!variables.longRunning || variables.pausePod || variables.spec.containers.all(c, has(c.readinessProbe))",
		"a container of a long-running workload has no readinessProbe"},
}}

// L08 as CEL.
var celDaemonSetGuaranteed = &celForm{checks: []celCheck{
	{"object.kind != 'DaemonSet' || variables.containers.all(c, " + equalRequestLimit("cpu") + " && " + equalRequestLimit("memory") + ")",
		"a DaemonSet container's cpu and memory requests and limits are not set and equal (QoS Guaranteed)"},
}}

// L37-exemption-reason as CEL, over Namespaces.
var celExemptionReason = &celForm{namespaces: true, checks: []celCheck{
	{"!has(object.metadata.labels) || !('" + ExemptLabel + "' in object.metadata.labels) || object.metadata.labels['" + ExemptLabel + "'] != 'true' || " +
		"(has(object.metadata.annotations) && '" + ExemptReasonAnnotation + "' in object.metadata.annotations && object.metadata.annotations['" + ExemptReasonAnnotation + "'].trim() != '')",
		"label " + ExemptLabel + "=true exempts the namespace from the admission policies only with annotation " + ExemptReasonAnnotation + " saying why"},
}}

// L37 (exemptions): an exemption from admission needs a reason, like a
// lint suppression.
func checkExemptionReason(ctx *clusterContext, r *Rule) {
	for _, o := range ctx.res.Objects {
		if o.Object.GetKind() != "Namespace" || o.Object.GetLabels()[ExemptLabel] != "true" {
			continue
		}
		if strings.TrimSpace(o.Object.GetAnnotations()[ExemptReasonAnnotation]) == "" {
			ctx.object(r, o, "label %s=true without annotation %s: the API server refuses it; expected a reason", ExemptLabel, ExemptReasonAnnotation)
		}
	}
}

// PolicyName is the name of the policy (and its binding) for a rule.
func PolicyName(rule string) string {
	return PolicyPrefix + strings.ToLower(rule)
}

// AdmissionPolicies returns the ValidatingAdmissionPolicies of the rules
// that have a CEL form, in rule order.
func AdmissionPolicies() []admissionv1.ValidatingAdmissionPolicy {
	var out []admissionv1.ValidatingAdmissionPolicy
	for _, r := range Rules() {
		if r.cel != nil {
			out = append(out, policy(&r))
		}
	}
	return out
}

func policy(r *Rule) admissionv1.ValidatingAdmissionPolicy {
	fail := admissionv1.Fail
	spec := admissionv1.ValidatingAdmissionPolicySpec{FailurePolicy: &fail}
	ops := []admissionv1.OperationType{admissionv1.Create, admissionv1.Update}
	rule := func(group string, resources ...string) admissionv1.NamedRuleWithOperations {
		return admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{
			Operations: ops,
			Rule:       admissionv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources},
		}}
	}
	if r.cel.namespaces {
		spec.MatchConstraints = &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{rule("", "namespaces")}}
	} else {
		spec.MatchConstraints = &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{
			rule("", "pods", "replicationcontrollers"),
			rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
			rule("batch", "jobs", "cronjobs"),
		}}
		spec.MatchConditions = []admissionv1.MatchCondition{{Name: "not-owned-by-a-controller", Expression: notOwned}}
		spec.Variables = workloadVariables
	}
	for _, c := range r.cel.checks {
		spec.Validations = append(spec.Validations, admissionv1.Validation{
			Expression: c.expression,
			Message:    fmt.Sprintf("%s: %s (%s)", r.Name, c.message, r.Hint),
		})
	}
	return admissionv1.ValidatingAdmissionPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName(r.Name), Annotations: map[string]string{
			RuleAnnotation:               r.Name,
			"admission.bosun.dev/lesson": r.Lesson(),
		}},
		Spec: spec,
	}
}

// WriteAdmissionComponent writes the fleet component that ships the
// policies (examples/fleet/manifests/admission/policies.yaml): the
// policies as plain YAML and one binding each as a template, bound in
// production only for production rules, with the validation actions the
// vars give the cluster's environment (admission.validationActions.<env>;
// Warn and Audit when unset), except the exemption-reason policy, which always denies.
func WriteAdmissionComponent(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("# Generated by `bosun lint policies` from the lint rules (internal/lint/admission.go);\n")
	b.WriteString("# do not edit. TestAdmissionComponentUpToDate fails when it is stale.\n")
	for _, r := range Rules() {
		if r.cel == nil {
			continue
		}
		p := policy(&r)
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&p)
		if err != nil {
			return fmt.Errorf("policy for %s: %w", r.Name, err)
		}
		unstructured.RemoveNestedField(obj, "metadata", "creationTimestamp")
		delete(obj, "status")
		doc, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("policy for %s: %w", r.Name, err)
		}
		b.WriteString("---\n")
		b.Write(doc)
		binding(&b, &r)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func binding(b *bytes.Buffer, r *Rule) {
	name := PolicyName(r.Name)
	if r.cel.production {
		b.WriteString("{{- if eq .Cluster.Environment \"production\" }}\n")
	}
	fmt.Fprintf(b, "---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: %s\n  annotations:\n    %s: %s\nspec:\n  policyName: %s\n", name, RuleAnnotation, r.Name, name)
	if r.cel.namespaces {
		b.WriteString("  validationActions: [Deny]\n")
	} else {
		b.WriteString("  validationActions: {{ dig \"admission\" \"validationActions\" .Cluster.Environment (list \"Warn\" \"Audit\") .Vars | toJson }}\n")
		fmt.Fprintf(b, "  matchResources:\n    namespaceSelector:\n      matchExpressions:\n        - {key: %s, operator: NotIn, values: [\"true\"]}\n        - {key: kubernetes.io/metadata.name, operator: NotIn, values: [%s]}\n",
			ExemptLabel, strings.Join(SystemNamespaces, ", "))
	}
	if r.cel.production {
		b.WriteString("{{- end }}\n")
	}
}
