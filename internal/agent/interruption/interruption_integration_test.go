//go:build integration

package interruption_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/interruption"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

// L19: a notice cordons and taints the node at once and its pods move to
// other nodes, through evictions that respect the PDB, before the instance
// goes away.
func TestIntegrationNoticeCordonsAndDrainsBeforeTermination(t *testing.T) {
	env := testenv.Get(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := localcloud.NewClientRegistry()
	reg.Add("intr", env.Client)
	cloud := localcloud.New(localcloud.Config{BootDelay: 500 * time.Millisecond, NoticePeriod: 30 * time.Second}, clock.RealClock{}, reg)
	err := cloud.AddCluster(&fleet.Cluster{ID: "intr", Region: "local", NodePools: []fleet.NodePool{{
		Name: "spot", Role: "worker", ApplicationGroup: "intr", Lifecycle: "spot",
		InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"local-a"}, MinSize: 3, MaxSize: 4,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := cloud.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	t.Cleanup(func() {
		nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=intr"})
		for _, n := range nodes.Items {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	})
	h, err := interruption.New(controller.Deps{Provider: cloud, Client: env.Client, Cluster: "intr", Logger: quiet}, interruption.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go h.Run(ctx, 200*time.Millisecond)

	ns := env.Namespace(t)
	labels := map[string]string{"app": "api"}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{fleet.LabelApplicationGroup: "intr"},
					Containers:   []corev1.Container{{Name: "api", Image: "nginx", Resources: corev1.ResourceRequirements{Requests: req}}},
				},
			},
		},
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(2)),
			Selector:     &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var victim string
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
				victim = p.Spec.NodeName
			}
		}
		return running == 3, nil
	}, "3 running api pods")

	notice, err := cloud.Interrupt(victim, "test")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func(ctx context.Context) (bool, error) {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		tainted := false
		for _, tt := range n.Spec.Taints {
			tainted = tainted || tt.Key == interruption.TaintKey
		}
		return n.Spec.Unschedulable && tainted, nil
	}, "node %s cordoned and tainted", victim)
	testenv.Eventually(t, 25*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == victim && p.DeletionTimestamp == nil {
				return false, nil
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 3, nil
	}, "api pods moved off %s", victim)
	if time.Now().After(notice.TerminationTime) {
		t.Errorf("drained after the termination time %s", notice.TerminationTime)
	}
	g, err := cloud.NodeGroup(ctx, "intr/spot")
	if err != nil || g.Lifecycle != provider.Spot {
		t.Fatalf("group %+v, %v", g, err)
	}
}
