package lifecycle

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lint"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/render"
)

const exampleFleet = "../../examples/fleet"

// writeBenchFleet writes the example fleet's defaults, manifests, snippets
// and vars with n clusters made from its two AWS clusters, in
// production/staging pairs.
func writeBenchFleet(tb testing.TB, dir string, n int) {
	tb.Helper()
	src := os.DirFS(exampleFleet)
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "clusters/") || strings.HasPrefix(p, "vars/aws") || !strings.Contains(p, "/") && !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return writeBenchFile(filepath.Join(dir, p), data)
	})
	if err != nil {
		tb.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(exampleFleet, "clusters", name))
		if err != nil {
			tb.Fatal(err)
		}
		return string(b)
	}
	prod, staging := read("aws-prod-eu1.yaml"), read("aws-staging-eu1.yaml")
	for i := 0; i < n; i++ {
		pair := i / 2
		prodID, stagingID := fmt.Sprintf("prod-%03d", pair), fmt.Sprintf("staging-%03d", pair)
		text, id := prod, prodID
		r := strings.NewReplacer("aws-prod-eu1", prodID, "aws-staging-eu1", stagingID, "prod-eu1", prodID, "111111111111", fmt.Sprintf("1%011d", pair))
		if i%2 == 1 {
			text, id = staging, stagingID
			r = strings.NewReplacer("aws-staging-eu1", stagingID, "staging-eu1", stagingID, "222222222222", fmt.Sprintf("2%011d", pair))
		}
		if err := writeBenchFile(filepath.Join(dir, "clusters", id+".yaml"), []byte(r.Replace(text))); err != nil {
			tb.Fatal(err)
		}
	}
}

func writeBenchFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o600)
}

// noopInfra is infrastructure already at its spec: every Apply is a
// read that finds nothing to change.
type noopInfra struct{ calls atomic.Int64 }

func (n *noopInfra) Plan(context.Context, provider.ClusterSpec) ([]provider.Change, error) {
	n.calls.Add(1)
	return nil, nil
}

func (n *noopInfra) Apply(ctx context.Context, s provider.ClusterSpec) ([]provider.Change, error) {
	return n.Plan(ctx, s)
}

func (n *noopInfra) ControlPlane(context.Context, string) (provider.ControlPlaneInfo, error) {
	return provider.ControlPlaneInfo{Ready: true}, nil
}

// healthyApplier records applies like fakeApplier and creates the
// rendered workloads in the fake API as already rolled out, so the wait
// until healthy finds them so.
type healthyApplier struct {
	fakeApplier
	kube *fake.Clientset
}

func (a *healthyApplier) Apply(ctx context.Context, res *render.Result, opts apply.Options) (*apply.Result, error) {
	for _, o := range res.Objects {
		u := o.Object
		meta := metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace()}
		if meta.Namespace == "" {
			meta.Namespace = metav1.NamespaceDefault
		}
		replicas, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
		if !found {
			replicas = 1
		}
		r := int32(replicas)
		var err error
		switch {
		case u.GetAPIVersion() != "apps/v1":
		case u.GetKind() == "Deployment":
			_, err = a.kube.AppsV1().Deployments(meta.Namespace).Create(ctx, &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: &r},
				Status: appsv1.DeploymentStatus{Replicas: r, UpdatedReplicas: r, AvailableReplicas: r}}, metav1.CreateOptions{})
		case u.GetKind() == "StatefulSet":
			_, err = a.kube.AppsV1().StatefulSets(meta.Namespace).Create(ctx, &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: &r},
				Status: appsv1.StatefulSetStatus{Replicas: r, ReadyReplicas: r}}, metav1.CreateOptions{})
		case u.GetKind() == "DaemonSet":
			_, err = a.kube.AppsV1().DaemonSets(meta.Namespace).Create(ctx, &appsv1.DaemonSet{ObjectMeta: meta}, metav1.CreateOptions{})
		}
		if err != nil {
			return nil, err
		}
	}
	return a.fakeApplier.Apply(ctx, res, opts)
}

// benchWorld is a fleet of n clusters, each a fake API with its pools'
// minimum of nodes (registered by a local cloud, so they carry the
// current template hash) and a status from a first pass.
type benchWorld struct {
	conn  *fakeConnector
	infra *noopInfra
	c     *Controller
}

func newBenchWorld(b *testing.B, n int) *benchWorld {
	dir := b.TempDir()
	writeBenchFleet(b, dir, n)
	f, err := fleet.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	conn := &fakeConnector{kube: map[string]*fake.Clientset{}, applier: map[string]Applier{}, broken: map[string]bool{}}
	reg := localcloud.NewClientRegistry()
	cloud := localcloud.New(localcloud.Config{}, clocktesting.NewFakeClock(now), reg)
	r, err := render.New(f)
	if err != nil {
		b.Fatal(err)
	}
	for _, cl := range f.Clusters {
		conn.kube[cl.ID] = fake.NewClientset()
		conn.applier[cl.ID] = &healthyApplier{kube: conn.kube[cl.ID]}
		reg.Add(cl.ID, conn.kube[cl.ID])
		res, err := r.Cluster(context.Background(), cl.ID)
		if err != nil {
			b.Fatal(err)
		}
		if err := cloud.AddCluster(res.Cluster); err != nil {
			b.Fatal(err)
		}
	}
	if err := cloud.Bootstrap(context.Background()); err != nil {
		b.Fatal(err)
	}
	infra := &noopInfra{}
	conn.infra, conn.cloud = infra, cloud
	c, err := New(Options{FleetDir: dir, Connector: conn, Clock: clocktesting.NewFakeClock(now), Concurrency: 8})
	if err != nil {
		b.Fatal(err)
	}
	res, err := c.Pass(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || r.Status.Phase != PhaseReconciled {
			b.Fatalf("first pass: %s: %s %v", r.Status.Cluster, r.Status.Phase, r.Err)
		}
	}
	for _, cs := range conn.kube {
		cs.ClearActions()
	}
	infra.calls.Store(0)
	return &benchWorld{conn: conn, infra: infra, c: c}
}

// renderLintOnly is the baseline: what every pass must do before it
// touches a cluster (load, render, lint).
func renderLintOnly(b *testing.B, dir string) {
	f, err := fleet.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		b.Fatal(err)
	}
	var results []*render.Result
	for _, cl := range f.Clusters {
		res, err := r.Cluster(context.Background(), cl.ID)
		if err != nil {
			b.Fatal(err)
		}
		results = append(results, res)
	}
	lint.Check(f, results, nil)
}

// BenchmarkPassNothingToChange: a controller pass over 150 clusters whose
// state already matches (in-process API fakes): time, API requests and
// memory, and zero writes (the benchmark fails on any write or apply).
// The baseline, run in the same iterations with the timer stopped, is
// load + render + lint of the same fleet.
func BenchmarkPassNothingToChange(b *testing.B) {
	w := newBenchWorld(b, 150)
	var pass, base time.Duration
	var requests int
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		res, err := w.c.Pass(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		pass += time.Since(start)
		b.StopTimer()
		for _, r := range res {
			if r.Err != nil || len(r.Changes) > 0 {
				b.Fatalf("%s: %v %v", r.Status.Cluster, r.Err, r.Changes)
			}
		}
		start = time.Now()
		renderLintOnly(b, w.c.opts.FleetDir)
		base += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	for id, cs := range w.conn.kube {
		if wr := writes(cs); len(wr) > 0 {
			b.Fatalf("%s: a pass with nothing to change wrote %v", id, wr)
		}
		requests += len(cs.Actions())
		if n := len(w.conn.applier[id].(*healthyApplier).versions); n != 1 {
			b.Fatalf("%s applied %d times", id, n)
		}
	}
	b.ReportMetric(float64(pass.Milliseconds())/float64(b.N), "ms/pass")
	b.ReportMetric(float64(pass)/float64(base), "x-time-vs-render-lint")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/pass")
	b.ReportMetric(float64(w.infra.calls.Load())/float64(b.N), "infra-calls/pass")
	b.ReportMetric(0, "writes/pass")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MiB-alloc/pass-and-baseline")
	b.ReportMetric(float64(after.HeapSys)/(1<<20), "MiB-heap-sys")
}
