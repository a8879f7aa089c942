//go:build integration

package drift_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/cli"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

const clusterYAML = `id: %ID%
environment: test
provider: local
region: local
kubernetesVersion: "1.33"
nodePools:
  - name: workers
    role: worker
    applicationGroup: web
    lifecycle: on-demand
    instanceTypes: [m6a.large]
    zones: [local-a]
    minSize: 1
    maxSize: 2
`

const manifests = `apiVersion: v1
kind: Namespace
metadata:
  name: drift-test
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: drift-test
data:
  mode: strict
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: drift-test
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
`

// TestDrift (L49): a cluster at its rendered state has no drift; a live
// edit by someone else is reported (exit 1) with the object, and --diff
// shows the change; a cluster of the fleet that cannot be reached is
// reported as not checked.
func TestDrift(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
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
	// The test kubeconfig's context is bosun-test; "gone" has none.
	write("clusters/test.yaml", strings.ReplaceAll(clusterYAML, "%ID%", "test"))
	write("clusters/gone.yaml", strings.ReplaceAll(clusterYAML, "%ID%", "gone"))
	write("manifests/app/app.yaml", manifests)
	f, err := fleet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := apply.New(env.RESTConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ar, err := a.Apply(ctx, res, apply.Options{}); err != nil || ar.Err() != nil {
		t.Fatalf("apply: %v %v", err, ar.Err())
	}
	drift := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := cli.Run(ctx, iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
			append([]string{"drift", "--fleet", dir, "--kubeconfig", env.Kubeconfig}, args...))
		return out.String(), err
	}
	out, err := drift("--cluster", "test")
	if err != nil || !strings.Contains(out, "none") {
		t.Fatalf("a cluster at its rendered state: %v\n%s", err, out)
	}

	cm, err := env.Client.CoreV1().ConfigMaps("drift-test").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["mode"] = "lenient"
	if _, err := env.Client.CoreV1().ConfigMaps("drift-test").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	out, err = drift("--cluster", "test", "--diff")
	if err == nil || !strings.Contains(out, "changed:") || !strings.Contains(out, "settings") || !strings.Contains(out, "-  mode: lenient") {
		t.Fatalf("after a live edit: %v\n%s", err, out)
	}
	// The whole fleet: the unreachable cluster is reported too.
	out, err = drift()
	if err == nil || !strings.Contains(out, "gone") || !strings.Contains(out, "not checked") {
		t.Fatalf("whole fleet: %v\n%s", err, out)
	}
	// Nothing was changed by drift.
	cm, err = env.Client.CoreV1().ConfigMaps("drift-test").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || cm.Data["mode"] != "lenient" {
		t.Fatalf("drift changed the live object: %v %v", cm.Data, err)
	}
}
