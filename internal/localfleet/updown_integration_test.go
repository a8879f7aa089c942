//go:build integration

package localfleet_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bosun-platform/bosun/internal/controlplane"
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

func TestIntegrationUpDown(t *testing.T) {
	bosun := buildBosun(t)
	state := t.TempDir()
	env := append(os.Environ(), localfleet.StateDirEnv+"="+state)

	var upOut syncBuffer
	up := exec.Command(bosun, "up", "--fleet", "testdata/small", "--boot-delay", "2s")
	up.Env, up.Stdout, up.Stderr = env, &upOut, &upOut
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Wait() }()
	t.Cleanup(func() {
		_ = up.Process.Kill()
		_, _ = controlplane.StopRecorded(localfleet.ClusterDir(state, "tiny"), time.Second)
	})

	testenv.Eventually(t, 3*time.Minute, func(context.Context) (bool, error) {
		select {
		case err := <-upDone:
			t.Fatalf("bosun up exited early: %v\n%s", err, upOut.String())
		default:
		}
		return strings.Contains(upOut.String(), "is ready"), nil
	}, "bosun up to report ready")
	if !strings.Contains(upOut.String(), "export KUBECONFIG="+localfleet.KubeconfigPath(state)) || !strings.Contains(upOut.String(), "context bosun-tiny") {
		t.Errorf("bosun up does not say how to use the cluster:\n%s", upOut.String())
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", localfleet.KubeconfigPath(state))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
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
	procs, err := controlplane.ReadPIDs(localfleet.ClusterDir(state, "tiny"))
	if err != nil || len(procs) != 5 {
		t.Fatalf("recorded processes %v, %v; want 5", procs, err)
	}

	second := exec.Command(bosun, "up")
	second.Env = env
	out, err := second.CombinedOutput()
	if err == nil {
		t.Fatalf("second bosun up succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "already running") {
		t.Errorf("second bosun up output %q does not say one is running", out)
	}

	down := exec.Command(bosun, "down")
	down.Env = env
	if out, err := down.CombinedOutput(); err != nil {
		t.Fatalf("bosun down: %v\n%s", err, out)
	}
	select {
	case err := <-upDone:
		if err != nil {
			t.Errorf("bosun up exited with %v after bosun down:\n%s", err, upOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("bosun up still running after bosun down")
	}
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) alive after bosun down", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(localfleet.KubeconfigPath(state)); !os.IsNotExist(err) {
		t.Errorf("kubeconfig of a stopped fleet left behind: %v", err)
	}
}
