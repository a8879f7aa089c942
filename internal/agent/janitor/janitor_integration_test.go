//go:build integration

package janitor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

type rig struct {
	t        *testing.T
	env      *testenv.Env
	ns       string
	clock    *clocktesting.FakeClock
	ctrl     *Controller
	recorder *record.FakeRecorder
	requests *testenv.RequestCounter
}

func newRig(t *testing.T, opts Options, mutate ...func(*controller.Deps)) *rig {
	t.Helper()
	env := testenv.Get(t)
	ns := env.Namespace(t)
	if opts.Resources == nil {
		opts.Resources = []string{"configmaps"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace(ns))
	rec := record.NewFakeRecorder(1000)
	clk := clocktesting.NewFakeClock(time.Now())
	// The janitor's own clients count their requests (watches aside).
	counter := &testenv.RequestCounter{}
	cfg := env.RESTConfig()
	cfg.Wrap(counter.Wrap)
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deps := controller.Deps{
		Clock: clk, Client: env.Client, Dynamic: dyn, Metadata: meta, Factory: factory, Recorder: rec,
		Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Namespace: ns,
	}
	for _, m := range mutate {
		m(&deps)
	}
	ctrl, err := New(deps, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	ctrl.Start(ctx, ctx)
	return &rig{t: t, env: env, ns: ns, clock: clk, ctrl: ctrl, recorder: rec, requests: counter}
}

// settle waits until every watched cache holds what the API server holds.
func (r *rig) settle() {
	r.t.Helper()
	testenv.Eventually(r.t, 30*time.Second, func(ctx context.Context) (bool, error) {
		for _, w := range r.ctrl.resources {
			list, err := r.env.Dynamic.Resource(w.gvr).Namespace(r.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			cached, err := w.lister.ByNamespace(r.ns).List(labels.Everything())
			if err != nil {
				return false, err
			}
			if len(cached) != len(list.Items) {
				return false, nil
			}
			want := map[string]string{}
			for _, it := range list.Items {
				want[it.GetName()] = it.GetResourceVersion()
			}
			for _, o := range cached {
				m, _ := o.(interface{ GetName() string })
				rv, _ := o.(interface{ GetResourceVersion() string })
				if want[m.GetName()] != rv.GetResourceVersion() {
					return false, nil
				}
			}
		}
		return true, nil
	}, "janitor caches in %s", r.ns)
}

func (r *rig) pass() []string {
	r.t.Helper()
	r.settle()
	actions, err := r.ctrl.Pass(context.Background())
	if err != nil {
		r.t.Fatalf("pass: %v", err)
	}
	return actions
}

func (r *rig) configMap(name string, annos map[string]string) {
	r.t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.ns, Annotations: annos}}
	if _, err := r.env.Client.CoreV1().ConfigMaps(r.ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

// exists reports whether the config map is there and not being deleted.
func (r *rig) exists(name string) bool {
	r.t.Helper()
	cm, err := r.env.Client.CoreV1().ConfigMaps(r.ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return cm.DeletionTimestamp == nil
}

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

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// L52: TTL and expires, with a notice before the deletion.
func TestTTLExpiresAndNotice(t *testing.T) {
	r := newRig(t, Options{NotifyBefore: 10 * time.Minute})
	if r.ctrl.resources[0].full {
		t.Error("configmaps watched in full without a rule that needs them; metadata is enough")
	}
	r.configMap("ttl-1h", map[string]string{AnnotationTTL: "1h"})
	r.configMap("expires", map[string]string{AnnotationExpires: r.clock.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)})
	r.configMap("forever", map[string]string{AnnotationTTL: "forever"})
	r.configMap("plain", nil)
	r.configMap("typo", map[string]string{AnnotationTTL: "1 hour"})

	if got := r.pass(); len(got) != 0 {
		t.Errorf("fresh objects: actions %v", got)
	}
	if countPrefix(r.events(), "Warning InvalidTTL") != 1 {
		t.Errorf("no warning for the unparseable TTL")
	}

	// Nothing due: an idle pass reads the caches and sends nothing.
	before := r.requests.Load()
	r.pass()
	if got := r.requests.Load() - before; got != 0 {
		t.Errorf("an idle pass sent %d requests, want 0", got)
	}

	r.clock.Step(55 * time.Minute)
	r.pass()
	if !r.exists("ttl-1h") {
		t.Fatal("deleted before its time")
	}
	if countPrefix(r.events(), "Warning DeleteScheduled") != 1 {
		t.Errorf("no DeleteScheduled notice 5 minutes before the TTL")
	}
	r.clock.Step(6 * time.Minute) // 61m: expired, but the notice is only 6m old
	r.pass()
	if !r.exists("ttl-1h") {
		t.Fatal("deleted before the notice had its full time")
	}
	r.clock.Step(5 * time.Minute)
	r.pass()
	if r.exists("ttl-1h") {
		t.Error("ttl-1h not deleted after TTL and notice")
	}
	if countPrefix(r.events(), "Normal Deleted") != 1 {
		t.Errorf("no Deleted event")
	}

	r.clock.Step(1000 * time.Hour)
	r.pass() // notice for expires (it never had one)
	if !r.exists("expires") {
		t.Error("expires deleted without a notice")
	}
	r.clock.Step(11 * time.Minute)
	r.pass()
	if r.exists("expires") {
		t.Error("expires not deleted")
	}
	for _, name := range []string{"forever", "plain", "typo"} {
		if !r.exists(name) {
			t.Errorf("%s deleted", name)
		}
	}
}

func TestRulesFirstMatchAndUnmountedPVC(t *testing.T) {
	rules, err := CompileRules([]RuleSpec{
		{ID: "keep-important", Resources: []string{"configmaps"}, Expression: `object.metadata.name.startsWith("pr-keep")`, TTL: "forever"},
		{ID: "pr-configs", Resources: []string{"configmaps"}, Expression: `object.metadata.name.startsWith("pr-")`, TTL: "1h"},
		{ID: "unused-pvcs", Resources: []string{"persistentvolumeclaims"}, Expression: `context.pvcIsNotMounted`, TTL: "2h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, Options{Rules: rules, Resources: []string{"configmaps"}})
	for _, w := range r.ctrl.resources {
		if !w.full {
			t.Errorf("%s watched as metadata only, but a rule reads it", w.name)
		}
	}
	r.configMap("pr-1", nil)
	r.configMap("pr-keep-me", nil)
	r.configMap("main", nil)
	r.configMap("pr-annotated", map[string]string{AnnotationTTL: "30d"}) // annotations beat rules
	for _, name := range []string{"used", "unused"} {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.ns},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
		if _, err := r.env.Client.CoreV1().PersistentVolumeClaims(r.ns).Create(context.Background(), pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// No controller-manager here: make the service account pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: r.ns}}
	if _, err := r.env.Client.CoreV1().ServiceAccounts(r.ns).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: r.ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}},
			Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "used"}}}},
		},
	}
	if _, err := r.env.Client.CoreV1().Pods(r.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		p, err := r.ctrl.pods.Pods(r.ns).Get("app")
		return err == nil && p != nil, nil
	}, "pod in the janitor's cache")

	r.clock.Step(3 * time.Hour)
	r.pass()
	if r.exists("pr-1") {
		t.Error("pr-1 not deleted by rule pr-configs")
	}
	for _, name := range []string{"pr-keep-me", "main", "pr-annotated"} {
		if !r.exists(name) {
			t.Errorf("%s deleted", name)
		}
	}
	pvcGone := func(name string) bool {
		p, err := r.env.Client.CoreV1().PersistentVolumeClaims(r.ns).Get(context.Background(), name, metav1.GetOptions{})
		// The pvc-protection finalizer keeps it while terminating.
		return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
	}
	if !pvcGone("unused") {
		t.Error("unmounted PVC not deleted")
	}
	if pvcGone("used") {
		t.Error("mounted PVC deleted")
	}
}

func TestCapsExclusionAndDryRun(t *testing.T) {
	t.Run("at most MaxDeletionsPerPass per pass", func(t *testing.T) {
		r := newRig(t, Options{MaxDeletionsPerPass: 2, DeletionsPerSecond: 1000})
		for i := 0; i < 5; i++ {
			r.configMap(fmt.Sprintf("cm-%d", i), map[string]string{AnnotationTTL: "1m"})
		}
		r.clock.Step(time.Hour)
		for pass, want := range []int{2, 2, 1, 0} {
			r.clock.Step(time.Second) // refill the rate limiter
			if got := countPrefix(r.pass(), "delete"); got != want {
				t.Errorf("pass %d: %d deletions, want %d", pass, got, want)
			}
		}
	})
	t.Run("rate limit across passes", func(t *testing.T) {
		r := newRig(t, Options{MaxDeletionsPerPass: 3, DeletionsPerSecond: 0.001})
		for i := 0; i < 5; i++ {
			r.configMap(fmt.Sprintf("cm-%d", i), map[string]string{AnnotationTTL: "1m"})
		}
		r.clock.Step(time.Hour) // the burst (3) refills fully but not beyond
		if got := countPrefix(r.pass(), "delete"); got != 3 {
			t.Errorf("first pass: %d deletions, want the burst of 3", got)
		}
		if got := countPrefix(r.pass(), "delete"); got != 0 {
			t.Errorf("second pass at the same instant: %d deletions, want 0", got)
		}
	})
	t.Run("excluded namespace is never touched", func(t *testing.T) {
		r := newRig(t, Options{})
		r.ctrl.opts.ExcludeNamespaces = []string{r.ns}
		r.configMap("old", map[string]string{AnnotationTTL: "1m"})
		r.clock.Step(time.Hour)
		if got := r.pass(); len(got) != 0 || !r.exists("old") {
			t.Errorf("acted in an excluded namespace: %v", got)
		}
	})
	t.Run("only included namespaces", func(t *testing.T) {
		r := newRig(t, Options{IncludeNamespaces: []string{"somewhere-else"}})
		r.configMap("old", map[string]string{AnnotationTTL: "1m"})
		r.clock.Step(time.Hour)
		if got := r.pass(); len(got) != 0 || !r.exists("old") {
			t.Errorf("acted outside the included namespaces: %v", got)
		}
		r.ctrl.opts.IncludeNamespaces = []string{r.ns}
		if got := r.pass(); len(got) != 1 || r.exists("old") {
			t.Errorf("did not act in the included namespace: %v", got)
		}
	})
	t.Run("excluded resources are not even watched", func(t *testing.T) {
		r := newRig(t, Options{Resources: []string{"configmaps", "services"}, ExcludeResources: []string{"Services"}})
		if len(r.ctrl.resources) != 1 || r.ctrl.resources[0].name != "configmaps" {
			t.Errorf("watching %v, want configmaps only", r.ctrl.resources)
		}
	})
	t.Run("dry-run deletes nothing", func(t *testing.T) {
		r := newRig(t, Options{NotifyBefore: time.Minute}, func(d *controller.Deps) { d.DryRun = true })
		r.configMap("old", map[string]string{AnnotationTTL: "1m"})
		r.clock.Step(time.Hour)
		got := r.pass()
		if len(got) != 1 || !strings.HasPrefix(got[0], "delete") {
			t.Errorf("dry-run actions %v, want one deletion", got)
		}
		cm, _ := r.env.Client.CoreV1().ConfigMaps(r.ns).Get(context.Background(), "old", metav1.GetOptions{})
		if _, ok := cm.Annotations[AnnotationNotifiedAt]; ok || !r.exists("old") {
			t.Error("dry-run changed the object")
		}
		if ev := r.events(); len(ev) != 0 {
			t.Errorf("dry-run recorded events %v", ev)
		}
	})
}

// Cluster-scoped kinds only when asked for; then a temporary namespace
// with a TTL goes (L52).
func TestClusterScoped(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	meta, err := metadata.NewForConfig(env.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	build := func(opts Options, namespace string) (*Controller, error) {
		return New(controller.Deps{
			Clock: clocktesting.NewFakeClock(time.Now()), Client: env.Client, Dynamic: env.Dynamic, Metadata: meta, Factory: factory,
			Recorder: record.NewFakeRecorder(10), Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Namespace: namespace,
		}, opts)
	}
	if _, err := build(Options{Resources: []string{"namespaces"}}, ""); err == nil || !strings.Contains(err.Error(), "cluster-scoped") {
		t.Fatalf("namespaces watched without --janitor-cluster-scoped: %v", err)
	}
	if _, err := build(Options{Resources: []string{"namespaces"}, ClusterScoped: true}, "x"); err == nil {
		t.Fatal("cluster-scoped resource accepted with a namespace filter")
	}
	ns := env.Namespace(t)
	keep := env.Namespace(t)
	for _, name := range []string{ns, keep} {
		n, err := env.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if name == ns {
			n.Annotations = map[string]string{AnnotationTTL: "1h"}
		}
		if _, err := env.Client.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctrl, err := build(Options{Resources: []string{"namespaces"}, ClusterScoped: true, IncludeNamespaces: []string{ns, keep}}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctrl.Start(ctx, ctx)
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		o, err := ctrl.resources[0].lister.Get(ns)
		if err != nil {
			return false, nil
		}
		_, ok := o.(object).GetAnnotations()[AnnotationTTL]
		return ok, nil
	}, "the annotated namespace in the cache")
	ctrl.clock.(*clocktesting.FakeClock).Step(2 * time.Hour)
	actions, err := ctrl.Pass(ctx)
	if err != nil || len(actions) != 1 || !strings.Contains(actions[0], "namespaces "+ns) {
		t.Fatalf("pass: %v, %v; want the deletion of namespace %s only", actions, err, ns)
	}
	n, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil && n.DeletionTimestamp == nil {
		t.Errorf("namespace %s not deleted", ns)
	}
}
