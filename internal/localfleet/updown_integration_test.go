//go:build integration

package localfleet_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	examplefleet "github.com/bosun-platform/bosun/examples/fleet"
	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localfleet"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// syncBuffer collects a subprocess's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildBosun compiles the real CLI, so the test drives `bosun up` and
// `bosun down` as a user would, from separate processes.
func buildBosun(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bosun")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/bosun-platform/bosun/cmd/bosun")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building bosun: %v\n%s", err, out)
	}
	return bin
}

// running is a `bosun up` subprocess.
type running struct {
	bosun, state string
	env          []string
	out          *syncBuffer
	done         chan error
}

// startUp runs `bosun up args...` on a fresh state directory and waits until
// it reports the fleet ready.
func startUp(t *testing.T, bosun string, args ...string) *running {
	t.Helper()
	state := t.TempDir()
	r := &running{bosun: bosun, state: state, env: append(os.Environ(), localfleet.StateDirEnv+"="+state), out: &syncBuffer{}, done: make(chan error, 1)}
	up := exec.Command(bosun, append([]string{"up"}, args...)...)
	up.Env, up.Stdout, up.Stderr = r.env, r.out, r.out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- up.Wait() }()
	t.Cleanup(func() {
		_ = up.Process.Kill()
		dirs, _ := filepath.Glob(filepath.Join(state, "clusters", "*"))
		for _, d := range dirs {
			_, _ = controlplane.StopRecorded(d, time.Second)
		}
	})
	testenv.Eventually(t, 3*time.Minute, func(context.Context) (bool, error) {
		select {
		case err := <-r.done:
			t.Fatalf("bosun up exited early: %v\n%s", err, r.out.String())
		default:
		}
		return strings.Contains(r.out.String(), "is ready"), nil
	}, "bosun up to report ready")
	return r
}

// down runs `bosun down` and checks that up exits cleanly and every
// process recorded for the clusters is gone.
func (r *running) down(t *testing.T, clusters ...string) {
	t.Helper()
	var procs []controlplane.ProcessInfo
	// etcd, kube-apiserver, scheduler, controller-manager, kwok, and
	// metrics-server when make tools built it (the metrics API).
	want := 5
	if bins, err := controlplane.FindBinaries(""); err == nil {
		if _, err := os.Stat(bins.MetricsServer); err == nil {
			want = 6
		}
	}
	for _, id := range clusters {
		p, err := controlplane.ReadPIDs(localfleet.ClusterDir(r.state, id))
		if err != nil || len(p) != want {
			t.Fatalf("cluster %s recorded processes %v, %v; want %d", id, p, err, want)
		}
		procs = append(procs, p...)
	}
	down := exec.Command(r.bosun, "down")
	down.Env = r.env
	if out, err := down.CombinedOutput(); err != nil {
		t.Fatalf("bosun down: %v\n%s", err, out)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("bosun up exited with %v after bosun down:\n%s", err, r.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("bosun up still running after bosun down")
	}
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) alive after bosun down", p.Name, p.PID)
		}
	}
	for _, f := range []string{"kubeconfig", "cloud.json"} {
		if _, err := os.Stat(filepath.Join(r.state, f)); !os.IsNotExist(err) {
			t.Errorf("%s of a stopped fleet left behind: %v", f, err)
		}
	}
}

func clientFor(t *testing.T, state, cluster string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(localfleet.ClusterDir(state, cluster), "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestIntegrationUpDown(t *testing.T) {
	bosun := buildBosun(t)
	r := startUp(t, bosun, "--fleet", "testdata/small", "--boot-delay", "2s", "--console", "")
	state, env, upOut := r.state, r.env, r.out
	if !strings.Contains(upOut.String(), "export KUBECONFIG="+localfleet.KubeconfigPath(state)) || !strings.Contains(upOut.String(), "context bosun-tiny") {
		t.Errorf("bosun up does not say how to use the cluster:\n%s", upOut.String())
	}

	cs := clientFor(t, state, "tiny")
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 2 {
		t.Fatalf("%d nodes, want the system pool's minimum of 2", len(nodes.Items))
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !testenv.NodeReady(n) {
			t.Errorf("node %s not Ready", n.Name)
		}
		if n.Labels["node.kubernetes.io/instance-type"] != "m6i.large" || n.Labels["karpenter.sh/capacity-type"] != "on-demand" {
			t.Errorf("node %s labels %v", n.Name, n.Labels)
		}
	}
	// The agent that bosun up runs for the cluster provisions: a pod for
	// the spot pool (min 0) gets a spot node.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "needs-a-node", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{fleet.LabelApplicationGroup: "default"},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			}}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return false, err
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		return err == nil && n.Labels["karpenter.sh/capacity-type"] == "spot", err
	}, "the pending pod to run on a spot node that bosun up's provisioner asked for")

	second := exec.Command(bosun, "up")
	second.Env = env
	out, err := second.CombinedOutput()
	if err == nil {
		t.Fatalf("second bosun up succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "already running") {
		t.Errorf("second bosun up output %q does not say one is running", out)
	}

	r.down(t, "tiny")
}

// The embedded example fleet: both local clusters start, get their
// manifests applied, and leave nothing behind.
func TestIntegrationUpDownExampleFleet(t *testing.T) {
	bosun := buildBosun(t)
	r := startUp(t, bosun, "--boot-delay", "1s", "--console", "127.0.0.1:0")
	for _, id := range []string{"local-prod", "local-staging"} {
		if !strings.Contains(r.out.String(), "context bosun-"+id) {
			t.Errorf("bosun up does not list cluster %s:\n%s", id, r.out.String())
		}
		cs := clientFor(t, r.state, id)
		if _, err := cs.CoreV1().Namespaces().Get(context.Background(), "shop", metav1.GetOptions{}); err != nil {
			t.Errorf("cluster %s: the fleet's shop namespace was not applied: %v", id, err)
		}
		// At least the pools' minimum: the provisioner may already have
		// added a worker for the shop's pods (the default pools start at 0).
		nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil || len(nodes.Items) < 5 {
			t.Errorf("cluster %s: %d nodes (%v), want at least the pools' minimum of 5", id, len(nodes.Items), err)
		}
	}
	// The fleet's agent runs the overprovisioner; bosun up runs it for
	// every cluster, which makes a pause Deployment for each target the
	// pools' first nodes form.
	f, err := fleet.LoadFS(examplefleet.FS, "(embedded example fleet)")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"local-prod", "local-staging"} {
		want := pauseDeployments(f.Cluster(id))
		if len(want) == 0 {
			t.Fatalf("cluster %s: no pool starts with nodes that get headroom; the check below would prove nothing", id)
		}
		cs := clientFor(t, r.state, id)
		testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
			for _, name := range want {
				d, err := cs.AppsV1().Deployments("overprovisioning").Get(ctx, name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return false, nil
				}
				if err != nil || d.Spec.Replicas == nil || *d.Spec.Replicas < 1 {
					return false, err
				}
			}
			return true, nil
		}, "cluster %s: the overprovisioner's pause Deployments %v in namespace overprovisioning", id, want)
	}
	// The console answers over both clusters.
	m := regexp.MustCompile(`Console: (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(r.out.String())
	if m == nil {
		t.Fatalf("bosun up does not print the console URL:\n%s", r.out.String())
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		resp, err := http.Get(m[1] + "/api/search?q=coredns")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(body), "local-prod") && strings.Contains(string(body), "local-staging"), nil
	}, "console search over both clusters")
	status := exec.Command(bosun, "status")
	status.Env = r.env
	out, err := status.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "local-staging/default-spot-xlarge") {
		t.Errorf("bosun status: %v\n%s", err, out)
	}
	r.down(t, "local-prod", "local-staging")
}

// pauseDeployments names the overprovisioner's pause Deployments for the
// targets of the nodes a cluster starts with (its pools' minimum sizes).
func pauseDeployments(cl *fleet.Cluster) []string {
	var out []string
	for i := range cl.NodePools {
		p := &cl.NodePools[i]
		if p.MinSize == 0 {
			continue
		}
		if target := agentapi.PoolTarget(p); target != "" && !slices.Contains(out, agentapi.DeploymentName(target)) {
			out = append(out, agentapi.DeploymentName(target))
		}
	}
	return out
}
