//go:build integration

package controlplane_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
	"github.com/bosun-platform/bosun/internal/version"
)

// The package's shared control plane runs everything, so pods run.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

func TestIntegrationDeploymentRunsOnKwokNodes(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	for _, name := range []string{"spread-a", "spread-b"} {
		env.CreateNode(t, controlplane.NodeSpec{Name: name, CPU: "4", Memory: "8Gi", Labels: map[string]string{"test-pool": ns}})
	}
	env.WaitNodeReady(t, "spread-a", time.Minute)
	env.WaitNodeReady(t, "spread-b", time.Minute)

	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"test-pool": ns},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname",
						WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{Name: "web", Image: "nginx"}},
				},
			},
		},
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var nodes map[string]int
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		nodes = map[string]int{}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
				nodes[p.Spec.NodeName]++
			}
		}
		return running == 3, nil
	}, "3 running pods of deployment web")
	if len(nodes) != 2 || nodes["spread-a"] == 0 || nodes["spread-b"] == 0 {
		t.Errorf("pods per node = %v, want spread over spread-a and spread-b", nodes)
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 3, err
	}, "deployment web to report 3 ready replicas")
}

// The boot-delay stage keeps a node NotReady for the delay named in its
// annotation; the local cloud models instance boot time with it.
func TestIntegrationNodeBootDelay(t *testing.T) {
	env := testenv.Get(t)
	env.CreateNode(t, controlplane.NodeSpec{Name: "slow-boot", BootDelay: "6s"})
	n, err := env.Client.CoreV1().Nodes().Get(context.Background(), "slow-boot", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if testenv.NodeReady(n) {
		t.Fatal("node Ready right after creation despite a 6s boot delay")
	}
	env.WaitNodeReady(t, "slow-boot", time.Minute)
	n, err = env.Client.CoreV1().Nodes().Get(context.Background(), "slow-boot", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var readySince time.Time
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			readySince = c.LastTransitionTime.Time
		}
	}
	if elapsed := readySince.Sub(n.CreationTimestamp.Time); elapsed < 5*time.Second {
		t.Errorf("node turned Ready %s after creation, want >= the 6s boot delay (second-granularity timestamps)", elapsed)
	}
}

func TestIntegrationJobPodsComplete(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	env.CreateNode(t, controlplane.NodeSpec{Name: "job-node", Labels: map[string]string{"test-pool": ns}})
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{"test-pool": ns},
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}
	if _, err := env.Client.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		j, err := env.Client.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
		return err == nil && j.Status.Succeeded == 1, err
	}, "job once to succeed")
}

func startBare(t *testing.T, name string) *controlplane.ControlPlane {
	t.Helper()
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.Start(context.Background(), controlplane.Options{Name: name, Binaries: bins, UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

func TestIntegrationStopLeavesNothingBehind(t *testing.T) {
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.Start(context.Background(), controlplane.Options{
		Name: "stopper", Binaries: bins, UnsafeNoFsync: true,
		Scheduler: true, ControllerManager: true, Kwok: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	procs, ports := cp.Processes(), cp.Ports()
	if len(procs) != 5 {
		t.Fatalf("started %d processes, want 5: %v", len(procs), procs)
	}
	for _, p := range procs {
		if !p.Alive() {
			t.Fatalf("%s (pid %d) not alive after Start", p.Name, p.PID)
		}
	}
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) still alive after Stop", p.Name, p.PID)
		}
	}
	for _, port := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Errorf("port %d still taken after Stop: %v", port, err)
			continue
		}
		l.Close()
	}
	if err := cp.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestIntegrationTwoControlPlanesSideBySide(t *testing.T) {
	a, b := startBare(t, "side-a"), startBare(t, "side-b")
	if a.URL == b.URL || a.Dir == b.Dir {
		t.Fatalf("control planes share URL or dir: %s %s / %s %s", a.URL, a.Dir, b.URL, b.Dir)
	}
	ca, err := kubernetes.NewForConfig(a.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	cb, err := kubernetes.NewForConfig(b.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ca.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.CoreV1().Namespaces().Get(ctx, "only-in-a", metav1.GetOptions{}); err == nil {
		t.Fatal("namespace created in A is visible in B")
	}
	// Each control plane's token is its own.
	crossed := b.RESTConfig()
	crossed.BearerToken = a.RESTConfig().BearerToken
	cx, err := kubernetes.NewForConfig(crossed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cx.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("A's admin token accepted by B")
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("B stopped answering when A stopped: %v", err)
	}
	t.Logf("A at %s and B at %s ran side by side", a.URL, b.URL)
}

// The binaries built by `make tools` report the pinned version, not
// v0.0.0-master (hack/tools/build.sh sets it at link time).
func TestIntegrationServerReportsPinnedVersion(t *testing.T) {
	env := testenv.Get(t)
	info, err := env.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if info.GitVersion != version.Kubernetes {
		t.Errorf("server version %q, want %s", info.GitVersion, version.Kubernetes)
	}
}
