//go:build integration

package downscaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

// rig runs the controller against the real API server, scoped to one
// namespace, with a fake clock.
type rig struct {
	t        *testing.T
	env      *testenv.Env
	ns       string
	clock    *clocktesting.FakeClock
	ctrl     *Controller
	factory  informers.SharedInformerFactory
	client   kubernetes.Interface
	recorder *record.FakeRecorder
	cancel   context.CancelFunc
	registry *prometheus.Registry
}

type rigOptions struct {
	defaults Defaults
	dryRun   bool
	// wrap, when set, wraps the controller's HTTP transport.
	wrap func(http.RoundTripper) http.RoundTripper
	ns   string
	now  time.Time
	// crds: discover and watch the optional kinds (Deps.Dynamic).
	crds bool
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	env := testenv.Get(t)
	ns := o.ns
	if ns == "" {
		ns = env.Namespace(t)
	}
	now := o.now
	if now.IsZero() {
		now = time.Now()
	}
	cfg := env.RESTConfig()
	if o.wrap != nil {
		cfg.Wrap(o.wrap)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	rec := record.NewFakeRecorder(1000)
	clk := clocktesting.NewFakeClock(now)
	reg := prometheus.NewRegistry()
	deps := controller.Deps{Clock: clk, Client: client, Factory: factory, Recorder: rec, Registry: reg, DryRun: o.dryRun, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Namespace: ns}
	if o.crds {
		deps.Dynamic = env.Dynamic
	}
	ctrl, err := New(deps, Options{Defaults: o.defaults})
	if err != nil {
		t.Fatal(err)
	}
	if !ctrl.Start(ctx, ctx) {
		t.Fatal("the optional kinds' caches did not sync")
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("cache for %v did not sync", typ)
		}
	}
	return &rig{t: t, env: env, ns: ns, clock: clk, ctrl: ctrl, factory: factory, client: client, recorder: rec, cancel: cancel, registry: reg}
}

// settle waits until the caches hold exactly what the API server holds in
// the namespace, so that a pass sees the test's latest writes.
func (r *rig) settle() {
	r.t.Helper()
	ctx := context.Background()
	testenv.Eventually(r.t, 30*time.Second, func(ctx2 context.Context) (bool, error) {
		want := map[string]string{}
		deps, err := r.env.Client.AppsV1().Deployments(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, d := range deps.Items {
			want["d/"+d.Name] = d.ResourceVersion
		}
		sts, err := r.env.Client.AppsV1().StatefulSets(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range sts.Items {
			want["s/"+s.Name] = s.ResourceVersion
		}
		cjs, err := r.env.Client.BatchV1().CronJobs(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range cjs.Items {
			want["c/"+c.Name] = c.ResourceVersion
		}
		jobs, err := r.env.Client.BatchV1().Jobs(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, j := range jobs.Items {
			want["j/"+j.Name] = j.ResourceVersion
		}
		hpas, err := r.env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, h := range hpas.Items {
			want["h/"+h.Name] = h.ResourceVersion
		}
		nsObj, err := r.env.Client.CoreV1().Namespaces().Get(ctx, r.ns, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got := map[string]string{}
		cd, _ := r.factory.Apps().V1().Deployments().Lister().Deployments(r.ns).List(everything)
		for _, d := range cd {
			got["d/"+d.Name] = d.ResourceVersion
		}
		cs, _ := r.factory.Apps().V1().StatefulSets().Lister().StatefulSets(r.ns).List(everything)
		for _, s := range cs {
			got["s/"+s.Name] = s.ResourceVersion
		}
		cc, _ := r.factory.Batch().V1().CronJobs().Lister().CronJobs(r.ns).List(everything)
		for _, c := range cc {
			got["c/"+c.Name] = c.ResourceVersion
		}
		cj, _ := r.factory.Batch().V1().Jobs().Lister().Jobs(r.ns).List(everything)
		for _, j := range cj {
			got["j/"+j.Name] = j.ResourceVersion
		}
		ch, _ := r.factory.Autoscaling().V2().HorizontalPodAutoscalers().Lister().HorizontalPodAutoscalers(r.ns).List(everything)
		for _, h := range ch {
			got["h/"+h.Name] = h.ResourceVersion
		}
		cachedNS, err := r.ctrl.namespaces.Get(r.ns)
		if err != nil || cachedNS.ResourceVersion != nsObj.ResourceVersion {
			return false, nil
		}
		if len(got) != len(want) {
			return false, nil
		}
		for k, v := range want {
			if got[k] != v {
				return false, nil
			}
		}
		return true, nil
	}, "informer caches to catch up in %s", r.ns)
}

// pass settles the caches and runs one pass.
func (r *rig) pass() []Action {
	r.t.Helper()
	r.settle()
	actions, err := r.ctrl.Reconcile(context.Background())
	if err != nil {
		r.t.Fatalf("pass: %v", err)
	}
	return actions
}

func (r *rig) deployment(name string, replicas int32, annos map[string]string) *appsv1.Deployment {
	r.t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.ns, Annotations: annos},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	d, err := r.env.Client.AppsV1().Deployments(r.ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		r.t.Fatalf("creating deployment: %v", err)
	}
	return d
}

func podTemplate(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
			}}}}},
	}
}

// metric returns a gauge's value from the rig's registry (labels as
// name=value pairs); -1 if absent.
func (r *rig) metric(name string, labels ...string) float64 {
	r.t.Helper()
	families, err := r.registry.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func (r *rig) getDeployment(name string) *appsv1.Deployment {
	r.t.Helper()
	d, err := r.env.Client.AppsV1().Deployments(r.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// expectDeployment checks replicas and the original-replicas annotation
// ("" = absent).
func (r *rig) expectDeployment(name string, replicas int32, original string) {
	r.t.Helper()
	d := r.getDeployment(name)
	if got := *d.Spec.Replicas; got != replicas {
		r.t.Errorf("deployment %s: replicas %d, want %d", name, got, replicas)
	}
	if got := d.Annotations[AnnotationOriginalReplicas]; got != original {
		r.t.Errorf("deployment %s: %s %q, want %q", name, AnnotationOriginalReplicas, got, original)
	}
}

func (r *rig) annotateNamespace(annos map[string]string) {
	r.t.Helper()
	ns, err := r.env.Client.CoreV1().Namespaces().Get(context.Background(), r.ns, metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	for k, v := range annos {
		ns.Annotations[k] = v
	}
	if _, err := r.env.Client.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) scaleByHand(name string, replicas int32) {
	r.t.Helper()
	body := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := r.env.Client.AppsV1().Deployments(r.ns).Patch(context.Background(), name, types.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

// events drains the fake recorder.
func (r *rig) events() []string {
	var out []string
	for {
		select {
		case e := <-r.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(events []string, prefix string) bool {
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// window returns an absolute schedule from now-1h to now+1h: the fake clock
// starts inside it and leaves it after clock.Step(2h).
func window(now time.Time) string {
	return now.Add(-time.Hour).UTC().Format(time.RFC3339) + "-" + now.Add(time.Hour).UTC().Format(time.RFC3339)
}

var old = map[string]string{AnnotationGracePeriod: "0s"}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// L24: every kind goes down in downtime and comes back exactly.
func TestDownscaleAndRestoreEachKind(t *testing.T) {
	now := time.Now()
	r := newRig(t, rigOptions{now: now, defaults: Defaults{Downtime: window(now), GracePeriod: 0}})
	r.deployment("web", 3, nil)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: r.ns},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Template: podTemplate("db")},
	}
	if _, err := r.env.Client.AppsV1().StatefulSets(r.ns).Create(context.Background(), sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: r.ns},
		Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "registry.example/job:1"}}},
		}}}},
	}
	if _, err := r.env.Client.BatchV1().CronJobs(r.ns).Create(context.Background(), cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: r.ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "registry.example/job:1"}}},
		}},
	}
	if _, err := r.env.Client.BatchV1().Jobs(r.ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	jobSuspended := func() bool {
		j, err := r.env.Client.BatchV1().Jobs(r.ns).Get(context.Background(), "migrate", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return j.Spec.Suspend != nil && *j.Spec.Suspend
	}

	if got := len(r.pass()); got != 4 {
		t.Fatalf("downtime pass: %d actions, want 4", got)
	}
	if !jobSuspended() {
		t.Errorf("job not suspended")
	}
	r.expectDeployment("web", 0, "3")
	gotSts, _ := r.env.Client.AppsV1().StatefulSets(r.ns).Get(context.Background(), "db", metav1.GetOptions{})
	if *gotSts.Spec.Replicas != 0 || gotSts.Annotations[AnnotationOriginalReplicas] != "2" {
		t.Errorf("statefulset: replicas %d original %q, want 0 and 2", *gotSts.Spec.Replicas, gotSts.Annotations[AnnotationOriginalReplicas])
	}
	gotCj, _ := r.env.Client.BatchV1().CronJobs(r.ns).Get(context.Background(), "report", metav1.GetOptions{})
	if gotCj.Spec.Suspend == nil || !*gotCj.Spec.Suspend {
		t.Errorf("cronjob not suspended")
	}
	if !hasEvent(r.events(), "Normal ScaledDown") {
		t.Errorf("no ScaledDown event")
	}
	if got := r.pass(); len(got) != 0 {
		t.Errorf("second downtime pass changed things: %v", got)
	}
	// The gauges describe what the pass found: web (3) and db (2) held down.
	if got := r.metric("bosun_downscaler_replicas_saved", "kind", "Deployment"); got != 3 {
		t.Errorf("replicas saved (Deployment) = %v, want 3", got)
	}
	if got := r.metric("bosun_downscaler_scaled_down_objects", "kind", "CronJob"); got != 1 {
		t.Errorf("scaled-down CronJobs = %v, want 1", got)
	}
	if got := r.metric("bosun_downscaler_cpu_requests_saved_cores"); got < 0.499 || got > 0.501 {
		t.Errorf("CPU saved = %v cores, want 0.5 (5 replicas x 100m)", got)
	}
	if got := r.metric("bosun_downscaler_memory_requests_saved_bytes"); got != 5*128*1024*1024 {
		t.Errorf("memory saved = %v bytes, want 5 x 128Mi", got)
	}

	r.clock.Step(2 * time.Hour)
	if got := len(r.pass()); got != 4 {
		t.Fatalf("uptime pass: %d actions, want 4", got)
	}
	if jobSuspended() {
		t.Errorf("job still suspended")
	}
	r.expectDeployment("web", 3, "")
	gotSts, _ = r.env.Client.AppsV1().StatefulSets(r.ns).Get(context.Background(), "db", metav1.GetOptions{})
	if *gotSts.Spec.Replicas != 2 || gotSts.Annotations[AnnotationOriginalReplicas] != "" {
		t.Errorf("statefulset after restore: replicas %d original %q", *gotSts.Spec.Replicas, gotSts.Annotations[AnnotationOriginalReplicas])
	}
	gotCj, _ = r.env.Client.BatchV1().CronJobs(r.ns).Get(context.Background(), "report", metav1.GetOptions{})
	if gotCj.Spec.Suspend != nil && *gotCj.Spec.Suspend {
		t.Errorf("cronjob still suspended")
	}
	if got := r.pass(); len(got) != 0 {
		t.Errorf("second uptime pass changed things: %v", got)
	}
}

func TestExclude(t *testing.T) {
	now := time.Now()
	r := newRig(t, rigOptions{now: now, defaults: Defaults{Downtime: "always"}})
	r.deployment("excluded", 2, with(old, AnnotationExclude, "true"))
	r.deployment("until-future", 2, with(old, AnnotationExcludeUntil, now.Add(time.Hour).UTC().Format(time.RFC3339)))
	r.deployment("until-past", 2, with(old, AnnotationExcludeUntil, now.Add(-time.Hour).UTC().Format(time.RFC3339)))
	// Excluded after it was scaled down: it must come back.
	r.deployment("excluded-but-down", 0, with(old, AnnotationExclude, "true", AnnotationOriginalReplicas, "4"))
	r.pass()
	r.expectDeployment("excluded", 2, "")
	r.expectDeployment("until-future", 2, "")
	r.expectDeployment("until-past", 0, "2")
	r.expectDeployment("excluded-but-down", 4, "")
	r.clock.Step(2 * time.Hour)
	r.pass()
	r.expectDeployment("until-future", 0, "2")
}

func TestGracePeriod(t *testing.T) {
	now := time.Now()
	r := newRig(t, rigOptions{now: now, defaults: Defaults{Downtime: "always", GracePeriod: 15 * time.Minute}})
	r.deployment("new", 2, nil)
	r.deployment("short-grace", 2, map[string]string{AnnotationGracePeriod: "0s"})
	r.pass()
	r.expectDeployment("new", 2, "")
	r.expectDeployment("short-grace", 0, "2")
	r.clock.Step(16 * time.Minute)
	r.pass()
	r.expectDeployment("new", 0, "2")
}

func TestNamespaceAnnotationsAndPrecedence(t *testing.T) {
	r := newRig(t, rigOptions{defaults: Defaults{Uptime: "always"}})
	r.annotateNamespace(map[string]string{AnnotationDowntime: "always", AnnotationDowntimeReplicas: "1", AnnotationGracePeriod: "0s"})
	r.deployment("follows-namespace", 3, nil)
	r.deployment("own-uptime", 3, map[string]string{AnnotationUptime: "always"})
	r.deployment("own-replicas", 3, map[string]string{AnnotationDowntimeReplicas: "2"})
	r.pass()
	r.expectDeployment("follows-namespace", 1, "3")
	r.expectDeployment("own-uptime", 3, "")
	r.expectDeployment("own-replicas", 2, "3")
}

func TestManualScaleDuringDowntimeIsLeftAlone(t *testing.T) {
	now := time.Now()
	r := newRig(t, rigOptions{now: now, defaults: Defaults{Downtime: window(now)}})
	r.deployment("web", 3, old)
	r.pass()
	r.expectDeployment("web", 0, "3")
	r.scaleByHand("web", 2)
	r.events()
	if got := r.pass(); len(got) != 0 {
		t.Errorf("pass after a manual scale acted: %v", got)
	}
	r.expectDeployment("web", 2, "3")
	r.clock.Step(2 * time.Hour)
	r.pass()
	r.expectDeployment("web", 2, "")
	if !hasEvent(r.events(), "Normal RestoreSkipped") {
		t.Errorf("no RestoreSkipped event")
	}
}

// The HPA-vs-downscaler fight: with downtime-replicas > 0 an HPA would
// scale its target back up; the downscaler pins the HPA while it holds the
// target down, and restores both.
func TestHPAStaysDown(t *testing.T) {
	now := time.Now()
	r := newRig(t, rigOptions{now: now, defaults: Defaults{Downtime: window(now), DowntimeReplicas: 1}})
	r.deployment("web", 3, old)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: r.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr(int32(2)), MaxReplicas: 6,
		},
	}
	if _, err := r.env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The HPA is brand new; it inherits the Deployment's grace-period.
	r.pass()
	r.expectDeployment("web", 1, "3")
	h, _ := r.env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if *h.Spec.MinReplicas != 1 || h.Spec.MaxReplicas != 1 {
		t.Errorf("HPA not pinned during downtime: min %d max %d", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if h.Annotations[AnnotationOriginalReplicas] != "2" || h.Annotations[AnnotationOriginalMaxReplicas] != "6" {
		t.Errorf("HPA originals: %v", h.Annotations)
	}
	r.clock.Step(2 * time.Hour)
	r.pass()
	r.expectDeployment("web", 3, "")
	h, _ = r.env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 6 || h.Annotations[AnnotationOriginalReplicas] != "" {
		t.Errorf("HPA not restored: min %d max %d annotations %v", *h.Spec.MinReplicas, h.Spec.MaxReplicas, h.Annotations)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	r := newRig(t, rigOptions{dryRun: true, defaults: Defaults{Downtime: "always"}})
	before := r.deployment("web", 3, old)
	r.deployment("restorable", 0, with(old, AnnotationExclude, "true", AnnotationOriginalReplicas, "2"))
	actions := r.pass()
	if len(actions) != 2 {
		t.Errorf("dry-run reported %d actions, want 2: %v", len(actions), actions)
	}
	if got := r.getDeployment("web"); got.ResourceVersion != before.ResourceVersion {
		t.Errorf("dry-run wrote the deployment")
	}
	r.expectDeployment("restorable", 0, "2")
	if ev := r.events(); len(ev) != 0 {
		t.Errorf("dry-run recorded events: %v", ev)
	}
}

func TestInvalidAnnotationIsNeverActedOn(t *testing.T) {
	r := newRig(t, rigOptions{defaults: Defaults{Downtime: "always"}})
	r.deployment("typo", 3, with(old, AnnotationUptime, "Mon-Fri 8-18 Europe/Berlin"))
	r.deployment("bad-original", 0, with(old, AnnotationOriginalReplicas, "three", AnnotationExclude, "true"))
	r.pass()
	r.expectDeployment("typo", 3, "")
	r.expectDeployment("bad-original", 0, "three")
	if !hasEvent(r.events(), "Warning InvalidAnnotation") {
		t.Errorf("no warning event")
	}
	r.pass()
	if ev := r.events(); len(ev) != 0 {
		t.Errorf("an unchanged broken object is warned about again: %v", ev)
	}
}

// failAfter lets n PATCH requests through, then fails every write: the
// agent "dies" in the middle of a pass.
type failAfter struct {
	next    http.RoundTripper
	n, seen atomic.Int64
}

func (f *failAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch && f.seen.Add(1) > f.n.Load() {
		return nil, errors.New("injected crash")
	}
	return f.next.RoundTrip(req)
}

// A restart in the middle of a downscale pass loses no original-replicas:
// each object's replicas and annotation change in one write.
func TestRestartMidPassLosesNothing(t *testing.T) {
	now := time.Now()
	env := testenv.Get(t)
	ns := env.Namespace(t)
	defaults := Defaults{Downtime: window(now)}
	crash := &failAfter{}
	crash.n.Store(7)
	first := newRig(t, rigOptions{ns: ns, now: now, defaults: defaults, wrap: func(rt http.RoundTripper) http.RoundTripper { crash.next = rt; return crash }})
	want := map[string]int32{}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("app-%02d", i)
		want[name] = int32(i%4 + 1)
		first.deployment(name, want[name], old)
	}
	first.settle()
	if _, err := first.ctrl.Reconcile(context.Background()); err == nil {
		t.Fatal("the crashing pass reported no error")
	}
	first.cancel()

	second := newRig(t, rigOptions{ns: ns, now: now, defaults: defaults})
	second.pass()
	for name, replicas := range want {
		second.expectDeployment(name, 0, fmt.Sprint(replicas))
	}
	second.clock.Step(2 * time.Hour)
	second.pass()
	for name, replicas := range want {
		second.expectDeployment(name, replicas, "")
	}
}

var everything = labels.Everything()

// L33: a known peak is pre-scaled during its window, then stepped down.
func TestPeakPreScaling(t *testing.T) {
	now := time.Now()
	r := newRig(t, rigOptions{now: now, defaults: Defaults{Uptime: "always"}})
	r.deployment("shop", 2, map[string]string{
		AnnotationPeakSchedule: window(now), AnnotationPeakReplicas: "10",
		AnnotationPeakStep: "3", AnnotationPeakStepInterval: "10m",
	})
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: r.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop"},
			MinReplicas:    ptr(int32(2)), MaxReplicas: 20,
		},
	}
	if _, err := r.env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpaMin := func() int32 {
		h, err := r.env.Client.AutoscalingV2().HorizontalPodAutoscalers(r.ns).Get(context.Background(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *h.Spec.MinReplicas
	}
	replicas := func() int32 { return *r.getDeployment("shop").Spec.Replicas }

	r.pass()
	if got := replicas(); got != 10 {
		t.Fatalf("in the peak window: replicas %d, want 10", got)
	}
	if got := hpaMin(); got != 10 {
		t.Errorf("in the peak window: HPA minReplicas %d, want 10", got)
	}
	if got := r.getDeployment("shop").Annotations[AnnotationPeakOriginalReplicas]; got != "2" {
		t.Errorf("peak-original-replicas %q, want 2", got)
	}
	if got := r.pass(); len(got) != 0 {
		t.Errorf("second pass in the window acted: %v", got)
	}

	r.clock.Step(2 * time.Hour) // window over: step down by 3 every 10m
	for i, want := range []int32{7, 7, 4, 2, 2} {
		r.pass()
		if got := replicas(); got != want {
			t.Fatalf("step %d: replicas %d, want %d", i, got, want)
		}
		if got := hpaMin(); got != want {
			t.Errorf("step %d: HPA minReplicas %d, want %d", i, got, want)
		}
		if i != 0 {
			r.clock.Step(10 * time.Minute)
		}
	}
	if _, ok := r.getDeployment("shop").Annotations[AnnotationPeakOriginalReplicas]; ok {
		t.Error("peak state left behind after the step-down")
	}
}

// installCRD creates a minimal schemaless CRD and waits until discovery
// serves it.
func installCRD(t *testing.T, env *testenv.Env, gvr schema.GroupVersionResource, kind string) {
	t.Helper()
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": gvr.Resource + "." + gvr.Group},
		"spec": map[string]any{
			"group": gvr.Group, "scope": "Namespaced",
			"names": map[string]any{"plural": gvr.Resource, "singular": strings.ToLower(kind), "kind": kind, "listKind": kind + "List"},
			"versions": []any{map[string]any{
				"name": gvr.Version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	if _, err := env.Dynamic.Resource(crdGVR).Create(context.Background(), crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		return serves(env.Client.Discovery(), gvr)
	}, "discovery to serve %s", gvr)
}

// Argo Rollouts are scaled like Deployments; KEDA ScaledObjects are paused
// through KEDA's own annotation, when their CRDs exist.
func TestCRDKinds(t *testing.T) {
	env := testenv.Get(t)
	installCRD(t, env, RolloutsResource, "Rollout")
	installCRD(t, env, ScaledObjectsResource, "ScaledObject")
	ns := env.Namespace(t)
	now := time.Now()
	r := newRig(t, rigOptions{ns: ns, now: now, defaults: Defaults{Downtime: window(now)}, crds: true})
	if r.ctrl.crds.rollouts == nil || r.ctrl.crds.scaledObjects == nil {
		t.Fatal("CRD kinds not discovered")
	}

	create := func(gvr schema.GroupVersionResource, obj map[string]any) {
		t.Helper()
		if _, err := env.Dynamic.Resource(gvr).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
		t.Helper()
		u, err := env.Dynamic.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	create(RolloutsResource, map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "canary", "annotations": map[string]any{AnnotationGracePeriod: "0s"}},
		"spec":     map[string]any{"replicas": int64(4)}})
	create(ScaledObjectsResource, map[string]any{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "worker", "annotations": map[string]any{AnnotationGracePeriod: "0s"}},
		"spec":     map[string]any{"scaleTargetRef": map[string]any{"name": "worker"}, "maxReplicaCount": int64(30)}})
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		all, err := r.ctrl.crds.list()
		return err == nil && len(all) == 2, err
	}, "CRD objects in the caches")

	r.pass()
	rollout := get(RolloutsResource, "canary")
	if n, _, _ := unstructured.NestedInt64(rollout.Object, "spec", "replicas"); n != 0 || rollout.GetAnnotations()[AnnotationOriginalReplicas] != "4" {
		t.Errorf("rollout: replicas %d annotations %v", n, rollout.GetAnnotations())
	}
	so := get(ScaledObjectsResource, "worker")
	if so.GetAnnotations()[AnnotationKEDAPausedReplicas] != "0" {
		t.Errorf("scaledobject not paused at 0: %v", so.GetAnnotations())
	}

	r.clock.Step(2 * time.Hour)
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		all, err := r.ctrl.crds.list()
		if err != nil {
			return false, err
		}
		for _, w := range all {
			if _, ok := w.obj.GetAnnotations()[AnnotationOriginalReplicas]; !ok {
				return false, nil
			}
		}
		return true, nil
	}, "the scale-down in the CRD caches")
	r.pass()
	rollout = get(RolloutsResource, "canary")
	if n, _, _ := unstructured.NestedInt64(rollout.Object, "spec", "replicas"); n != 4 {
		t.Errorf("rollout not restored: replicas %d", n)
	}
	so = get(ScaledObjectsResource, "worker")
	if _, paused := so.GetAnnotations()[AnnotationKEDAPausedReplicas]; paused {
		t.Errorf("scaledobject still paused: %v", so.GetAnnotations())
	}
}

// A pass over an unchanged cluster sends no API request: it reads the
// informer caches and writes nothing.
func TestIdlePassSendsNoRequest(t *testing.T) {
	now := time.Now()
	counter := &testenv.RequestCounter{}
	r := newRig(t, rigOptions{now: now, defaults: Defaults{Downtime: window(now)},
		wrap: counter.Wrap})
	for i := 0; i < 5; i++ {
		r.deployment(fmt.Sprintf("app-%d", i), 2, old)
	}
	r.pass() // scales down: 5 writes
	r.settle()
	before := counter.Load()
	for i := 0; i < 3; i++ {
		if _, err := r.ctrl.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.Load() - before; got != 0 {
		t.Errorf("3 idle passes sent %d requests, want 0", got)
	}
}
