//go:build integration

package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/cli"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clusterYAML is a local cluster with one worker pool of size nodes over
// two zones, running an app of replicas pods behind a PDB.
func clusterYAML(id, types, extra string) string {
	return clusterYAMLSized(id, types, extra, 4, 8)
}

// clusterYAMLSized is clusterYAML with a pool of minSize to maxSize nodes.
func clusterYAMLSized(id, types, extra string, minSize, maxSize int) string {
	return fmt.Sprintf(`id: %s
environment: test
provider: local
region: local
kubernetesVersion: "%s"
%snodePools:
  - name: %s-workers
    role: worker
    applicationGroup: %s
    lifecycle: on-demand
    instanceTypes: [%s]
    zones: [local-a, local-b]
    minSize: %d
    maxSize: %d
lint:
  suppress:
    - {rule: L13, reason: integration test fleet}
    - {rule: L05, reason: integration test fleet}
    - {rule: L07, reason: integration test fleet}
    - {rule: L21, reason: integration test fleet}
    - {rule: L23, reason: integration test fleet}
    - {rule: L46, reason: integration test fleet}
    - {rule: L37, reason: integration test fleet}
    - {rule: L58, reason: integration test fleet}
`, id, localcloud.BuiltVersion(), extra, id, id, types, minSize, maxSize)
}

// appYAML: a Deployment of replicas pods on the cluster's pool and a PDB
// keeping minAvailable of them.
const appYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: {{ .Cluster.ID }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {{ .Cluster.ID }}
spec:
  replicas: {{ .Vars.replicas }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      nodeSelector:
        node.bosun.dev/pool: {{ .Cluster.ID }}-workers
      containers:
        - name: web
          image: nginx
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {cpu: 100m, memory: 64Mi}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: {{ .Cluster.ID }}
spec:
  minAvailable: {{ .Vars.minAvailable }}
  selector:
    matchLabels: {app: web}
`

type world struct {
	t     testing.TB
	env   *testenv.Env
	dir   string
	id    string
	cloud *localcloud.Cloud
	infra *localcloud.Infra
	// size is the pool's node count once a roll is over (its minSize).
	size int
	// wrap, if set, wraps the transport of the controller's client of
	// the world's cluster (to count requests).
	wrap func(http.RoundTripper) http.RoundTripper
	// e2e, if set, is the controller's e2e runner.
	e2e lifecycle.E2ERunner
}

// newWorld writes a fleet of one cluster id (plus extra clusters) and
// starts a local cloud whose nodes register in the test's control plane.
func newWorld(t *testing.T, id, types, items string, replicas, minAvailable int) *world {
	t.Helper()
	return newWorldSized(t, id, types, items, replicas, minAvailable, 4, 8)
}

// newWorldSized is newWorld with a pool of minSize to maxSize nodes.
func newWorldSized(t testing.TB, id, types, items string, replicas, minAvailable, minSize, maxSize int) *world {
	t.Helper()
	env := testenv.Get(t)
	ctx := context.Background()
	// One API server serves every test: forget the previous test's
	// cluster (inventory and status name it).
	for _, ref := range [][2]string{{apply.InventoryNamespace, apply.InventoryName}, {lifecycle.StatusNamespace, lifecycle.StatusName}} {
		if err := env.Client.CoreV1().ConfigMaps(ref[0]).Delete(ctx, ref[1], metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	w := &world{t: t, env: env, dir: dir, id: id, size: minSize}
	w.write("manifests/app/app.yaml", appYAML)
	w.write(fmt.Sprintf("vars/%s.yaml", id), fmt.Sprintf("replicas: %d\nminAvailable: %d\n", replicas, minAvailable))
	w.write("clusters/"+id+".yaml", clusterYAMLSized(id, types, items, minSize, maxSize))
	reg := localcloud.NewClientRegistry()
	reg.Add(id, env.Client)
	w.cloud = localcloud.New(localcloud.Config{BootDelay: 300 * time.Millisecond}, clock.RealClock{}, reg)
	w.infra = localcloud.NewInfra(w.cloud, reg)
	f, err := fleet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cloud.AddCluster(f.Cluster(id)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	if err := w.cloud.Bootstrap(cctx); err != nil {
		t.Fatal(err)
	}
	go w.cloud.Run(cctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	t.Cleanup(func() {
		cancel()
		nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelPool + "=" + id + "-workers"})
		for _, n := range nodes.Items {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	})
	return w
}

func (w *world) write(rel, content string) {
	w.t.Helper()
	p := filepath.Join(w.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// controller returns a controller over the world's fleet; configs maps
// further cluster IDs to their REST configs.
func (w *world) controller(configs map[string]*rest.Config) *lifecycle.Controller {
	w.t.Helper()
	c, err := lifecycle.New(lifecycle.Options{
		FleetDir: w.dir, Interval: 300 * time.Millisecond, MaxBackoff: time.Second,
		HealthTimeout: time.Minute, PollEvery: 200 * time.Millisecond, Log: quiet, E2E: w.e2e,
		Connector: lifecycle.RESTConnector{
			Config: func(cl *fleet.Cluster) (*rest.Config, error) {
				if cl.ID == w.id {
					cfg := w.env.RESTConfig()
					if w.wrap != nil {
						cfg.Wrap(w.wrap)
					}
					return cfg, nil
				}
				if cfg, ok := configs[cl.ID]; ok {
					return cfg, nil
				}
				return nil, errors.New("unknown cluster")
			},
			Infra:   func(*fleet.Cluster) (provider.Infra, error) { return w.infra, nil },
			Cloud:   func(cl *fleet.Cluster) provider.Provider { return w.cloud },
			Timeout: 5 * time.Second,
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// run runs a controller until the returned stop is called.
func run(c *lifecycle.Controller) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	return func() { cancel(); <-done }
}

func (w *world) status(ctx context.Context) lifecycle.Status {
	live, err := lifecycle.ReadStatus(ctx, w.env.Client)
	if err != nil {
		w.t.Fatal(err)
	}
	return live.Status
}

func (w *world) waitPhase(phase lifecycle.Phase, timeout time.Duration, applied bool) lifecycle.Status {
	w.t.Helper()
	var st lifecycle.Status
	testenv.Eventually(w.t, timeout, func(ctx context.Context) (bool, error) {
		st = w.status(ctx)
		return st.Phase == phase && (!applied || (st.AppliedVersion != "" && st.AppliedVersion == st.DesiredVersion)), nil
	}, "cluster %s in phase %s (last: %+v)", w.id, phase, &st)
	return st
}

func (w *world) poolNodes(ctx context.Context) []corev1.Node {
	nodes, err := w.env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: fleet.LabelPool + "=" + w.id + "-workers"})
	if err != nil {
		w.t.Fatal(err)
	}
	return nodes.Items
}

// drainWatch records the drain start of every node it sees; a node whose
// drain start changes was drained twice (L42).
type drainWatch struct {
	mu      sync.Mutex
	started map[string]string
	twice   []string
}

func (w *world) watchDrains(ctx context.Context) *drainWatch {
	d := &drainWatch{started: map[string]string{}}
	go func() {
		for ctx.Err() == nil {
			for _, n := range w.poolNodes(context.Background()) {
				v := n.Annotations[lifecycle.AnnotationDrainStarted]
				if v == "" {
					continue
				}
				d.mu.Lock()
				if old, ok := d.started[n.Name]; ok && old != v {
					d.twice = append(d.twice, fmt.Sprintf("%s: %s then %s", n.Name, old, v))
				}
				d.started[n.Name] = v
				d.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return d
}

func (d *drainWatch) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.started)
}

// sampleAvailable counts every 200 ms the app's Ready pods that are not
// being deleted and returns the lowest count seen.
func (w *world) sampleAvailable(ctx context.Context) func() (lowest int, samples int) {
	var mu sync.Mutex
	lowest, samples := 1<<30, 0
	go func() {
		for ctx.Err() == nil {
			if n := w.readyPods(context.Background()); n >= 0 {
				mu.Lock()
				lowest, samples = min(lowest, n), samples+1
				mu.Unlock()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return lowest, samples
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (w *world) assertRolled(ctx context.Context, wantType string) {
	w.t.Helper()
	g, err := w.cloud.NodeGroup(ctx, w.id+"/"+w.id+"-workers")
	if err != nil {
		w.t.Fatal(err)
	}
	nodes := w.poolNodes(ctx)
	if len(nodes) != w.size || g.TargetSize != w.size {
		w.t.Errorf("%d nodes, target size %d after the roll; want %d and %d", len(nodes), g.TargetSize, w.size, w.size)
	}
	for _, n := range nodes {
		if n.Labels[provider.LabelTemplateHash] != g.Labels[provider.LabelTemplateHash] || n.Labels[localcloud.LabelInstanceType] != wantType {
			w.t.Errorf("node %s: hash %s type %s; want %s %s", n.Name, n.Labels[provider.LabelTemplateHash], n.Labels[localcloud.LabelInstanceType], g.Labels[provider.LabelTemplateHash], wantType)
		}
	}
}

// Two clusters, one unreachable: the other is applied and reconciled, and
// the broken one is reported without holding it up.
func TestIntegrationOneBrokenClusterDoesNotBlockTheOther(t *testing.T) {
	w := newWorld(t, "good", "m5.xlarge", "", 2, 1)
	w.write("clusters/broken.yaml", strings.ReplaceAll(clusterYAML("broken", "m5.xlarge", ""), "broken-workers", "broken-workers"))
	w.write("vars/broken.yaml", "replicas: 1\nminAvailable: 0\n")
	dead := &rest.Config{Host: "https://127.0.0.1:1", Timeout: time.Second}
	c := w.controller(map[string]*rest.Config{"broken": dead})
	res, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch r.Status.Cluster {
		case "good":
			if r.Err != nil || r.Status.Phase != lifecycle.PhaseReconciled {
				t.Errorf("good: %+v", r)
			}
		case "broken":
			if r.Err == nil {
				t.Errorf("broken cluster reported no error: %+v", r)
			}
		}
	}
	st := w.status(context.Background())
	if st.Phase != lifecycle.PhaseReconciled || st.AppliedVersion != st.DesiredVersion {
		t.Errorf("status of good: %+v", st)
	}
	dep, err := w.env.Client.AppsV1().Deployments("good").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || dep.Status.AvailableReplicas != 2 {
		t.Errorf("web in good: %v, %v", dep, err)
	}
}

// L44/L45/L42: changing the pool's instance types rolls every node while
// the PDB-protected app, sampled every 200 ms, never drops below its
// minAvailable; the controller is stopped mid-roll and a fresh one
// finishes it without draining any node twice.
func TestIntegrationRollRespectsPDBAndResumes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(t, "roll", "m5.xlarge", "", 6, 5)
	stop := run(w.controller(nil))
	w.waitPhase(lifecycle.PhaseReconciled, 2*time.Minute, true)

	lowest := w.sampleAvailable(ctx)
	drains := w.watchDrains(ctx)
	w.write("clusters/roll.yaml", clusterYAML("roll", "m6i.xlarge", ""))
	testenv.Eventually(t, 2*time.Minute, func(context.Context) (bool, error) { return drains.count() >= 1, nil }, "a node draining")
	stop() // mid-roll: the state is on the nodes
	stop = run(w.controller(nil))
	defer func() { stop() }()
	st := w.waitPhase(lifecycle.PhaseReconciled, 4*time.Minute, true)
	if st.Roll != nil {
		t.Errorf("roll still in status: %+v", st.Roll)
	}
	w.assertRolled(ctx, "m6i.xlarge")
	if low, n := lowest(); low < 5 || n < 10 {
		t.Errorf("lowest available %d in %d samples; the PDB keeps 5", low, n)
	}
	drains.mu.Lock()
	defer drains.mu.Unlock()
	if len(drains.twice) > 0 {
		t.Errorf("nodes drained twice: %v", drains.twice)
	}
	if len(drains.started) != 4 {
		t.Errorf("%d nodes drained, want the 4 old ones", len(drains.started))
	}
}

// L45: a PDB that never allows an eviction holds the drain until the
// deadline (config item), then the pods are deleted and the roll ends.
// An update block stops the roll where it is, and it continues after.
func TestIntegrationBlockThenForceAfterDeadline(t *testing.T) {
	ctx := context.Background()
	items := "configItems:\n  node_drain_deadline: 4s\n  node_roll_max_surge: \"1\"\n"
	w := newWorld(t, "force", "m5.xlarge", items, 2, 2)
	stop := run(w.controller(nil))
	defer func() { stop() }()
	w.waitPhase(lifecycle.PhaseReconciled, 2*time.Minute, true)

	w.write("clusters/force.yaml", clusterYAML("force", "m6i.xlarge", items+"updateBlock: change freeze\n"))
	st := w.waitPhase(lifecycle.PhaseBlocked, time.Minute, false)
	if !strings.Contains(st.BlockedReason, "change freeze") {
		t.Errorf("blocked reason %q", st.BlockedReason)
	}
	time.Sleep(2 * time.Second) // several passes
	g, _ := w.cloud.NodeGroup(ctx, "force/force-workers")
	if g.InstanceTypes[0] != "m5.xlarge" || g.TargetSize != 4 {
		t.Errorf("blocked cluster's group changed: %+v", g)
	}
	for _, n := range w.poolNodes(ctx) {
		if n.Annotations[lifecycle.AnnotationRollMarked] != "" || n.Spec.Unschedulable {
			t.Errorf("blocked cluster's node %s touched", n.Name)
		}
	}

	w.write("clusters/force.yaml", clusterYAML("force", "m6i.xlarge", items))
	st = w.waitPhase(lifecycle.PhaseRolling, time.Minute, false)
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		return strings.Contains(w.status(ctx).Roll.String(), "evictions refused"), nil
	}, "evictions refused by the PDB")
	w.waitPhase(lifecycle.PhaseReconciled, 4*time.Minute, true)
	w.assertRolled(ctx, "m6i.xlarge")
	evs, err := w.env.Client.CoreV1().Events(lifecycle.StatusNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forced := 0
	for _, e := range evs.Items {
		if e.Reason == "RollForce" && strings.Contains(e.Message, "force-workers") {
			forced++
		}
	}
	if forced == 0 {
		t.Error("no RollForce event: the drain ended without the deadline")
	}
}

// `bosun clusters` lists the registry with the live status, an
// unreachable cluster as such; `bosun block` / `bosun unblock` set and
// clear the live block the controller honours.
func TestIntegrationClustersAndBlockCommands(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "test", "m5.xlarge", "", 1, 0) // context bosun-test of the test kubeconfig
	w.write("clusters/elsewhere.yaml", clusterYAML("elsewhere", "m5.xlarge", ""))
	w.write("vars/elsewhere.yaml", "replicas: 1\nminAvailable: 0\n")
	c := w.controller(map[string]*rest.Config{"elsewhere": {Host: "https://127.0.0.1:1", Timeout: time.Second}})
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	bosun := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := cli.Run(ctx, iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
		return out.String() + errOut.String(), err
	}
	common := []string{"--fleet", w.dir, "--kubeconfig", w.env.Kubeconfig}
	if out, err := bosun(append([]string{"block", "test", "--reason", "incident 4711"}, common...)...); err != nil {
		t.Fatalf("block: %v\n%s", err, out)
	}
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := bosun(append([]string{"clusters", "-o", "wide", "--timeout", "2s"}, common...)...)
	if err != nil {
		t.Fatalf("clusters: %v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	var test, elsewhere string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "test "):
			test = l
		case strings.HasPrefix(l, "elsewhere "):
			elsewhere = l
		}
	}
	if !strings.Contains(test, "Blocked") || !strings.Contains(test, "incident 4711") {
		t.Errorf("test cluster: %q\n%s", test, out)
	}
	if !strings.Contains(elsewhere, "Unreachable") {
		t.Errorf("unreachable cluster: %q\n%s", elsewhere, out)
	}
	if out, err := bosun(append([]string{"unblock", "test"}, common...)...); err != nil {
		t.Fatalf("unblock: %v\n%s", err, out)
	}
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if st := w.status(ctx); st.Phase != lifecycle.PhaseReconciled || st.BlockedReason != "" {
		t.Errorf("after unblock: %+v", st)
	}
	if _, err := bosun(append([]string{"block", "test"}, common...)...); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Errorf("block without a reason: %v", err)
	}
}

// L45, zone-aware: a pod whose persistent volume is pinned to a zone (PV
// node affinity) runs on an old node in local-a. With one surge node at a
// time, the roll may launch its first new node in local-b; the node
// holding the zonal volume is drained only once a new node of the pool is
// Ready in local-a, so the pod always has somewhere to go. Its pod ends up
// on a new node in local-a.
func TestIntegrationZonalVolumeRoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	items := "configItems:\n  node_roll_max_surge: \"1\"\n"
	w := newWorld(t, "zonal", "m5.xlarge", items, 2, 1)
	stop := run(w.controller(nil))
	defer func() { stop() }()
	w.waitPhase(lifecycle.PhaseReconciled, 2*time.Minute, true)

	const zone = "local-a"
	cs := w.env.Client
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "zonal-data"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "zonal-test",
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/zonal-data"}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{zone}}},
			}}}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: w.id},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("zonal-test"),
			VolumeName:       pv.Name,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(w.id).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "db"}
	db := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: w.id},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{fleet.LabelPool: w.id + "-workers"},
					Containers:   []corev1.Container{{Name: "db", Image: "postgres", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
					Volumes:      []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(w.id).Create(ctx, db, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dbNode := func(ctx context.Context) (string, error) {
		pods, err := cs.CoreV1().Pods(w.id).List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
		if err != nil {
			return "", err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				return p.Spec.NodeName, nil
			}
		}
		return "", nil
	}
	var first string
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := dbNode(ctx)
		first = n
		return n != "", err
	}, "the db pod to run on a node in %s", zone)
	node, err := cs.CoreV1().Nodes().Get(ctx, first, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := node.Labels["topology.kubernetes.io/zone"]; got != zone {
		t.Fatalf("the db pod runs on %s in %q; the PV pins it to %s", first, got, zone)
	}

	// Watch the db node's drain start and, at that moment, the pool's new
	// Ready nodes in the volume's zone.
	var mu sync.Mutex
	covered, seen := false, false
	go func() {
		for ctx.Err() == nil {
			n, err := cs.CoreV1().Nodes().Get(context.Background(), first, metav1.GetOptions{})
			if err == nil && n.Annotations[lifecycle.AnnotationDrainStarted] != "" {
				ok := false
				for _, m := range w.poolNodes(context.Background()) {
					if m.Labels[localcloud.LabelInstanceType] == "m6i.xlarge" && m.Labels["topology.kubernetes.io/zone"] == zone &&
						!m.Spec.Unschedulable && testenv.NodeReady(&m) {
						ok = true
					}
				}
				mu.Lock()
				covered, seen = ok, true
				mu.Unlock()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	before := w.status(ctx).AppliedVersion
	w.write("clusters/zonal.yaml", clusterYAML("zonal", "m6i.xlarge", items))
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		return w.status(ctx).DesiredVersion != before, nil
	}, "the controller to see the new instance type")
	st := w.waitPhase(lifecycle.PhaseReconciled, 4*time.Minute, true)
	if st.Roll != nil {
		t.Errorf("roll still in status: %+v", st.Roll)
	}
	w.assertRolled(ctx, "m6i.xlarge")
	mu.Lock()
	if !seen {
		t.Errorf("node %s (zonal volume in %s) was never seen draining", first, zone)
	} else if !covered {
		t.Errorf("node %s (zonal volume in %s) started draining with no new Ready node of the pool in %s", first, zone, zone)
	}
	mu.Unlock()
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := dbNode(ctx)
		if n == "" || err != nil {
			return false, err
		}
		node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		return err == nil && node.Labels["topology.kubernetes.io/zone"] == zone && node.Labels[localcloud.LabelInstanceType] == "m6i.xlarge", err
	}, "the db pod to run on a new node in %s", zone)
}
