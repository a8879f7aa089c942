//go:build integration

package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agent/janitor"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func createDeployment(t *testing.T, env *testenv.Env, ns, name string, replicas int32, annos map[string]string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annos},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}},
			},
		},
	}
	d, err := env.Client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// `--once --dry-run --at` previews a schedule without changing anything.
func TestPreviewAt(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	before := createDeployment(t, env, ns, "web", 3, nil)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "tmp", Namespace: ns, Annotations: map[string]string{janitor.AnnotationTTL: "2d"}}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	preview := func(at time.Time) string {
		var out bytes.Buffer
		err := Run(context.Background(), Options{
			RESTConfig: env.RESTConfig(), Controllers: []string{agentcmd.ControllerDownscaler, agentcmd.ControllerJanitor}, Namespace: ns,
			Once: true, DryRun: true, At: at, Logger: quiet, Out: &out,
			Downscaler: downscaler.Defaults{Uptime: "Mon-Fri 08:00-18:00 UTC"},
			Janitor:    janitor.Options{Resources: []string{"configmaps"}, NotifyBefore: time.Hour},
		})
		if err != nil {
			t.Fatalf("preview at %s: %v", at, err)
		}
		return out.String()
	}
	// A Saturday far enough ahead that the grace period is over and the
	// config map's 2d TTL has passed.
	sat := time.Now().AddDate(0, 0, 7)
	for sat.Weekday() != time.Saturday {
		sat = sat.AddDate(0, 0, 1)
	}
	out := preview(sat)
	for _, want := range []string{"would: ScaledDown Deployment " + ns + "/web 3 -> 0", "would: delete configmaps " + ns + "/tmp"} {
		if !strings.Contains(out, want) {
			t.Errorf("preview at %s lacks %q:\n%s", sat, want, out)
		}
	}
	monday := time.Date(sat.Year(), sat.Month(), sat.Day()+2, 10, 0, 0, 0, time.UTC)
	if out := preview(monday); !strings.Contains(out, "downscaler: 0 action(s)") {
		t.Errorf("preview on Monday 10:00 acts:\n%s", out)
	}
	after, err := env.Client.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	// Generation, not resourceVersion: the controller manager updates the
	// status.
	if err != nil || after.Generation != before.Generation || *after.Spec.Replicas != *before.Spec.Replicas {
		t.Errorf("preview changed the deployment (%v)", err)
	}
}

func TestAtNeedsOnceAndDryRun(t *testing.T) {
	o := Options{Controllers: []string{agentcmd.ControllerDownscaler}, Once: true, At: time.Now(), Interval: time.Second}
	if err := o.Validate(); err == nil {
		t.Error("--at without --dry-run accepted")
	}
}

// applyShippedRBAC creates the agent's namespace, service account and RBAC
// from deploy/agent exactly as shipped.
func applyShippedRBAC(t *testing.T, env *testenv.Env) {
	t.Helper()
	docs, err := deploy.AgentManifests()
	if err != nil {
		t.Fatal(err)
	}
	gvrs := map[string]schema.GroupVersionResource{
		"Namespace":          {Version: "v1", Resource: "namespaces"},
		"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
		"Role":               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
		"RoleBinding":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
		"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	}
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(d.YAML, &u.Object); err != nil {
			t.Fatalf("%s: %v", d.Source, err)
		}
		gvr, ok := gvrs[u.GetKind()]
		if !ok {
			continue // the Deployment: no image runs here
		}
		_, err := env.Dynamic.Resource(gvr).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s: %v", d.Source, err)
		}
	}
}

// The shipped RBAC is enough: the agent, impersonating its service
// account, elects a leader, scales down, deletes an expired object and
// records events.
func TestRunsUnderShippedRBAC(t *testing.T) {
	env := testenv.Get(t)
	applyShippedRBAC(t, env)
	ns := env.Namespace(t)
	createDeployment(t, env, ns, "web", 3, nil)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "expired", Namespace: ns, Annotations: map[string]string{janitor.AnnotationExpires: "2020-01-01"}}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:bosun-system:bosun-agent"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			RESTConfig: cfg, Controllers: []string{agentcmd.ControllerDownscaler, agentcmd.ControllerJanitor},
			Interval: 200 * time.Millisecond, LeaderElect: true, LeaseNamespace: "bosun-system", LeaseName: "bosun-agent-test",
			Logger:     quiet,
			Downscaler: downscaler.Defaults{Downtime: "always"},
			Janitor:    janitor.Options{ExcludeNamespaces: []string{"kube-system", "bosun-system", "default"}},
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	testenv.Eventually(t, 60*time.Second, func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			done <- err
			return false, err
		default:
		}
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, err = env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "expired", metav1.GetOptions{})
		return *d.Spec.Replicas == 0 && apierrors.IsNotFound(err), nil
	}, "the agent under its own RBAC to scale down web and delete the expired config map")
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		reasons := map[string]bool{}
		for _, e := range evs.Items {
			reasons[e.Reason] = true
		}
		return reasons["ScaledDown"] && reasons["Deleted"], nil
	}, "ScaledDown and Deleted events")
	lease, err := env.Client.CoordinationV1().Leases("bosun-system").Get(context.Background(), "bosun-agent-test", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("no leader recorded in the lease: %v", err)
	}
}

// Without its RBAC the agent says so and exits, instead of waiting forever.
func TestMissingRBACFailsClearly(t *testing.T) {
	env := testenv.Get(t)
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:bosun-system:nobody"}
	err := Run(context.Background(), Options{
		RESTConfig: cfg, Controllers: []string{agentcmd.ControllerDownscaler}, Once: true, DryRun: true,
		Logger: quiet, SyncTimeout: 3 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "RBAC") {
		t.Errorf("error %v, want one pointing at RBAC", err)
	}
}

// An annotation change triggers a pass at once, not at the next interval.
func TestAnnotationChangeTriggersPass(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	createDeployment(t, env, ns, "web", 2, nil)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			RESTConfig: env.RESTConfig(), Controllers: []string{agentcmd.ControllerDownscaler}, Namespace: ns,
			Interval: time.Hour, Logger: quiet, Downscaler: downscaler.Defaults{Uptime: "always"}, Registry: reg,
		})
	}()
	// Wait for the first (timed) pass; from then on only a kick can act.
	testenv.Eventually(t, 60*time.Second, func(context.Context) (bool, error) {
		families, err := reg.Gather()
		if err != nil {
			return false, err
		}
		for _, f := range families {
			if f.GetName() == "bosun_downscaler_pass_duration_seconds" {
				return f.GetMetric()[0].GetHistogram().GetSampleCount() >= 1, nil
			}
		}
		return false, nil
	}, "the agent's first pass")
	// The pass metrics the alert rules read: a pass, no failure, a recent
	// last success (BosunAgentNotReconciling, BosunAgentReconcileFailures).
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		families, err := reg.Gather()
		if err != nil {
			return false, err
		}
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				got[f.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		ok := got["bosun_agent_passes_total"] >= 1 && got["bosun_agent_pass_failures_total"] == 0 &&
			time.Since(time.Unix(int64(got["bosun_agent_last_success_timestamp_seconds"]), 0)) < time.Minute
		return ok, nil
	}, "bosun_agent_passes_total >= 1, no failure and a last success within a minute")
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	// Annotate (and nudge again every few seconds) until the agent, whose
	// next timed pass is an hour away, reacts. The nudges leave quiet
	// windows: the downscaler's patch is guarded by the resourceVersion it
	// read, so an object written every 100 ms would refuse every patch.
	var lastNudge time.Time
	testenv.Eventually(t, 60*time.Second, func(ctx context.Context) (bool, error) {
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if *d.Spec.Replicas == 0 {
			return true, nil
		}
		if time.Since(lastNudge) < 3*time.Second {
			return false, nil
		}
		lastNudge = time.Now()
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[downscaler.AnnotationForceDowntime] = "true"
		d.Annotations["test/nudge"] = time.Now().Format(time.RFC3339Nano)
		_, err = env.Client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return false, err
	}, "force-downtime to scale web down without waiting for the interval")
}
