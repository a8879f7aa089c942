package downscaler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
)

// idleController returns a controller whose caches hold n unchanged
// workloads (Deployments, StatefulSets, CronJobs, Jobs and HPAs in 10
// namespaces, some with their own schedules) that a pass at now leaves
// alone. The caches are filled directly, without informers running, so
// nothing else allocates while a pass is measured.
func idleController(t testing.TB, n int, now time.Time) *Controller {
	t.Helper()
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := New(controller.Deps{
		Clock: clocktesting.NewFakeClock(now), Client: client, Factory: factory, Recorder: &record.FakeRecorder{},
		Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, Options{Defaults: Defaults{Uptime: "always", GracePeriod: 15 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	add := func(inf cache.SharedIndexInformer, obj any) {
		if err := inf.GetIndexer().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	office := "Mon-Fri 00:00-24:00 UTC, Sat-Sun 00:00-24:00 Europe/Berlin"
	for i := 0; i < 10; i++ {
		annos := map[string]string{}
		if i%2 == 0 {
			annos[AnnotationUptime] = office
		}
		add(factory.Core().V1().Namespaces().Informer(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i), Annotations: annos}})
	}
	created := metav1.NewTime(now.Add(-time.Hour))
	replicas := int32(2)
	for i := 0; i < n; i++ {
		meta := metav1.ObjectMeta{Name: fmt.Sprintf("w-%d", i), Namespace: fmt.Sprintf("ns-%d", i%10), CreationTimestamp: created,
			UID: "uid", ResourceVersion: "1", Annotations: map[string]string{"deployment.kubernetes.io/revision": "1"}}
		switch i % 10 {
		case 1:
			meta.Annotations[AnnotationDowntime] = "Sat-Sun 00:00-24:00 UTC"
			meta.Annotations[AnnotationUptime] = "always"
		case 2:
			meta.Annotations[AnnotationExclude] = "false"
		}
		switch i % 5 {
		case 0, 1:
			add(factory.Apps().V1().Deployments().Informer(), &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: &replicas}})
		case 2:
			add(factory.Apps().V1().StatefulSets().Informer(), &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: &replicas}})
		case 3:
			if i%2 == 0 {
				add(factory.Batch().V1().CronJobs().Informer(), &batchv1.CronJob{ObjectMeta: meta})
			} else {
				add(factory.Batch().V1().Jobs().Informer(), &batchv1.Job{ObjectMeta: meta})
			}
		case 4:
			add(factory.Autoscaling().V2().HorizontalPodAutoscalers().Informer(), &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta,
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: &replicas, MaxReplicas: 5,
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: fmt.Sprintf("w-%d", i-4)}}})
		}
	}
	return ctrl
}

// idlePassAllocs is the mean number of heap allocations of one pass over
// n unchanged workloads.
func idlePassAllocs(t *testing.T, n int) float64 {
	t.Helper()
	now := time.Date(2026, 3, 30, 10, 0, 0, 0, time.UTC) // a Monday
	ctrl := idleController(t, n, now)
	ctx := context.Background()
	var failed error
	allocs := testing.AllocsPerRun(5, func() {
		actions, err := ctrl.Reconcile(ctx)
		if err != nil || len(actions) != 0 {
			failed = fmt.Errorf("%d actions (%v), %v", len(actions), actions, err)
		}
	})
	if failed != nil {
		t.Fatalf("pass over %d unchanged workloads: %v", n, failed)
	}
	return allocs
}

// A pass over an unchanged cluster decides from the caches and allocates
// close to nothing: a constant per pass, not a cost per workload (issue
// 19). Allocation counts are deterministic, unlike timings.
func TestIdlePassAllocatesNearNothing(t *testing.T) {
	small, large := idlePassAllocs(t, 1000), idlePassAllocs(t, 5000)
	t.Logf("allocations per idle pass: %.0f over 1,000 workloads, %.0f over 5,000", small, large)
	if limit := 5000.0 / 100; large >= limit {
		t.Errorf("an idle pass over 5,000 workloads allocated %.0f times, want < %.0f (1 per 100 workloads)", large, limit)
	}
	if large > small+5 {
		t.Errorf("allocations grow with the workloads: %.0f over 1,000, %.0f over 5,000", small, large)
	}
}

// BenchmarkIdlePass measures one pass over unchanged workloads from the
// caches (CPU and allocations), without an API server.
func BenchmarkIdlePass(b *testing.B) {
	for _, n := range []int{3000, 10000} {
		b.Run(fmt.Sprintf("workloads=%d", n), func(b *testing.B) {
			ctrl := idleController(b, n, time.Date(2026, 3, 30, 10, 0, 0, 0, time.UTC))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if actions, err := ctrl.Reconcile(ctx); err != nil || len(actions) != 0 {
					b.Fatalf("%d actions, %v", len(actions), err)
				}
			}
		})
	}
}

// Only the downscaler's own annotations ask for an early pass: a
// Deployment's revision, bumped by every rollout, must not cost a pass
// over every workload (issue 19).
func TestDownscalerAnnotationsChanged(t *testing.T) {
	rev := func(r string, extra ...string) map[string]string {
		m := map[string]string{"deployment.kubernetes.io/revision": r}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		old, cur map[string]string
		want     bool
	}{
		{"revision bumped", rev("1"), rev("2"), false},
		{"other annotation added", nil, map[string]string{"example.com/deployed-at": "now"}, false},
		{"unchanged", rev("1", AnnotationUptime, "always"), rev("1", AnnotationUptime, "always"), false},
		{"downscaler annotation added", rev("1"), rev("1", AnnotationForceUptime, "true"), true},
		{"downscaler annotation added to none", nil, map[string]string{AnnotationDowntime: "always"}, true},
		{"downscaler annotation changed", rev("1", AnnotationUptime, "always"), rev("1", AnnotationUptime, "never"), true},
		{"downscaler annotation removed", rev("1", AnnotationExclude, "true"), rev("2"), true},
		{"set to empty", rev("1"), rev("1", AnnotationExclude, ""), true},
	}
	for _, tt := range tests {
		if got := downscalerAnnotationsChanged(tt.old, tt.cur); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
