//go:build integration

package overprovisioner_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

func TestIntegrationPauseDeploymentsPerTarget(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	for _, name := range []string{"general-1", "general-2"} {
		env.CreateNode(t, controlplane.NodeSpec{Name: name, CPU: "4", Memory: "16Gi"})
	}
	dedicatedTaint := corev1.Taint{Key: "node.bosun.dev/dedicated", Value: "checkout", Effect: corev1.TaintEffectNoSchedule}
	env.CreateNode(t, controlplane.NodeSpec{Name: "checkout-1", CPU: "8", Memory: "32Gi", Taints: []corev1.Taint{dedicatedTaint},
		Labels: map[string]string{fleet.LabelRole: fleet.RoleDedicated, fleet.LabelPool: "checkout"}})
	env.CreateNode(t, controlplane.NodeSpec{Name: "system-1", CPU: "4", Memory: "16Gi",
		Taints: []corev1.Taint{{Key: "node.bosun.dev/role", Value: "system", Effect: corev1.TaintEffectNoSchedule}}})
	for _, n := range []string{"general-1", "general-2", "checkout-1"} {
		env.WaitNodeReady(t, n, time.Minute)
	}
	// A real 1.5-CPU pod on the general nodes sets the auto size.
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	app := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "app"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "nginx", Resources: corev1.ResourceRequirements{Requests: req}}}},
			},
		},
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1, err
	}, "app running")

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "overprovisioning", Namespace: ns},
		Data: map[string]string{"linear": `{"coresPerReplica":4,"min":1}`}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := overprovisioner.New(controller.Deps{Client: env.Client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		overprovisioner.Options{Namespace: ns, ConfigMap: "overprovisioning"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := env.Client.SchedulingV1().PriorityClasses().Get(ctx, overprovisioner.PriorityClassName, metav1.GetOptions{})
	if err != nil || pc.Value != -10 {
		t.Fatalf("priority class %+v, %v: want value -10", pc, err)
	}
	general, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "overprovisioning-cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 2 general nodes x 4 CPUs = 8 cores / 4 = 2 replicas.
	if *general.Spec.Replicas != 2 {
		t.Errorf("cluster target replicas %d, want 2", *general.Spec.Replicas)
	}
	if got := general.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().MilliValue(); got != 1650 {
		t.Errorf("auto size %dm, want 1650m (10%% above the largest real pod, L12)", got)
	}
	checkout, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "overprovisioning-pool-checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no pause deployment for the dedicated pool (L06): %v", err)
	}
	spec := checkout.Spec.Template.Spec
	if *checkout.Spec.Replicas != 2 || spec.NodeSelector[fleet.LabelPool] != "checkout" || len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != dedicatedTaint.Key {
		t.Errorf("dedicated pause deployment: replicas %d, selector %v, tolerations %v", *checkout.Spec.Replicas, spec.NodeSelector, spec.Tolerations)
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "overprovisioning-pool-system", metav1.GetOptions{}); err == nil {
		t.Error("a system (tainted, not dedicated) node got headroom")
	}

	// Bad config: a clear error naming the ConfigMap, and nothing changes.
	cm.Data = map[string]string{"linear": `{"coresPerReplica": "four"}`}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The cache sees the update a moment later.
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		err := c.Reconcile(ctx)
		return err != nil && strings.Contains(err.Error(), ns+"/overprovisioning") && strings.Contains(err.Error(), "coresPerReplica"), nil
	}, "a clear error naming the ConfigMap and the field")
	after, _ := env.Client.AppsV1().Deployments(ns).Get(ctx, "overprovisioning-cluster", metav1.GetOptions{})
	if after.Generation != general.Generation {
		t.Error("a config that did not parse changed the pause deployment")
	}

	// The dedicated pool goes away: its pause deployment is pruned.
	cm.Data = map[string]string{"linear": `{"coresPerReplica":4,"min":1}`}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.CoreV1().Nodes().Delete(ctx, "checkout-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		if err := c.Reconcile(ctx); err != nil {
			return false, nil // the cache may still hold the bad config
		}
		_, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "overprovisioning-pool-checkout", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}, "the pause deployment of a gone pool to be pruned")
}

// The shipped RBAC (deploy/agent/50-rbac-overprovisioner.yaml) is enough:
// the controller runs as the agent's service account with only that role.
func TestIntegrationRunsUnderShippedRBAC(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	stream, err := agent.RenderManifests(deploy.AgentOptions{Controllers: []string{overprovisioner.Name}, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(stream), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			continue // comments only
		}
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = env.Client.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			if !strings.Contains(o.Name, "overprovisioner") {
				continue
			}
			_, err = env.Client.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			if !strings.Contains(o.Name, "overprovisioner") {
				continue
			}
			_, err = env.Client.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			if !strings.Contains(o.Name, "overprovisioner") {
				continue
			}
			_, err = env.Client.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			if !strings.Contains(o.Name, "overprovisioner") {
				continue
			}
			_, err = env.Client.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			continue
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("applying %T: %v", obj, err)
		}
	}
	env.CreateNode(t, controlplane.NodeSpec{Name: "rbac-general", CPU: "4", Memory: "16Gi"})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "overprovisioning", Namespace: ns},
		Data: map[string]string{"linear": `{"nodesPerReplica":1}`}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":bosun-agent"}
	var requests testenv.RequestCounter
	cfg.Wrap(requests.Wrap)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := overprovisioner.New(controller.Deps{Client: cs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		overprovisioner.Options{Namespace: ns, ConfigMap: "overprovisioning"})
	if err != nil {
		t.Fatal(err)
	}
	actions, err := c.Pass(ctx)
	if err != nil {
		t.Fatalf("pass under the shipped role: %v", err)
	}
	if len(actions) == 0 {
		t.Fatal("the pass did nothing")
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "overprovisioning-cluster", metav1.GetOptions{}); err != nil {
		t.Fatalf("pause deployment not created under the shipped role: %v", err)
	}
	// Once the caches have seen the Deployment, a pass over an unchanged
	// cluster reads only the caches: no API request at all.
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		actions, err := c.Pass(ctx)
		return err == nil && len(actions) == 0, err
	}, "a pass with nothing to do")
	before := requests.Load()
	if actions, err := c.Pass(ctx); err != nil || len(actions) != 0 {
		t.Fatalf("idle pass: %v, %v", actions, err)
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("an idle pass made %d API request(s), want 0", n)
	}
	// Without the role the same identity is refused: the test can fail.
	other := env.RESTConfig()
	other.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":nobody"}
	cs2, err := kubernetes.NewForConfig(other)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := overprovisioner.New(controller.Deps{Client: cs2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		overprovisioner.Options{Namespace: ns, ConfigMap: "overprovisioning", SyncTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Pass(ctx); err == nil {
		t.Error("an identity without the role could run the overprovisioner")
	}
}
