//go:build integration

package agent

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

// The command as a user types it: --kubeconfig, --once, then --dry-run --at.
func TestOnceFromTheCommandLine(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	replicas := int32(3)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: map[string]string{"downscaler/grace-period": "0s"}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}},
			}},
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		cmd.SetArgs(append([]string{"--kubeconfig", env.Kubeconfig, "--namespace", ns, "--controllers", "downscaler",
			"--default-uptime", "Mon-Fri 08:00-18:00 UTC", "--log-format", "text"}, args...))
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("bosun agent %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	sat := time.Now().AddDate(0, 0, 1)
	for sat.Weekday() != time.Saturday {
		sat = sat.AddDate(0, 0, 1)
	}
	out := run("--once", "--dry-run", "--at", sat.Format("2006-01-02")+"T12:00")
	if !strings.Contains(out, "would: ScaledDown Deployment "+ns+"/web 3 -> 0") {
		t.Errorf("preview output:\n%s", out)
	}
	got, err := env.Client.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || *got.Spec.Replicas != 3 {
		t.Fatalf("the preview changed the deployment (%v)", err)
	}
	// A real --once writes: downtime "always" wins over the uptime window.
	out = run("--once", "--default-downtime", "always")
	got, err = env.Client.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || *got.Spec.Replicas != 0 || got.Annotations["downscaler/original-replicas"] != "3" {
		t.Errorf("--once did not scale down (%v):\n%s", err, out)
	}
}
