//go:build integration

package lifecycle_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/render"
	"github.com/bosun-platform/bosun/internal/testenv"
)

var (
	bosunOnce sync.Once
	bosunBin  string
	bosunErr  error
)

// bosunBinary builds cmd/bosun once for the package's subprocess tests.
func bosunBinary(t testing.TB) string {
	t.Helper()
	bosunOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bosun-lifecycle-bin-")
		if err != nil {
			bosunErr = err
			return
		}
		bosunBin = filepath.Join(dir, "bosun")
		cmd := exec.Command("go", "build", "-o", bosunBin, "./cmd/bosun")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			bosunErr = err
			bosunErr = &buildError{out: string(out), err: err}
		}
	})
	if bosunErr != nil {
		t.Fatalf("building bosun: %v", bosunErr)
	}
	return bosunBin
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// controllerProcess is `bosun controller` running as a subprocess.
type controllerProcess struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func (w *world) startProcess(stateDir string) *controllerProcess {
	w.t.Helper()
	out := &bytes.Buffer{}
	cmd := exec.Command(bosunBinary(w.t), "controller", "--fleet", w.dir, "--kubeconfig", w.env.Kubeconfig,
		"--interval", "300ms", "--local-cloud", stateDir, "--health-timeout", "2m", "--e2e", "off")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	p := &controllerProcess{cmd: cmd, out: out}
	w.t.Cleanup(func() {
		p.kill9()
		if w.t.Failed() {
			w.t.Logf("output of bosun controller (pid %d):\n%s", cmd.Process.Pid, out.String())
		}
	})
	return p
}

// kill9 sends SIGKILL to the process (by its PID) and reaps it.
func (p *controllerProcess) kill9() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// TestIntegrationKill9MidApplyAndMidRoll (L42): `bosun controller` runs as
// a subprocess and is killed with SIGKILL while it waits for an applied
// Deployment to become healthy, and again while a node pool is rolled; a
// new process finishes each time: the status is consistent (applied =
// desired, no error, no roll left), every old node was drained once and
// only once (the drain-start annotation is never set twice), and the PDB
// was never broken.
func TestIntegrationKill9MidApplyAndMidRoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(t, "test", "m5.xlarge", "", 6, 5) // the kubeconfig's context is bosun-test
	// minReadySeconds keeps the health wait after the apply open for a
	// few seconds: the window of the first kill.
	w.write("manifests/app/app.yaml", strings.Replace(appYAML, "  replicas: {{ .Vars.replicas }}\n", "  replicas: {{ .Vars.replicas }}\n  minReadySeconds: 3\n", 1))
	w.cloud.ServeInfra(w.infra) // as bosun up serves it
	url, _, err := w.cloud.Serve(ctx, "kill-test-token")
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	if err := local.WriteEndpoint(stateDir, local.Endpoint{URL: url, Token: "kill-test-token"}); err != nil {
		t.Fatal(err)
	}

	// 1. Mid-apply: the Deployment exists, not all of it is available,
	// and no status says Reconciled.
	p := w.startProcess(stateDir)
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		d, err := w.env.Client.AppsV1().Deployments(w.id).Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if d.Status.AvailableReplicas >= 6 {
			return false, nil
		}
		live, err := lifecycle.ReadStatus(ctx, w.env.Client)
		return err == nil && live.Status.Phase != lifecycle.PhaseReconciled, err
	}, "the controller applying (Deployment created, not yet available)")
	p.kill9()
	if st := w.status(ctx); st.Phase == lifecycle.PhaseReconciled {
		t.Fatalf("killed after the pass ended, not mid-apply: %+v", st)
	}
	p = w.startProcess(stateDir)
	st := w.waitPhase(lifecycle.PhaseReconciled, 2*time.Minute, true)
	if st.AppliedVersion != st.DesiredVersion || st.ManifestsVersion != st.DesiredVersion || st.LastError != "" {
		t.Fatalf("status after the restart: %+v", st)
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		d, err := w.env.Client.AppsV1().Deployments(w.id).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 6, err
	}, "web available after the restart")

	// 2. Mid-roll: the pool's instance types change (the group's template
	// is also updated here, so the roll starts at once), and the
	// controller is killed once a node's drain started.
	lowest := w.sampleAvailable(ctx)
	drains := w.watchDrains(ctx)
	w.write("clusters/test.yaml", clusterYAML("test", "m6i.xlarge", ""))
	f, err := fleet.Load(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(ctx, w.id)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := provider.SpecFor(res.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.infra.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func(context.Context) (bool, error) { return drains.count() >= 1, nil }, "a node draining")
	p.kill9()
	w.startProcess(stateDir) // stopped by its cleanup
	st = w.waitPhase(lifecycle.PhaseReconciled, 5*time.Minute, true)
	if st.Roll != nil || st.LastError != "" || st.AppliedVersion != st.DesiredVersion {
		t.Errorf("status after the roll: %+v", st)
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
