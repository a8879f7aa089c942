//go:build integration

package agent

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/overprovisioner"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// L12 end to end: on a full node, a high-priority pod preempts the pause
// pod and runs on the node that is already there, without waiting for a
// new one; the evicted pause pod turns pending, the provisioner adds a
// node for it (pause pods at -10 are above the scale-up cutoff) and the
// headroom is back.
func TestHighPriorityPodPreemptsPausePod(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const cluster, pool = "agent-preempt", "preempt"
	taint := fleet.Taint{Key: "node.bosun.dev/dedicated", Value: pool, Effect: "NoSchedule"}

	reg := localcloud.NewClientRegistry()
	reg.Add(cluster, env.Client)
	cloud := localcloud.New(localcloud.Config{BootDelay: 3 * time.Second}, clock.RealClock{}, reg)
	if err := cloud.AddCluster(&fleet.Cluster{ID: cluster, Region: "local", NodePools: []fleet.NodePool{{
		Name: pool, Role: fleet.RoleDedicated, Lifecycle: "spot", InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"local-a"},
		MinSize: 1, MaxSize: 3, Priority: 40, Taints: []fleet.Taint{taint},
	}}}); err != nil {
		t.Fatal(err)
	}
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	t.Cleanup(func() {
		nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelPool + "=" + pool})
		for _, n := range nodes.Items {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	})

	ns := env.Namespace(t)
	high := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "preempt-test-high"}, Value: 1000}
	if _, err := env.Client.SchedulingV1().PriorityClasses().Create(ctx, high, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.SchedulingV1().PriorityClasses().Delete(context.Background(), high.Name, metav1.DeleteOptions{})
	})
	// A real 1.5-CPU pod sets the pause pod's auto size to 1.65 CPU; with
	// both on the 4-CPU node, another 1.5-CPU pod fits only by preemption.
	app := func(name, priorityClass string) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						PriorityClassName:             priorityClass,
						NodeSelector:                  map[string]string{fleet.LabelPool: pool},
						Tolerations:                   []corev1.Toleration{{Key: taint.Key, Operator: corev1.TolerationOpEqual, Value: taint.Value, Effect: corev1.TaintEffectNoSchedule}},
						TerminationGracePeriodSeconds: ptr.To[int64](0),
						Containers:                    []corev1.Container{{Name: "app", Image: "registry.example/app:1", Resources: corev1.ResourceRequirements{Requests: req}}},
					},
				},
			},
		}
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, app("base", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podsOf := func(ctx context.Context, selector string) ([]corev1.Pod, error) {
		list, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	}
	running := func(pods []corev1.Pod) []corev1.Pod {
		var out []corev1.Pod
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				out = append(out, p)
			}
		}
		return out
	}
	var firstNode string
	testenv.Eventually(t, 90*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := podsOf(ctx, "app=base")
		if r := running(pods); err == nil && len(r) == 1 {
			firstNode = r[0].Spec.NodeName
			return true, nil
		}
		return false, err
	}, "the base pod to run on the pool's first node")

	// One pause pod, whatever the pool's size.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "overprovisioning", Namespace: ns},
		Data: map[string]string{"linear": `{"coresPerReplica":1000,"min":1,"max":1}`}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			RESTConfig: env.RESTConfig(), Controllers: []string{agentcmd.ControllerProvisioner, agentcmd.ControllerOverprovisioner},
			Interval: 200 * time.Millisecond, Logger: quiet, Overprovisioner: ns + "/overprovisioning",
			// The scheduler's preemption, not the burst release (see
			// TestBurstReleaseRunsBurstWithoutPreemption).
			OverprovisionerLeaveToPreemption: true,
			Capacity:                         Capacity{Provider: cloud, Cluster: cluster, Interval: 200 * time.Millisecond},
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	pause := overprovisioner.LabelManaged + "=pool-" + pool
	testenv.Eventually(t, 90*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := podsOf(ctx, pause)
		r := running(pods)
		return err == nil && len(r) == 1 && r[0].Spec.NodeName == firstNode, err
	}, "the pause pod to take the headroom on %s", firstNode)

	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, app("urgent", high.Name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := podsOf(ctx, "app=urgent")
		return err == nil && len(running(pods)) == 1, err
	}, "the high-priority pod to run")
	pods, err := podsOf(ctx, "app=urgent")
	if err != nil {
		t.Fatal(err)
	}
	if got := running(pods)[0].Spec.NodeName; got != firstNode {
		t.Errorf("the high-priority pod runs on %s, want %s: it waited for a new node instead of preempting the pause pod", got, firstNode)
	}

	testenv.Eventually(t, 90*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := podsOf(ctx, pause)
		r := running(pods)
		return err == nil && len(r) == 1 && r[0].Spec.NodeName != firstNode, err
	}, "the evicted pause pod to run again on a node the provisioner added")
	g, err := cloud.NodeGroup(ctx, localcloud.GroupID(cluster, pool))
	if err != nil {
		t.Fatal(err)
	}
	if g.TargetSize != 2 {
		t.Errorf("pool target size %d, want 2 (one node added for the headroom)", g.TargetSize)
	}
}
