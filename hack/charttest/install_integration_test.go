//go:build integration

package charttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

// helmConfig is Helm's action configuration for the test control plane,
// with releases stored as Secrets in namespace (as the helm CLI does).
func helmConfig(t *testing.T, env *testenv.Env, namespace string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &env.Kubeconfig
	flags.Namespace = &namespace
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, namespace, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The chart installs with its default values into a fresh namespace of a
// real control plane (as `helm install --create-namespace` does) and the
// agent's Deployment becomes Ready on a kwok node; uninstalling removes
// what it created, cluster-scoped RBAC included.
func TestInstall(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	node := fmt.Sprintf("chart-%d", time.Now().UnixNano()%1e6)
	env.CreateNode(t, controlplane.NodeSpec{Name: node})
	env.WaitNodeReady(t, node, time.Minute)

	ns := fmt.Sprintf("bosun-chart-%d", time.Now().UnixNano()%1e6)
	t.Cleanup(func() { _ = env.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := helmConfig(t, env, ns)
	install := action.NewInstall(cfg)
	install.ReleaseName = "bosun-agent"
	install.Namespace = ns
	install.CreateNamespace = true
	install.Timeout = 2 * time.Minute
	rel, err := install.RunWithContext(ctx, c, nil)
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	t.Logf("release %s %s: %s", rel.Name, rel.Info.Status, rel.Info.Description)

	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "bosun-agent", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Spec.Replicas != nil && d.Status.ObservedGeneration == d.Generation &&
			d.Status.ReadyReplicas == *d.Spec.Replicas && d.Status.UpdatedReplicas == *d.Spec.Replicas, nil
	}, "the agent Deployment of the chart becomes Ready")

	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=bosun-agent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != node || p.Spec.ServiceAccountName != "bosun-agent" {
			t.Errorf("pod %s on node %q as %q; want node %s, service account bosun-agent", p.Name, p.Spec.NodeName, p.Spec.ServiceAccountName, node)
		}
	}
	if _, err := env.Client.RbacV1().ClusterRoles().Get(ctx, "bosun-agent-downscaler", metav1.GetOptions{}); err != nil {
		t.Errorf("the downscaler's ClusterRole: %v", err)
	}
	if _, err := env.Client.RbacV1().ClusterRoles().Get(ctx, "bosun-agent-janitor", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the janitor's ClusterRole exists with the janitor off (err %v)", err)
	}

	if _, err := action.NewUninstall(cfg).Run("bosun-agent"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		_, errD := env.Client.AppsV1().Deployments(ns).Get(ctx, "bosun-agent", metav1.GetOptions{})
		_, errR := env.Client.RbacV1().ClusterRoles().Get(ctx, "bosun-agent-downscaler", metav1.GetOptions{})
		return apierrors.IsNotFound(errD) && apierrors.IsNotFound(errR), nil
	}, "uninstall removes the Deployment and the ClusterRole")
}
