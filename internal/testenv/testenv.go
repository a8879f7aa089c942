// Package testenv gives integration tests a real control plane: one per test
// package, set up in TestMain, started on first use and shared by the
// package's tests, with
// helpers to make kwok nodes and namespaces and to wait for conditions.
//
// Integration test files carry the build tag `integration` so that
// `make test-unit` needs no binaries:
//
//	//go:build integration
//
//	func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }
//
//	func TestSomething(t *testing.T) {
//		env := testenv.Get(t)
//		ns := env.Namespace(t)
//		env.CreateNode(t, controlplane.NodeSpec{Name: "n1", CPU: "8"})
//		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) { ... })
//	}
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/controlplane"
)

// Options choose what the package's control plane runs.
type Options struct {
	// Pods adds kube-scheduler, kube-controller-manager and kwok, so that
	// workloads get pods that run on kwok nodes. Without it the control
	// plane is etcd and kube-apiserver only (fast, enough for API tests).
	Pods bool
	// NodeBootDelay is the default boot delay of kwok nodes (default 0).
	NodeBootDelay time.Duration
}

// Env is the running control plane of a test package.
type Env struct {
	// ControlPlane is the running control plane.
	ControlPlane *controlplane.ControlPlane
	// Client is an admin clientset.
	Client kubernetes.Interface
	// Dynamic is an admin dynamic client.
	Dynamic dynamic.Interface
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig string
}

var (
	options  Options
	started  sync.Once
	current  *Env
	startErr error
)

// Main runs the package's tests and then stops the control plane, if one
// was started, and exits. Call it from TestMain. The control plane starts on
// the first Get, so benchmarks and tests that never ask for one pay nothing.
func Main(m *testing.M, opts Options) {
	options = opts
	code := m.Run()
	if current != nil {
		if err := current.ControlPlane.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stopping control plane: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// start brings up the package's control plane once.
func start() (*Env, error) {
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		return nil, err
	}
	cp, err := controlplane.Start(context.Background(), controlplane.Options{
		Name:              "test",
		Binaries:          bins,
		Scheduler:         options.Pods,
		ControllerManager: options.Pods,
		Kwok:              options.Pods,
		NodeBootDelay:     options.NodeBootDelay,
		UnsafeNoFsync:     true,
		StartTimeout:      3 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("starting control plane: %w", err)
	}
	env, err := newEnv(cp)
	if err != nil {
		_ = cp.Stop()
		return nil, err
	}
	return env, nil
}

func newEnv(cp *controlplane.ControlPlane) (*Env, error) {
	cfg := cp.RESTConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building clientset, %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building dynamic client, %w", err)
	}
	return &Env{ControlPlane: cp, Client: cs, Dynamic: dyn, Kubeconfig: cp.KubeconfigPath}, nil
}

// Get returns the package's environment, starting its control plane on the
// first call. A missing binary or a failed start fails the test with the
// reason (run `make tools`); later tests fail the same way without retrying.
func Get(t testing.TB) *Env {
	t.Helper()
	started.Do(func() { current, startErr = start() })
	if startErr != nil {
		t.Fatalf("testenv: %v", startErr)
	}
	return current
}

// RESTConfig returns a fresh admin client configuration.
func (e *Env) RESTConfig() *rest.Config { return e.ControlPlane.RESTConfig() }

var nsSeq atomic.Int64

// Namespace creates a namespace with a unique name for the test and deletes
// it when the test ends, pods first: once the test has ended none of its
// pods is left, so a pending pod of one test never asks the next test's
// provisioner for capacity (tests of a package share one control plane).
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, nsSeq.Add(1))
	ctx := context.Background()
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() { e.deleteNamespace(t, name) })
	return name
}

// namespacePodsTimeout bounds how long a test's cleanup waits for the pods
// of its namespace to go.
const namespacePodsTimeout = 30 * time.Second

// deleteNamespace deletes the namespace, then its pods at once, and waits
// until none is left. The namespace is deleted first: a terminating
// namespace admits no new pod, so controllers cannot re-create what is
// deleted here, and the namespace controller removes everything else in
// its own time.
func (e *Env) deleteNamespace(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), namespacePodsTimeout)
	defer cancel()
	if err := e.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Logf("deleting namespace %s: %v", name, err)
		return
	}
	pods := e.Client.CoreV1().Pods(name)
	err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Logf("deleting the pods of namespace %s: %v", name, err)
	}
	for {
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			left := -1
			if list != nil {
				left = len(list.Items)
			}
			t.Logf("namespace %s: %d pod(s) still there after %s (err %v)", name, left, namespacePodsTimeout, err)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CreateNode creates a kwok node and deletes it when the test ends. It does
// not wait for the node to boot; see WaitNodeReady.
func (e *Env) CreateNode(t testing.TB, spec controlplane.NodeSpec) *corev1.Node {
	t.Helper()
	node, err := controlplane.NewNode(spec)
	if err != nil {
		t.Fatalf("node spec: %v", err)
	}
	created, err := e.Client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", spec.Name, err)
	}
	t.Cleanup(func() {
		err := e.Client.CoreV1().Nodes().Delete(context.Background(), spec.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("deleting node %s: %v", spec.Name, err)
		}
	})
	return created
}

// WaitNodeReady waits until the node reports Ready.
func (e *Env) WaitNodeReady(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func(ctx context.Context) (bool, error) {
		n, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return NodeReady(n), nil
	}, "node %s Ready", name)
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool { return controlplane.NodeReady(n) }

// Eventually polls cond every 100ms until it returns true, returns an error,
// or timeout passes; the last two fail the test, naming what was awaited
// (msgAndArgs: a format string and its arguments).
func Eventually(t testing.TB, timeout time.Duration, cond func(ctx context.Context) (bool, error), msgAndArgs ...any) {
	t.Helper()
	what := "condition"
	if len(msgAndArgs) > 0 {
		if f, ok := msgAndArgs[0].(string); ok {
			what = fmt.Sprintf(f, msgAndArgs[1:]...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
