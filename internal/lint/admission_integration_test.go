//go:build integration

package lint_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	examplefleet "github.com/bosun-platform/bosun/examples/fleet"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lint"
	"github.com/bosun-platform/bosun/internal/render"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

// compliant passes every policy, in production too.
const compliant = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {application: app}}
  template:
    metadata:
      labels: {application: app, team: t}
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

func deployment(t *testing.T, name string, edits ...string) *appsv1.Deployment {
	t.Helper()
	s := compliant
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("edit %q: not in the compliant Deployment", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	d := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict([]byte(s), d); err != nil {
		t.Fatal(err)
	}
	d.Name = name
	return d
}

// applyAdmission renders the example fleet's admission component for the
// cluster and applies it (server-side) to the test API server.
func applyAdmission(t *testing.T, env *testenv.Env, cluster string) {
	t.Helper()
	f, err := fleet.LoadFS(examplefleet.FS, "examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(t.Context(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range res.Objects {
		if o.Component != "admission" {
			continue
		}
		resource := map[string]string{
			"ValidatingAdmissionPolicy":        "validatingadmissionpolicies",
			"ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
		}[o.Object.GetKind()]
		if resource == "" {
			t.Fatalf("%s: unexpected kind %s in the admission component", o.File, o.Object.GetKind())
		}
		gvr := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: resource}
		if _, err := env.Dynamic.Resource(gvr).Apply(t.Context(), o.Object.GetName(), o.Object, metav1.ApplyOptions{FieldManager: "bosun-test", Force: true}); err != nil {
			t.Fatalf("applying %s %s: %v", o.Object.GetKind(), o.Object.GetName(), err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("cluster %s renders no admission objects", cluster)
	}
}

// warnings collects the API server's warning headers.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// L37, L55, L58, L08, L54: the policies generated from the lint rules are
// enforced by a real API server: in Deny mode (the example's staging) a
// non-compliant Deployment is refused with a message naming the lesson, a
// compliant one is admitted, an exempt namespace (with a reason) admits
// anything, and an exemption without a reason is refused; in Warn/Audit
// mode (the example's production) the same Deployment is admitted with a
// warning naming the lesson.
func TestAdmissionPoliciesEnforced(t *testing.T) {
	env := testenv.Get(t)
	ctx := t.Context()
	ns := env.Namespace(t)
	applyAdmission(t, env, "local-staging")

	noProbe := func(name string) *appsv1.Deployment {
		return deployment(t, name, "          readinessProbe: {httpGet: {path: /, port: 80}}\n", "")
	}
	// The API server loads each policy asynchronously and independently:
	// wait until every policy the test relies on refuses its dry-run probe.
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	probes := []struct {
		policy string
		create func(ctx context.Context) error
	}{
		{"L58-requests-and-probes", func(ctx context.Context) error {
			_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, noProbe("probe"), dryRun)
			return err
		}},
		{"L37-pod-security", func(ctx context.Context) error {
			_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, deployment(t, "probe", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"), dryRun)
			return err
		}},
		{"L08-daemonset-guaranteed", func(ctx context.Context) error {
			d := deployment(t, "probe")
			_, err := env.Client.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
				Spec: appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}, dryRun)
			return err
		}},
		{"L37-exemption-reason", func(ctx context.Context) error {
			_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns + "-probe",
				Labels: map[string]string{lint.ExemptLabel: "true"}}}, dryRun)
			return err
		}},
	}
	for _, p := range probes {
		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
			err := p.create(ctx)
			return err != nil && strings.Contains(err.Error(), p.policy), nil
		}, "policy "+p.policy+" is in force")
	}

	t.Run("a non-compliant Deployment is refused, naming the lesson", func(t *testing.T) {
		_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, noProbe("no-probe"), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "L58-requests-and-probes") || !strings.Contains(err.Error(), "readinessProbe") {
			t.Fatalf("got %v; expected a refusal naming L58-requests-and-probes and the readinessProbe", err)
		}
		priv := deployment(t, "writable", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
		_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, priv, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "L37-pod-security") {
			t.Fatalf("got %v; expected a refusal naming L37-pod-security", err)
		}
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "burstable"}, Spec: appsv1.DaemonSetSpec{
			Selector: priv.Spec.Selector, Template: deployment(t, "x").Spec.Template}}
		_, err = env.Client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "L08-daemonset-guaranteed") {
			t.Fatalf("got %v; expected a refusal naming L08-daemonset-guaranteed", err)
		}
	})
	t.Run("a compliant Deployment passes", func(t *testing.T) {
		if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, deployment(t, "good"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Production-only rules are not bound in staging: an overcommitted
		// unlabelled Deployment passes there.
		d := deployment(t, "overcommit", "limits: {memory: 64Mi}", "limits: {memory: 128Mi}", "{application: app, team: t}", "{application: app}")
		if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("staging binds L54/L55: %v", err)
		}
	})
	t.Run("an exempt namespace is allowed, with a reason only", func(t *testing.T) {
		exempt := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns + "-exempt",
			Labels: map[string]string{lint.ExemptLabel: "true"}}}
		_, err := env.Client.CoreV1().Namespaces().Create(ctx, exempt, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "L37-exemption-reason") {
			t.Fatalf("got %v; expected an exemption without a reason refused, naming L37-exemption-reason", err)
		}
		exempt.Annotations = map[string]string{lint.ExemptReasonAnnotation: "vendor chart without probes, INC-42"}
		if _, err := env.Client.CoreV1().Namespaces().Create(ctx, exempt, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), exempt.Name, metav1.DeleteOptions{})
		})
		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := env.Client.AppsV1().Deployments(exempt.Name).Create(ctx, noProbe("no-probe"), metav1.CreateOptions{})
			return err == nil, nil
		}, "a Deployment without a probe admitted in the exempt namespace")
	})
	t.Run("warn mode only warns", func(t *testing.T) {
		applyAdmission(t, env, "local-prod")
		w := &warnings{}
		cfg := env.RESTConfig()
		cfg.WarningHandler = w
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d := deployment(t, "warned", "          readinessProbe: {httpGet: {path: /, port: 80}}\n", "", "limits: {memory: 64Mi}", "limits: {memory: 128Mi}")
		// Wait until the Warn bindings replaced the Deny ones and the
		// production-only L54 binding is loaded: a dry run of the same
		// Deployment is admitted with both warnings.
		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
			w.take()
			_, err := client.AppsV1().Deployments(ns).Create(ctx, d, dryRun)
			got := strings.Join(w.take(), "\n")
			return err == nil && strings.Contains(got, "L58-requests-and-probes") && strings.Contains(got, "L54-memory-limit"), nil
		}, "the policies switch to Warn")
		if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("warn mode refused: %v", err)
		}
		got := strings.Join(w.take(), "\n")
		for _, want := range []string{"L58-requests-and-probes", "L54-memory-limit"} {
			if !strings.Contains(got, want) {
				t.Errorf("warnings %q do not name %s", got, want)
			}
		}
		if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment(t, "quiet"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := w.take(); len(got) > 0 {
			t.Errorf("a compliant Deployment drew warnings %q", got)
		}
	})
}
