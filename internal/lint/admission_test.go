package lint

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// goodDeployment passes every rule that has a CEL form, in production.
const goodDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: good, namespace: shop}
spec:
  selector: {matchLabels: {application: good}}
  template:
    metadata:
      labels: {application: good, team: t}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: app:1
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}
          readinessProbe: {httpGet: {path: /, port: 80}}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`

// fixture is one object both forms judge.
type fixture struct {
	name string
	yaml string
}

// edited returns goodDeployment with each old→new pair replaced once; a
// pair that does not match is a broken fixture.
func edited(t *testing.T, pairs ...string) string {
	t.Helper()
	s := goodDeployment
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("fixture edit %q: not in the good Deployment", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

const (
	podSC       = "      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n"
	containerSC = "securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}"
	probe       = "          readinessProbe: {httpGet: {path: /, port: 80}}\n"
	resources   = "resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}"
	initC       = "      initContainers:\n        - name: init\n          image: init:1\n          %s\n          %s\n      containers:\n"
)

func workloadFixtures(t *testing.T) []fixture {
	asKind := func(s, apiVersion, kind string) string {
		s = strings.Replace(s, "apiVersion: apps/v1\nkind: Deployment", "apiVersion: "+apiVersion+"\nkind: "+kind, 1)
		return s
	}
	job := func(s string) string {
		s = asKind(s, "batch/v1", "Job")
		s = strings.Replace(s, "  selector: {matchLabels: {application: good}}\n", "", 1)
		return strings.Replace(s, "      automountServiceAccountToken", "      restartPolicy: Never\n      automountServiceAccountToken", 1)
	}
	cronJob := func(s string) string {
		j := job(s)
		head, tmpl, _ := strings.Cut(j, "spec:\n")
		head = strings.Replace(head, "kind: Job", "kind: CronJob", 1)
		return head + "spec:\n  schedule: '@hourly'\n  jobTemplate:\n    spec:\n" + indent(tmpl, "    ")
	}
	pod := func(s string) string {
		s = strings.Replace(s, "apiVersion: apps/v1\nkind: Deployment", "apiVersion: v1\nkind: Pod", 1)
		_, tmpl, _ := strings.Cut(s, "  template:\n")
		meta, spec, _ := strings.Cut(tmpl, "    spec:\n")
		meta = strings.Replace(meta, "    metadata:\n", "", 1)
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\n  namespace: shop\n" + unindent(meta, "    ") + "spec:\n" + unindent(spec, "    ")
	}
	guaranteed := "resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 100m, memory: 64Mi}}"
	return []fixture{
		{"good", goodDeployment},
		{"host network", edited(t, podSC, podSC+"      hostNetwork: true\n")},
		{"host PID", edited(t, podSC, podSC+"      hostPID: true\n")},
		{"hostIPC false", edited(t, podSC, podSC+"      hostIPC: false\n")},
		{"default token", edited(t, "      automountServiceAccountToken: false\n", "")},
		{"own service account", edited(t, "      automountServiceAccountToken: false\n", "      serviceAccountName: good\n")},
		{"named default service account", edited(t, "      automountServiceAccountToken: false\n", "      serviceAccountName: default\n")},
		{"token explicitly mounted", edited(t, "automountServiceAccountToken: false", "automountServiceAccountToken: true")},
		{"runAsNonRoot per container", edited(t, "{runAsNonRoot: true, seccompProfile", "{seccompProfile", "allowPrivilegeEscalation: false,", "allowPrivilegeEscalation: false, runAsNonRoot: true,")},
		{"no runAsNonRoot", edited(t, "{runAsNonRoot: true, seccompProfile", "{seccompProfile")},
		{"runAsNonRoot false", edited(t, "{runAsNonRoot: true,", "{runAsNonRoot: false,")},
		{"privileged", edited(t, "allowPrivilegeEscalation: false,", "allowPrivilegeEscalation: false, privileged: true,")},
		{"privileged false", edited(t, "allowPrivilegeEscalation: false,", "allowPrivilegeEscalation: false, privileged: false,")},
		{"privilege escalation", edited(t, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")},
		{"privilege escalation unset", edited(t, "allowPrivilegeEscalation: false, ", "")},
		{"no container securityContext", edited(t, containerSC, "imagePullPolicy: Always")},
		{"drops nothing", edited(t, "capabilities: {drop: [ALL]}", "capabilities: {}")},
		{"drops all in lower case", edited(t, "drop: [ALL]", "drop: [all]")},
		{"drops some", edited(t, "drop: [ALL]", "drop: [NET_RAW]")},
		{"adds NET_BIND_SERVICE", edited(t, "drop: [ALL]", "drop: [ALL], add: [NET_BIND_SERVICE]")},
		{"adds SYS_ADMIN", edited(t, "drop: [ALL]", "drop: [ALL], add: [NET_BIND_SERVICE, SYS_ADMIN]")},
		{"seccomp per container", edited(t, ", seccompProfile: {type: RuntimeDefault}}", "}", "readOnlyRootFilesystem: true,", "readOnlyRootFilesystem: true, seccompProfile: {type: Localhost, localhostProfile: p.json},")},
		{"no seccomp", edited(t, ", seccompProfile: {type: RuntimeDefault}}", "}")},
		{"unconfined seccomp", edited(t, "type: RuntimeDefault", "type: Unconfined")},
		{"writable root", edited(t, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")},
		{"init container unrestricted", edited(t, "      containers:\n", fmt.Sprintf(initC, resources, "imagePullPolicy: Always"))},
		{"init container restricted, no requests", edited(t, "      containers:\n", fmt.Sprintf(initC, "imagePullPolicy: Always", containerSC))},
		{"no team label", edited(t, "{application: good, team: t}", "{application: good}")},
		{"empty application label", edited(t, "{application: good, team: t}", "{application: '', team: t}")},
		{"no labels", edited(t, "      labels: {application: good, team: t}\n", "")},
		{"memory overcommit", edited(t, "limits: {memory: 64Mi}", "limits: {memory: 128Mi}")},
		{"memory equal in other units", edited(t, "{cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}", "{cpu: 100m, memory: 1Gi}, limits: {memory: 1024Mi}")},
		{"no memory limit", edited(t, ", limits: {memory: 64Mi}", "")},
		{"no cpu request", edited(t, "requests: {cpu: 100m, memory: 64Mi}", "requests: {memory: 64Mi}")},
		{"no requests", edited(t, "requests: {cpu: 100m, memory: 64Mi}, ", "")},
		{"no readiness probe", edited(t, probe, "")},
		{"overprovisioning pause pods need no probe", edited(t, probe, "", "{application: good, team: t}", "{application: good, team: t, bosun.dev/overprovisioning: 'true'}")},
		{"the overprovisioner's pause pods need no probe", edited(t, probe, "", "{application: good, team: t}", "{application: good, team: t, overprovisioning.bosun.dev/target: cluster}")},
		{"StatefulSet", asKind(goodDeployment, "apps/v1", "StatefulSet")},
		{"ReplicaSet without probe", asKind(edited(t, probe, ""), "apps/v1", "ReplicaSet")},
		{"Job", job(goodDeployment)},
		{"Job without probe", job(edited(t, probe, ""))},
		{"CronJob without probe", cronJob(edited(t, probe, ""))},
		{"CronJob with host network", cronJob(edited(t, podSC, podSC+"      hostNetwork: true\n"))},
		{"bare Pod", pod(goodDeployment)},
		{"bare Pod without probe or team", pod(edited(t, probe, "", "{application: good, team: t}", "{application: good}"))},
		{"DaemonSet, burstable", asKind(goodDeployment, "apps/v1", "DaemonSet")},
		{"DaemonSet, guaranteed", asKind(edited(t, resources, guaranteed), "apps/v1", "DaemonSet")},
		{"DaemonSet, cpu in other units", asKind(edited(t, resources, "resources: {requests: {cpu: '1', memory: 64Mi}, limits: {cpu: 1000m, memory: 64Mi}}"), "apps/v1", "DaemonSet")},
		{"DaemonSet, guaranteed, unrestricted init container", asKind(edited(t, resources, guaranteed, "      containers:\n", fmt.Sprintf(initC, guaranteed, "imagePullPolicy: Always")), "apps/v1", "DaemonSet")},
		{"DaemonSet, burstable init container", asKind(edited(t, resources, guaranteed, "      containers:\n", fmt.Sprintf(initC, resources, containerSC)), "apps/v1", "DaemonSet")},
	}
}

func namespaceFixtures() []fixture {
	ns := func(meta string) string { return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n" + meta }
	return []fixture{
		{"plain namespace", ns("")},
		{"exempt with a reason", ns("  labels: {admission.bosun.dev/exempt: 'true'}\n  annotations: {admission.bosun.dev/exempt-reason: vendor chart}\n")},
		{"exempt without a reason", ns("  labels: {admission.bosun.dev/exempt: 'true'}\n")},
		{"exempt with a blank reason", ns("  labels: {admission.bosun.dev/exempt: 'true'}\n  annotations: {admission.bosun.dev/exempt-reason: '  '}\n")},
		{"exempt with another annotation", ns("  labels: {admission.bosun.dev/exempt: 'true'}\n  annotations: {a: b}\n")},
		{"exempt label false", ns("  labels: {admission.bosun.dev/exempt: 'false'}\n")},
	}
}

func unindent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, prefix)
	}
	return strings.Join(lines, "")
}

// goVerdict runs the rule's Go form over the object in a cluster of env
// and returns its findings' messages.
func goVerdict(r *Rule, obj *unstructured.Unstructured, env string) []string {
	res := &render.Result{
		Cluster: &fleet.Cluster{ID: "c", Environment: env},
		Objects: []*render.Object{{Component: "test", File: "manifests/test/x.yaml", Line: 1, Object: obj}},
	}
	ctx := newClusterContext(&fleet.Fleet{}, res)
	r.cluster(ctx, r)
	var out []string
	for _, f := range ctx.findings {
		out = append(out, f.Message)
	}
	return out
}

// celEvaluator evaluates policies the way the API server's admission
// plugin does: with Kubernetes' CEL libraries at 1.33, `object` bound to
// the object and `variables` to the policy's variables.
type celEvaluator struct {
	env *cel.Env
}

func newCELEvaluator(t *testing.T) *celEvaluator {
	base := environment.MustBaseEnvSet(version.MajorMinor(1, 33), true)
	set, err := base.Extend(environment.VersionedOptions{
		IntroducedVersion: version.MajorMinor(1, 30),
		EnvOptions: []cel.EnvOption{
			cel.Variable("object", cel.DynType),
			cel.Variable("variables", cel.MapType(cel.StringType, cel.DynType)),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := set.Env(environment.NewExpressions)
	if err != nil {
		t.Fatal(err)
	}
	return &celEvaluator{env: env}
}

func (e *celEvaluator) eval(expr string, activation map[string]any) (any, error) {
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compile %q: %w", expr, iss.Err())
	}
	prg, err := e.env.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("program %q: %w", expr, err)
	}
	out, _, err := prg.Eval(activation)
	if err != nil {
		return nil, fmt.Errorf("eval %q: %w", expr, err)
	}
	return out, nil
}

// celVerdict evaluates the rule's policy over the object and returns the
// messages of the failed validations; it reports false when the policy is
// not bound in env or its match conditions skip the object.
func (e *celEvaluator) celVerdict(r *Rule, obj *unstructured.Unstructured, env string) ([]string, error) {
	if r.cel.production && env != "production" {
		return nil, nil
	}
	p := policy(r)
	vars := map[string]any{}
	act := map[string]any{"object": obj.Object, "variables": vars}
	for _, c := range p.Spec.MatchConditions {
		v, err := e.eval(c.Expression, act)
		if err != nil {
			return nil, err
		}
		if v != types.True {
			return nil, nil
		}
	}
	for _, v := range p.Spec.Variables {
		out, err := e.eval(v.Expression, act)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		vars[v.Name] = out
	}
	var failed []string
	for _, v := range p.Spec.Validations {
		out, err := e.eval(v.Expression, act)
		if err != nil {
			return nil, err
		}
		if out != types.True {
			failed = append(failed, v.Message)
		}
	}
	return failed, nil
}

// L37, L54, L55, L58, L08: the policies the API server enforces and the
// lint rules they come from give the same verdict on every fixture, in
// production and elsewhere; and the fixtures make every rule both pass
// and fail, so the comparison means something.
func TestAdmissionPoliciesAgreeWithLint(t *testing.T) {
	ev := newCELEvaluator(t)
	workloads, namespaces := workloadFixtures(t), namespaceFixtures()
	rules := Rules()
	withCEL := 0
	for i := range rules {
		r := &rules[i]
		if r.cel == nil {
			continue
		}
		withCEL++
		fixtures := workloads
		if r.cel.namespaces {
			fixtures = namespaces
		}
		passed, failed := 0, 0
		for _, fx := range fixtures {
			obj := &unstructured.Unstructured{}
			if err := yaml.UnmarshalStrict([]byte(fx.yaml), &obj.Object); err != nil {
				t.Fatalf("fixture %q: %v\n%s", fx.name, err, fx.yaml)
			}
			if !r.cel.namespaces {
				if _, ok := (&render.Object{Object: obj}).PodTemplate(); !ok {
					t.Fatalf("fixture %q: no pod template\n%s", fx.name, fx.yaml)
				}
			}
			for _, env := range []string{"production", "staging"} {
				goFindings := goVerdict(r, obj, env)
				celFailed, err := ev.celVerdict(r, obj, env)
				if err != nil {
					t.Errorf("%s, %s in %s: %v", r.Name, fx.name, env, err)
					continue
				}
				if (len(goFindings) == 0) != (len(celFailed) == 0) {
					t.Errorf("%s, %s in %s: lint says %q, the policy says %q\n%s", r.Name, fx.name, env, goFindings, celFailed, fx.yaml)
				}
				if len(goFindings) == 0 {
					passed++
				} else {
					failed++
				}
			}
		}
		if passed == 0 || failed == 0 {
			t.Errorf("%s: the fixtures pass it %d times and fail it %d times; expected both", r.Name, passed, failed)
		}
	}
	if withCEL < 6 {
		t.Errorf("%d rules have a CEL form; expected L08, L37 (2), L54, L55 and L58", withCEL)
	}
}

// Every policy message names its lesson, so a refusal points at the rule.
func TestAdmissionMessagesNameTheLesson(t *testing.T) {
	for _, p := range AdmissionPolicies() {
		lesson := p.Annotations["admission.bosun.dev/lesson"]
		if len(lesson) != 3 || lesson[0] != 'L' {
			t.Errorf("policy %s: lesson annotation %q", p.Name, lesson)
		}
		for _, v := range p.Spec.Validations {
			if !strings.HasPrefix(v.Message, lesson+"-") {
				t.Errorf("policy %s: message %q does not start with its rule (%s-...)", p.Name, v.Message, lesson)
			}
		}
	}
}

// The shipped fleet component is what the generator writes now
// (`bosun lint policies --out examples/fleet/manifests/admission/policies.yaml`
// refreshes it).
func TestAdmissionComponentUpToDate(t *testing.T) {
	var want bytes.Buffer
	if err := WriteAdmissionComponent(&want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "examples", "fleet", "manifests", "admission", "policies.yaml")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("%s is stale: run `go run ./cmd/bosun lint policies --out %s`", path, strings.TrimPrefix(path, "../../"))
	}
}
