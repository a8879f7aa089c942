//go:build integration

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/cli"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/e2e"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/render"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

const pool = "e2e-workers"

// nodes creates n Ready kwok nodes of the test pool.
func nodes(t *testing.T, env *testenv.Env, prefix string, n int) {
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		env.CreateNode(t, controlplane.NodeSpec{Name: name, Labels: map[string]string{fleet.LabelPool: pool}})
		env.WaitNodeReady(t, name, time.Minute)
	}
}

// rendered renders a one-cluster fleet whose only add-on is a Deployment
// with the given node selector, and applies it.
func rendered(t *testing.T, env *testenv.Env, selector string) *render.Result {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("clusters/e2e-dev.yaml", `id: e2e-dev
environment: test
provider: local
region: local
kubernetesVersion: "1.33"
nodePools:
  - name: e2e-workers
    role: worker
    applicationGroup: e2e
    lifecycle: on-demand
    instanceTypes: [m6a.large]
    zones: [local-a]
    minSize: 1
    maxSize: 3
`)
	write("manifests/addon/addon.yaml", fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: e2e-addon
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: addon
  namespace: e2e-addon
spec:
  replicas: 1
  selector:
    matchLabels: {app: addon}
  template:
    metadata:
      labels: {app: addon}
    spec:
      nodeSelector: {%s}
      containers:
        - name: addon
          image: registry.k8s.io/pause:3.10
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {memory: 16Mi}
`, selector))
	f, err := fleet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(context.Background(), "e2e-dev")
	if err != nil {
		t.Fatal(err)
	}
	a, err := apply.New(env.RESTConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ar, err := a.Apply(context.Background(), res, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ar.Err(); err != nil {
		t.Fatal(err)
	}
	return res
}

// standInProvisioner creates a kwok node of the pool for every
// unschedulable pod in a suite namespace, as the provisioner would (the real one needs
// a cloud; here the check's logic is what is tested). It counts nodes.
func standInProvisioner(ctx context.Context, t *testing.T, env *testenv.Env) *atomic.Int32 {
	var made atomic.Int32
	go func() {
		seen := map[string]bool{}
		for ctx.Err() == nil {
			pods, err := env.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
			if err == nil {
				for _, p := range pods.Items {
					if !strings.HasPrefix(p.Namespace, "bosun-e2e-") || seen[p.Namespace+"/"+p.Name] || !unschedulable(&p) {
						continue
					}
					seen[p.Namespace+"/"+p.Name] = true
					name := fmt.Sprintf("e2e-new-%d", made.Add(1))
					node, err := controlplane.NewNode(controlplane.NodeSpec{Name: name, Labels: map[string]string{fleet.LabelPool: pool}})
					if err == nil {
						_, err = env.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
					}
					if err != nil {
						t.Logf("stand-in provisioner: %v", err)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		for i := int32(1); i <= made.Load(); i++ {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), fmt.Sprintf("e2e-new-%d", i), metav1.DeleteOptions{})
		}
	})
	return &made
}

// unschedulable: the scheduler found no node for the pod (what a
// provisioner reacts to), not a pod merely waiting for its first try.
func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

func checks(r lifecycle.E2EResult) map[string]lifecycle.CheckResult {
	out := map[string]lifecycle.CheckResult{}
	for _, c := range r.Checks {
		out[c.Name] = c
	}
	return out
}

// TestSuitePassesAndRecords (L43): every check passes on a healthy
// cluster, the namespace is gone afterwards and the result is in the
// status ConfigMap next to the controller's status, which stays.
func TestSuitePassesAndRecords(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes(t, env, "e2e-pass", 2)
	res := rendered(t, env, "node.bosun.dev/pool: "+pool)
	made := standInProvisioner(ctx, t, env)
	if err := lifecycle.WriteStatus(ctx, env.Client, lifecycle.Status{Cluster: "e2e-dev", Phase: lifecycle.PhaseReconciled, AppliedVersion: "v-1", ChannelRevision: "abc123"}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r, err := e2e.Run(ctx, e2e.Options{
		Cluster: "e2e-dev", Kube: env.Client, Config: env.RESTConfig(), Rendered: res,
		PoolSelector: map[string]string{fleet.LabelPool: pool}, Timeout: time.Minute, Record: true, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if !r.Passed {
		t.Fatalf("suite failed: %+v", r.Checks)
	}
	cs := checks(r)
	for _, name := range []string{e2e.CheckDeployment, e2e.CheckService, e2e.CheckPDB, e2e.CheckProvisioner, e2e.CheckDownscaler, e2e.CheckAddons, e2e.CheckCleanup} {
		if cs[name].Result != lifecycle.CheckPassed {
			t.Errorf("check %s: %+v, want passed", name, cs[name])
		}
	}
	if made.Load() != 1 {
		t.Errorf("the provisioner was asked for %d nodes, want 1 (one pending pod)", made.Load())
	}
	if r.Revision != "abc123" || r.Version != "v-1" {
		t.Errorf("revision %q version %q, want the status's abc123 and v-1", r.Revision, r.Version)
	}
	nss, err := env.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: e2e.LabelSuite})
	if err != nil {
		t.Fatal(err)
	}
	if len(nss.Items) != 0 {
		t.Errorf("the suite left namespace %s", nss.Items[0].Name)
	}
	live, err := lifecycle.ReadStatus(ctx, env.Client)
	if err != nil {
		t.Fatal(err)
	}
	if live.E2E == nil || !live.E2E.Passed || live.E2E.Revision != "abc123" || len(live.E2E.Checks) != 7 {
		t.Errorf("recorded e2e result %+v, want a passed run at abc123 with 7 checks", live.E2E)
	}
	if live.Status.AppliedVersion != "v-1" {
		t.Errorf("the controller's status was changed: %+v", live.Status)
	}
}

// TestSuiteFailsOnUnhealthyAddon: an add-on that cannot run fails its
// check, naming it, and the failed run is recorded; a missing provisioner
// is a skip, not a failure.
func TestSuiteFailsOnUnhealthyAddon(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	nodes(t, env, "e2e-fail", 2)
	res := rendered(t, env, "no-such-label: x")
	r, err := e2e.Run(ctx, e2e.Options{
		Cluster: "e2e-dev", Kube: env.Client, Config: env.RESTConfig(), Rendered: res,
		SkipProvisioner: "no provisioner here", Timeout: 5 * time.Second, Record: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := checks(r)
	if r.Passed || cs[e2e.CheckAddons].Result != lifecycle.CheckFailed || !strings.Contains(cs[e2e.CheckAddons].Message, "Deployment e2e-addon/addon") {
		t.Fatalf("result %+v: want the addons check failed naming Deployment e2e-addon/addon", r)
	}
	if c := cs[e2e.CheckProvisioner]; c.Result != lifecycle.CheckSkipped || c.Message != "no provisioner here" {
		t.Errorf("provisioner check %+v, want skipped with the reason", c)
	}
	if cs[e2e.CheckPDB].Result != lifecycle.CheckPassed {
		t.Errorf("pdb check %+v, want passed", cs[e2e.CheckPDB])
	}
	live, err := lifecycle.ReadStatus(ctx, env.Client)
	if err != nil {
		t.Fatal(err)
	}
	if live.E2E == nil || live.E2E.Passed {
		t.Errorf("recorded e2e result %+v, want a failed run", live.E2E)
	}
	_ = env.Client.CoreV1().Namespaces().Delete(ctx, "e2e-addon", metav1.DeleteOptions{})
}

// `bosun e2e` on the command line, without a fleet: the add-on check is
// skipped with the reason, the provisioner check as asked, and the JSON
// result is what the status records.
func TestCommandLine(t *testing.T) {
	env := testenv.Get(t)
	nodes(t, env, "e2e-cli", 2)
	var out, errOut strings.Builder
	err := cli.Run(context.Background(), iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		[]string{"e2e", "--cluster", "test", "--kubeconfig", env.Kubeconfig, "--provisioner", "skip", "--timeout", "1m", "-o", "json"})
	if err != nil {
		t.Fatalf("bosun e2e: %v\n%s%s", err, out.String(), errOut.String())
	}
	var r lifecycle.E2EResult
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("output is not the JSON result: %v\n%s", err, out.String())
	}
	cs := checks(r)
	if !r.Passed || cs[e2e.CheckAddons].Result != lifecycle.CheckSkipped || cs[e2e.CheckProvisioner].Message != "--provisioner skip" {
		t.Errorf("result %+v", r)
	}
	live, err := lifecycle.ReadStatus(context.Background(), env.Client)
	if err != nil {
		t.Fatal(err)
	}
	if live.E2E == nil || live.E2E.Started.IsZero() || !live.E2E.Started.Equal(r.Started) {
		t.Errorf("recorded %+v, want the printed run", live.E2E)
	}
}
