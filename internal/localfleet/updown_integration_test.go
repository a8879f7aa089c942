//go:build integration

package localfleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
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
	"github.com/bosun-platform/bosun/internal/console"
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
	checkCostOnRealUsage(t, m[1], "bosun-local-prod", "bosun-local-staging") // the console names clusters by kubeconfig context
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

// usageFractions are the example shop's bosun.dev/usage-fraction
// annotations (examples/fleet/manifests/shop/apps.yaml): the share of its
// requests kwok simulates each application's containers to use.
var usageFractions = map[string]float64{"checkout-api": 0.35, "shop-web": 0.7}

// getJSON decodes a console API answer into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url) //nolint:gosec // G107: the console bosun up started, on loopback
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// checkCostOnRealUsage proves the cost page and right-sizing of bosun up's
// console on measured usage (L38, L51): metrics-server serves kwok's
// simulated usage, the shop's containers use 0.35 (checkout-api) and 0.7
// (shop-web) of their requests, so each shop pod's slack is the price of
// the rest, and right-sizing calls checkout-api's requests too high and
// shop-web's fine.
func checkCostOnRealUsage(t *testing.T, consoleURL string, clusters ...string) {
	t.Helper()
	if bins, err := controlplane.FindBinaries(""); err != nil {
		t.Fatal(err)
	} else if _, err := os.Stat(bins.MetricsServer); err != nil {
		t.Fatalf("metrics-server: %v (make tools builds it); without it usage is not measured", err)
	}
	appOf := func(pod string) string {
		for app := range usageFractions {
			if strings.HasPrefix(pod, app+"-") {
				return app
			}
		}
		return ""
	}
	var rep console.CostReport
	waiting := "no answer yet"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last cost report: %s", waiting)
		}
	})
	testenv.Eventually(t, 2*time.Minute, func(context.Context) (bool, error) {
		rep = console.CostReport{}
		if err := getJSON(consoleURL+"/api/cost", &rep); err != nil {
			waiting = err.Error()
			return false, nil
		}
		for _, cl := range clusters {
			seen := map[string]bool{}
			for _, p := range rep.Pods {
				if p.Cluster != cl || p.Namespace != "shop" || appOf(p.Pod) == "" {
					continue
				}
				if p.CPUUsed >= p.CPUReq { // not measured yet: requests stand in
					waiting = fmt.Sprintf("%s/%s not measured (%+v); clusters %+v", cl, p.Pod, p, rep.Clusters)
					return false, nil
				}
				seen[appOf(p.Pod)] = true
			}
			if len(seen) != len(usageFractions) {
				waiting = fmt.Sprintf("%s: running shop applications %v of %d", cl, seen, len(usageFractions))
				return false, nil
			}
		}
		return true, nil
	}, "the console's cost report to have measured usage for every running shop pod of %v", clusters)
	nodes := map[string]console.NodeCost{}
	for _, n := range rep.Nodes {
		nodes[n.Cluster+"/"+n.Node] = n
	}
	near := func(got, want, tol float64) bool { return math.Abs(got-want) <= tol*math.Abs(want) }
	shopSlack := map[string]float64{}
	for _, p := range rep.Pods {
		app := appOf(p.Pod)
		if p.Namespace != "shop" || app == "" {
			continue
		}
		f, n := usageFractions[app], nodes[p.Cluster+"/"+p.Node]
		// CPU is a rate of kwok's cumulative counter over metrics-server's
		// scrapes; memory a gauge.
		if !near(p.CPUUsed, f*p.CPUReq, 0.1) || !near(p.MemUsedGB, f*p.MemReqGiB, 0.01) {
			t.Errorf("%s/%s: used %.3f CPU / %.3f GiB of %.3f / %.3f requested, want %.2f of requests",
				p.Cluster, p.Pod, p.CPUUsed, p.MemUsedGB, p.CPUReq, p.MemReqGiB, f)
		}
		want := (1 - f) * (p.CPUReq*n.CPUHourly + p.MemReqGiB*n.MemGiBHourly)
		if want <= 0 || !near(p.SlackUSD, want, 0.1) {
			t.Errorf("%s/%s: slack $%.5f/h, want about $%.5f/h (%.2f of the requests unused on node %s at $%.4f/core·h, $%.4f/GiB·h)",
				p.Cluster, p.Pod, p.SlackUSD, want, 1-f, p.Node, n.CPUHourly, n.MemGiBHourly)
		}
		shopSlack[p.Cluster] += p.SlackUSD
	}
	for _, cc := range rep.Clusters {
		if !cc.UsageKnown || cc.SlackUSD <= 0 || cc.SlackUSD < shopSlack[cc.Cluster]-1e-9 {
			t.Errorf("cluster %s: usage known %v, slack $%.5f/h; want measured usage and at least the shop's $%.5f/h",
				cc.Cluster, cc.UsageKnown, cc.SlackUSD, shopSlack[cc.Cluster])
		}
	}
	page, err := http.Get(consoleURL + "/cost")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if strings.Contains(string(body), "Usage is not measured") {
		t.Errorf("the cost page says usage is not measured although the metrics API serves it")
	}

	// Right-sizing pools the usage history by workload: checkout-api uses
	// 0.35 of its 500m/1Gi, so 0.35 x 1.15 is recommended and the request
	// (above 1.5 times that) is too high; shop-web at 0.7 is fine.
	type rowKey struct{ cluster, workload string }
	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		var rs console.RightSizingReport
		if err := getJSON(consoleURL+"/api/rightsizing", &rs); err != nil {
			return false, nil
		}
		rows := map[rowKey]console.RightSizing{}
		for _, r := range rs.Rows {
			if r.Namespace == "shop" && r.Container == "app" {
				rows[rowKey{r.Cluster, r.Workload}] = r
			}
		}
		for _, cl := range clusters {
			for app := range usageFractions {
				r, ok := rows[rowKey{cl, "Deployment/" + app}]
				if !ok || r.CPUP95 == 0 {
					return false, nil // no sample with a CPU rate yet
				}
			}
		}
		if len(rs.NoMetrics) > 0 {
			t.Errorf("right-sizing lists clusters without a metrics API: %v", rs.NoMetrics)
		}
		for _, cl := range clusters {
			for app, f := range usageFractions {
				r := rows[rowKey{cl, "Deployment/" + app}]
				wantVerdict := console.VerdictOK
				if app == "checkout-api" {
					wantVerdict = console.VerdictTooHigh
				}
				if r.CPUVerdict != wantVerdict || r.MemVerdict != wantVerdict {
					t.Errorf("%s shop/%s: verdicts CPU %q, memory %q; want %q (uses %.2f of its requests)", cl, app, r.CPUVerdict, r.MemVerdict, wantVerdict, f)
				}
				if !near(r.CPURecommended, f*r.CPURequest*(1+console.Headroom), 0.1) || !near(r.MemRecommendedGiB, f*r.MemRequestGiB*(1+console.Headroom), 0.01) {
					t.Errorf("%s shop/%s: recommended %.3f CPU / %.3f GiB for requests %.3f / %.3f, want %.2f of them plus %.0f%%",
						cl, app, r.CPURecommended, r.MemRecommendedGiB, r.CPURequest, r.MemRequestGiB, f, 100*console.Headroom)
				}
			}
		}
		return true, nil
	}, "right-sizing rows with CPU usage for the shop's workloads on %v", clusters)
}
