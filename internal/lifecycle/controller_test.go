package lifecycle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/channels"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/render"
)

func clusterFile(id, extra string) string {
	return `id: ` + id + `
environment: test
provider: local
region: local
kubernetesVersion: "` + localcloud.BuiltVersion() + `"
` + extra + `nodePools:
  - name: system
    role: system
    lifecycle: on-demand
    instanceTypes: [m6i.xlarge]
    zones: [local-a]
    minSize: 1
    maxSize: 3
lint:
  suppress:
    - {rule: L13-priority-classes, reason: the test fleet runs no workloads}
`
}

const configMapTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
data:
  cluster: {{ .Cluster.ID }}
`

// testFleet is a MapFS fleet whose files tests may change between passes.
type testFleet struct {
	mu sync.Mutex
	fs fstest.MapFS
}

func newTestFleet(ids ...string) *testFleet {
	f := &testFleet{fs: fstest.MapFS{"manifests/app/settings.yaml": {Data: []byte(configMapTemplate)}}}
	for _, id := range ids {
		f.set("clusters/"+id+".yaml", clusterFile(id, ""))
	}
	return f
}

func (f *testFleet) set(path, content string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fs[path] = &fstest.MapFile{Data: []byte(content)}
}

func (f *testFleet) load() (*fleet.Fleet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fleet.LoadFS(f.fs, "testfleet")
}

// fakeApplier records applies and says everything was created.
type fakeApplier struct {
	mu       sync.Mutex
	versions []string
}

func (a *fakeApplier) Apply(_ context.Context, res *render.Result, opts apply.Options) (*apply.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !opts.DryRun {
		a.versions = append(a.versions, res.Version)
	}
	return &apply.Result{Created: len(res.Objects)}, nil
}

// fakeConnector gives each cluster a fake API, the local cloud's infra
// and a fake applier; clusters in broken fail to connect.
type fakeConnector struct {
	kube    map[string]*fake.Clientset
	applier map[string]Applier
	infra   provider.Infra
	cloud   provider.Provider
	dynamic *dynamicfake.FakeDynamicClient
	broken  map[string]bool
}

func (f *fakeConnector) Connect(_ context.Context, cl *fleet.Cluster) (*Conn, error) {
	if f.broken[cl.ID] {
		return nil, errors.New("connection refused")
	}
	return &Conn{Kube: f.kube[cl.ID], Dynamic: f.dynamic, Apply: f.applier[cl.ID], Infra: f.infra, Cloud: f.cloud}, nil
}

type runningCPs struct{}

func (runningCPs) ControlPlane(context.Context, string) (provider.ControlPlaneInfo, error) {
	return provider.ControlPlaneInfo{Version: localcloud.BuiltVersion(), Ready: true}, nil
}

func newFakeConnector(ids ...string) *fakeConnector {
	reg := localcloud.NewClientRegistry()
	f := &fakeConnector{kube: map[string]*fake.Clientset{}, applier: map[string]Applier{}, broken: map[string]bool{}}
	for _, id := range ids {
		f.kube[id] = fake.NewClientset()
		f.kube[id].Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{Major: "1", Minor: "33", GitVersion: "v1.33.4"}
		f.applier[id] = &fakeApplier{}
		reg.Add(id, f.kube[id])
	}
	cloud := localcloud.New(localcloud.Config{}, clocktesting.NewFakeClock(now), reg)
	f.infra, f.cloud = localcloud.NewInfra(cloud, runningCPs{}), cloud
	f.dynamic = dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	return f
}

func writes(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

func readStatus(t *testing.T, cs *fake.Clientset) Live {
	t.Helper()
	live, err := ReadStatus(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	return live
}

// One cluster that cannot be reached never stops the other; it backs off;
// a second pass with nothing to change writes nothing.
func TestPassOneBrokenClusterDoesNotBlockOthers(t *testing.T) {
	ctx := context.Background()
	fl := newTestFleet("good", "broken")
	conn := newFakeConnector("good", "broken")
	conn.broken["broken"] = true
	clk := clocktesting.NewFakeClock(now)
	c, err := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clk, Interval: time.Minute, HealthTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Result{}
	for _, r := range res {
		byID[r.Status.Cluster] = r
	}
	if r := byID["broken"]; r.Err == nil || !strings.Contains(r.Err.Error(), "connection refused") {
		t.Errorf("broken: %+v", r)
	}
	good := byID["good"]
	if good.Err != nil || good.Status.Phase != PhaseReconciled || good.Status.AppliedVersion == "" {
		t.Fatalf("good: %+v", good)
	}
	live := readStatus(t, conn.kube["good"])
	if live.Status.AppliedVersion != good.Status.DesiredVersion || live.Status.Phase != PhaseReconciled {
		t.Errorf("recorded status %+v", live.Status)
	}
	if len(conn.applier["good"].(*fakeApplier).versions) != 1 {
		t.Errorf("applies %v, want one", conn.applier["good"].(*fakeApplier).versions)
	}

	// Nothing changed: zero writes, no apply; the broken cluster waits.
	conn.kube["good"].ClearActions()
	res, err = c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(conn.kube["good"]); len(w) != 0 {
		t.Errorf("a pass with nothing to change wrote %v", w)
	}
	if len(conn.applier["good"].(*fakeApplier).versions) != 1 {
		t.Errorf("applied again: %v", conn.applier["good"].(*fakeApplier).versions)
	}
	for _, r := range res {
		if r.Status.Cluster == "broken" && !r.Skipped {
			t.Errorf("the broken cluster was not backing off: %+v", r)
		}
	}
	// After its backoff it is tried again.
	clk.Step(time.Minute)
	conn.broken["broken"] = false
	res, _ = c.Pass(ctx)
	for _, r := range res {
		if r.Err != nil || r.Skipped {
			t.Errorf("%s after backoff: %+v", r.Status.Cluster, r)
		}
	}
}

// An update block in the file or on the live cluster stops every change
// and is reported; a change of the cluster is then not applied.
func TestBlockStopsChanges(t *testing.T) {
	ctx := context.Background()
	fl := newTestFleet("c1")
	conn := newFakeConnector("c1")
	c, err := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clocktesting.NewFakeClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	fl.set("clusters/c1.yaml", clusterFile("c1", "updateBlock: incident 42\nconfigItems: {x: \"1\"}\n"))
	res, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := res[0].Status; st.Phase != PhaseBlocked || !strings.Contains(st.BlockedReason, "incident 42") || st.AppliedVersion == st.DesiredVersion {
		t.Errorf("status %+v", st)
	}
	if n := len(conn.applier["c1"].(*fakeApplier).versions); n != 1 {
		t.Errorf("%d applies while blocked", n)
	}
	// The live block (bosun block) too, once the file's is gone.
	fl.set("clusters/c1.yaml", clusterFile("c1", "configItems: {x: \"1\"}\n"))
	if err := SetBlock(ctx, conn.kube["c1"], "database migration"); err != nil {
		t.Fatal(err)
	}
	res, _ = c.Pass(ctx)
	if st := res[0].Status; st.Phase != PhaseBlocked || !strings.Contains(st.BlockedReason, "database migration") {
		t.Errorf("status %+v", st)
	}
	if err := SetBlock(ctx, conn.kube["c1"], ""); err != nil {
		t.Fatal(err)
	}
	if live := readStatus(t, conn.kube["c1"]); live.Block != "" || live.Status.Phase != PhaseBlocked {
		t.Errorf("unblock: %+v (the controller's status must stay)", live)
	}
	res, _ = c.Pass(ctx)
	if st := res[0].Status; st.Phase != PhaseReconciled || st.AppliedVersion != st.DesiredVersion {
		t.Errorf("after unblock: %+v", st)
	}
}

// Dry-run changes nothing and writes nothing.
func TestDryRunWritesNothing(t *testing.T) {
	fl := newTestFleet("c1")
	conn := newFakeConnector("c1")
	c, err := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clocktesting.NewFakeClock(now), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(conn.kube["c1"]); len(w) != 0 {
		t.Errorf("dry-run wrote %v", w)
	}
	if gs, _ := conn.cloud.NodeGroups(context.Background()); len(gs) != 0 {
		t.Errorf("dry-run created node groups %v", gs)
	}
	if !strings.Contains(strings.Join(res[0].Changes, "\n"), "create node-group c1/system") {
		t.Errorf("changes %v", res[0].Changes)
	}
}

// The local provider refuses another Kubernetes version, clearly.
func TestUnsupportedVersionFailsThatCluster(t *testing.T) {
	fl := newTestFleet("c1")
	fl.set("clusters/c1.yaml", strings.Replace(clusterFile("c1", ""), localcloud.BuiltVersion(), "1.99", 1))
	conn := newFakeConnector("c1")
	c, _ := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clocktesting.NewFakeClock(now)})
	res, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !errors.Is(r.Err, provider.ErrUnsupported) || r.Status.Phase != PhaseFailed {
		t.Fatalf("result %+v", r)
	}
	if live := readStatus(t, conn.kube["c1"]); !strings.Contains(live.Status.LastError, "supports only") {
		t.Errorf("status %+v", live.Status)
	}
	var events int
	for _, a := range conn.kube["c1"].Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "events" {
			events++
			if ev := a.(k8stesting.CreateAction).GetObject(); ev == nil {
				t.Error("empty event")
			}
		}
	}
	if events == 0 {
		t.Error("no Event recorded for the failure")
	}
}

// Lint errors for a cluster stop it and its status names the rule (L02).
func TestLintErrorsStopTheCluster(t *testing.T) {
	fl := newTestFleet("c1")
	fl.set("clusters/c1.yaml", strings.Replace(clusterFile("c1", ""), "    - {rule: L13-priority-classes, reason: the test fleet runs no workloads}\n", "    []\n", 1))
	conn := newFakeConnector("c1")
	c, _ := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clocktesting.NewFakeClock(now)})
	res, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := res[0].Status; st.Phase != PhaseLintFailed || !strings.Contains(st.BlockedReason, "L13-priority-classes") {
		t.Errorf("status %+v", st)
	}
	if len(conn.applier["c1"].(*fakeApplier).versions) != 0 {
		t.Error("applied despite lint errors")
	}
	if gs, _ := conn.cloud.NodeGroups(context.Background()); len(gs) != 0 {
		t.Errorf("infrastructure changed despite lint errors: %v", gs)
	}
}

// L43: a production cluster moves to its channel's new revision only after
// the non-production clusters of that channel reached it; a production
// cluster already at the revision is not held.
func TestProductionWaitsForNonProduction(t *testing.T) {
	ctx := context.Background()
	fl := newTestFleet("staging")
	fl.set("clusters/prod.yaml", strings.Replace(strings.Replace(clusterFile("prod", ""), "environment: test", "environment: production", 1), "reason: the test fleet runs no workloads}", "reason: the test fleet runs no workloads}\n    - {rule: L46-test-twin, reason: the test fleet}", 1))
	conn := newFakeConnector("staging", "prod")
	conn.broken["staging"] = true
	dir := t.TempDir() // not a git repository: one implicit revision
	clk := clocktesting.NewFakeClock(now)
	c, err := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clk, Interval: time.Minute, HealthTimeout: time.Second,
		Channels: func() (*channels.Channels, error) { return channels.Open(dir) }})
	if err != nil {
		t.Fatal(err)
	}
	byID := func(res []Result) map[string]Result {
		out := map[string]Result{}
		for i, r := range res {
			out[[]string{"prod", "staging"}[i]] = r
		}
		return out
	}
	res, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prod := byID(res)["prod"]
	if prod.Err != nil || prod.Status.Phase != PhaseWaiting || !strings.Contains(prod.Status.BlockedReason, "staging (Failed)") {
		t.Fatalf("prod: %+v, want Waiting for staging", prod)
	}
	if n := len(conn.applier["prod"].(*fakeApplier).versions); n != 0 {
		t.Fatalf("prod was applied %d times while staging had not reached the revision", n)
	}
	if live := readStatus(t, conn.kube["prod"]); live.Status.Phase != PhaseWaiting || live.Status.ChannelRevision != "" {
		t.Errorf("prod's recorded status %+v, want Waiting with no revision yet", live.Status)
	}

	conn.broken["staging"] = false
	clk.Step(2 * time.Minute)
	res, err = c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range byID(res) {
		if r.Err != nil || r.Status.Phase != PhaseReconciled || r.Status.ChannelRevision != channels.WorkingTree {
			t.Errorf("%s: %+v, want Reconciled at %s in the same pass", id, r, channels.WorkingTree)
		}
	}

	// prod is at the revision now: a broken staging no longer holds it.
	conn.broken["staging"] = true
	clk.Step(2 * time.Minute)
	res, err = c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := byID(res)["prod"]; p.Status.Phase != PhaseReconciled {
		t.Errorf("prod at its revision: %+v, want Reconciled", p)
	}
}

// L43, L40: the hold also covers non-production clusters outside the pass
// (--clusters prod), by the status they recorded: an unreachable staging
// holds production, one without a status too, and one that recorded the
// revision releases it.
func TestProductionHoldAcrossPasses(t *testing.T) {
	ctx := context.Background()
	fl := newTestFleet("staging")
	fl.set("clusters/prod.yaml", strings.Replace(strings.Replace(clusterFile("prod", ""), "environment: test", "environment: production", 1), "reason: the test fleet runs no workloads}", "reason: the test fleet runs no workloads}\n    - {rule: L46-test-twin, reason: the test fleet}", 1))
	conn := newFakeConnector("staging", "prod")
	dir := t.TempDir() // not a git repository: one implicit revision
	clk := clocktesting.NewFakeClock(now)
	controller := func(only string) *Controller {
		c, err := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clk, Interval: time.Minute, HealthTimeout: time.Second, Clusters: []string{only},
			Channels: func() (*channels.Channels, error) { return channels.Open(dir) }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	prodOnly := func(want Phase, reason string) {
		t.Helper()
		clk.Step(2 * time.Minute)
		res, err := controller("prod").Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].Status.Phase != want || !strings.Contains(res[0].Status.BlockedReason, reason) {
			t.Fatalf("prod alone: %+v, want %s (%q)", res, want, reason)
		}
	}
	conn.broken["staging"] = true
	prodOnly(PhaseWaiting, "staging (unreachable: connection refused)")
	conn.broken["staging"] = false
	prodOnly(PhaseWaiting, "staging (no status recorded)")
	if n := len(conn.applier["prod"].(*fakeApplier).versions); n != 0 {
		t.Fatalf("prod was applied %d times while staging had not reached the revision", n)
	}
	if res, err := controller("staging").Pass(ctx); err != nil || res[0].Status.Phase != PhaseReconciled {
		t.Fatalf("staging alone: %+v (%v)", res, err)
	}
	prodOnly(PhaseReconciled, "")
}

// L30: an upgrade whose rendered manifests use an API the target release
// removes is refused before the infrastructure is touched; the status
// says why.
func TestUpgradeRefusedOverRemovedAPIInManifests(t *testing.T) {
	fl := newTestFleet("c1")
	// Lint's L30 rule would stop it first; suppressed, the gate still does.
	file := strings.Replace(clusterFile("c1", ""), localcloud.BuiltVersion(), "1.36", 1)
	for _, rule := range []string{"L26-system-placement", "L30-deprecated-api", "L37-pod-security", "L50-platform-right-sized", "L58-requests-and-probes"} {
		file += "    - {rule: " + rule + ", reason: test}\n"
	}
	fl.set("clusters/c1.yaml", file)
	fl.set("manifests/app/cron.yaml", `apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: nightly
  namespace: default
spec:
  schedule: "0 3 * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
`)
	conn := newFakeConnector("c1")
	c, _ := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clocktesting.NewFakeClock(now)})
	res, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if !errors.Is(r.Err, ErrRemovedAPIs) || !strings.Contains(r.Err.Error(), "batch/v1beta1 CronJob (removed in 1.25)") || !strings.Contains(r.Err.Error(), "default/nightly") {
		t.Fatalf("result %+v, want the upgrade refused naming batch/v1beta1 CronJob default/nightly", r)
	}
	if live := readStatus(t, conn.kube["c1"]); !strings.Contains(live.Status.LastError, "upgrade from 1.33 to 1.36 refused") {
		t.Errorf("status %+v, want the refusal", live.Status)
	}
	if n := len(conn.applier["c1"].(*fakeApplier).versions); n != 0 {
		t.Errorf("applied %d times after a refused upgrade", n)
	}
}

// L43: the controller runs the e2e suite once a cluster reached a version
// it has no result for, records it (the suite writes it to the status),
// runs it again after the next change, and again after a suite that was
// cut off; a failed suite is an Event and a metric, not a failed pass.
func TestControllerRunsE2EAfterChange(t *testing.T) {
	ctx := context.Background()
	fl := newTestFleet("c1")
	conn := newFakeConnector("c1")
	clk := clocktesting.NewFakeClock(now)
	var runs []string
	pass, cutOff := true, false
	runner := func(ctx context.Context, cl *fleet.Cluster, conn *Conn, res *render.Result) (E2EResult, error) {
		live, err := ReadStatus(ctx, conn.Kube)
		if err != nil {
			return E2EResult{}, err
		}
		runs = append(runs, live.Status.AppliedVersion)
		if cutOff {
			return E2EResult{}, errors.New("killed")
		}
		r := E2EResult{Cluster: cl.ID, Revision: live.Status.ChannelRevision, Version: live.Status.AppliedVersion, Passed: pass,
			Checks: []CheckResult{{Name: "deployment-rollout", Result: CheckPassed}}}
		if !pass {
			r.Checks = append(r.Checks, CheckResult{Name: "service-endpoints", Result: CheckFailed})
		}
		return r, WriteE2E(ctx, conn.Kube, r)
	}
	reg := prometheus.NewRegistry()
	c, err := New(Options{LoadFleet: fl.load, Connector: conn, Clock: clk, Interval: time.Minute, HealthTimeout: time.Second, E2E: runner, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	step := func(want int, what string) Result {
		t.Helper()
		clk.Step(2 * time.Minute)
		res, err := c.Pass(ctx)
		if err != nil || res[0].Err != nil {
			t.Fatalf("%s: %+v (%v)", what, res, err)
		}
		if len(runs) != want {
			t.Fatalf("%s: %d e2e runs (%v), want %d", what, len(runs), runs, want)
		}
		return res[0]
	}
	r := step(1, "first pass")
	if live := readStatus(t, conn.kube["c1"]); live.E2E == nil || !live.E2E.Passed || live.E2E.Version != r.Status.AppliedVersion {
		t.Fatalf("recorded e2e %+v, want passed at %s", live.E2E, r.Status.AppliedVersion)
	}
	step(1, "nothing changed")

	fl.set("manifests/app/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: default}\ndata: {a: b}\n")
	pass = false
	r = step(2, "after a change")
	if live := readStatus(t, conn.kube["c1"]); live.E2E == nil || live.E2E.Passed {
		t.Fatalf("recorded e2e %+v, want failed", live.E2E)
	}
	if r.Status.Phase != PhaseReconciled {
		t.Errorf("a failed suite failed the pass: %+v", r.Status)
	}
	// The fake clientset ignores generateName, so Events are read from its
	// actions rather than listed.
	found := false
	for _, a := range conn.kube["c1"].Actions() {
		if ca, ok := a.(k8stesting.CreateAction); ok && a.GetResource().Resource == "events" {
			if e, ok := ca.GetObject().(*corev1.Event); ok && e.Reason == "E2EFailed" && strings.Contains(e.Message, "failed: service-endpoints") {
				found = true
			}
		}
	}
	if !found {
		t.Error("no E2EFailed Event naming the failed check")
	}

	fl.set("manifests/app/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: default}\ndata: {a: c}\n")
	cutOff = true
	step(3, "a suite cut off")
	cutOff, pass = false, true
	step(4, "the next pass runs it again")
	step(4, "and then not again")
	if got := testutil.ToFloat64(c.metrics.e2e.WithLabelValues("c1", "error")); got != 1 {
		t.Errorf("bosun_lifecycle_e2e_runs_total{result=error} = %v, want 1", got)
	}
}
