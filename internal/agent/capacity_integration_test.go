//go:build integration

package agent

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/interruption"
	"github.com/bosun-platform/bosun/internal/agent/reaper"
	"github.com/bosun-platform/bosun/internal/agent/scaledown"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// The four capacity controllers run inside `bosun agent` under their
// shipped RBAC, reaching the local cloud through its endpoint file like an
// agent started with --provider local --local-cloud, through a whole life:
// spot is out, so the pending pod gets an on-demand node at once (L11,
// L21); spot comes back and the reaper moves the pod to spot and removes
// the on-demand node (L22); an interruption notice (L19) cordons and taints
// the spot node and the pod moves to a replacement; the app scales to zero
// and the scale-down removes the empty nodes.
func TestCapacityControllersUnderShippedRBAC(t *testing.T) {
	env := testenv.Get(t)
	applyShippedRBAC(t, env)
	const cluster, group = "agent-capacity", "grp-agent"

	reg := localcloud.NewClientRegistry()
	reg.Add(cluster, env.Client)
	cloud := localcloud.New(localcloud.Config{BootDelay: time.Second}, clock.RealClock{}, reg)
	pool := func(name, lc string, prio int) fleet.NodePool {
		return fleet.NodePool{Name: name, Role: "worker", ApplicationGroup: group, Lifecycle: lc,
			InstanceTypes: []string{"m5.large"}, Zones: []string{"local-a"}, MaxSize: 3, Priority: prio}
	}
	if err := cloud.AddCluster(&fleet.Cluster{ID: cluster, Region: "local", NodePools: []fleet.NodePool{
		pool(group+"-spot", "spot", 40), pool(group+"-od", "on-demand", 10),
	}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cloud.Handler("test-token"))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := local.WriteEndpoint(dir, local.Endpoint{URL: srv.URL, Token: "test-token"}); err != nil {
		t.Fatal(err)
	}

	spotOut := localcloud.OfferingKey{Lifecycle: provider.Spot}
	if err := cloud.SetCapacity(spotOut, 0, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	t.Cleanup(func() {
		nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=" + group})
		for _, n := range nodes.Items {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	})

	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:bosun-system:bosun-agent"}
	reg2 := prometheus.NewRegistry()
	scaleDown := scaledown.DefaultOptions()
	scaleDown.UnneededTime, scaleDown.DelayAfterScaleUp, scaleDown.DrainTimeout = 2*time.Second, 3*time.Second, 30*time.Second
	reaper := reaper.DefaultOptions()
	reaper.MinAge, reaper.DrainTimeout = time.Second, 30*time.Second
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			RESTConfig: cfg, Controllers: []string{agentcmd.ControllerProvisioner, agentcmd.ControllerInterruption, agentcmd.ControllerScaleDown, agentcmd.ControllerReaper},
			Interval: time.Hour, LeaderElect: true, LeaseNamespace: "bosun-system", LeaseName: "bosun-agent-capacity-test",
			Logger: quiet, Registry: reg2,
			Capacity: Capacity{
				Name: ProviderLocal, LocalCloud: dir, Cluster: cluster,
				Interval: 200 * time.Millisecond, ScaleDownInterval: 300 * time.Millisecond,
				ScaleDown: scaleDown,
				Reaper:    reaper,
			},
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()

	ns := env.Namespace(t)
	labels := map[string]string{"app": "capacity"}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "capacity", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{fleet.LabelApplicationGroup: group},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers:                    []corev1.Container{{Name: "app", Image: "registry.example/app:1", Resources: corev1.ResourceRequirements{Requests: req}}},
				},
			},
		},
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningNode := func(what string, not string) string {
		var node string
		testenv.Eventually(t, 90*time.Second, func(ctx context.Context) (bool, error) {
			select {
			case err := <-done:
				done <- err
				return false, err
			default:
			}
			pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=capacity"})
			if err != nil {
				return false, err
			}
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Spec.NodeName != not {
					node = p.Spec.NodeName
					return true, nil
				}
			}
			return false, nil
		}, "%s", what)
		return node
	}
	capacityType := func(node string) string {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n.Labels["karpenter.sh/capacity-type"]
	}
	fallback := runningNode("the pending pod to run on the on-demand node the provisioner fell back to", "")
	if got := capacityType(fallback); got != "on-demand" {
		t.Fatalf("with spot out, the pod runs on %s (%q), want on-demand", fallback, got)
	}

	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=TriggeredScaleUp"})
		return err == nil && len(evs.Items) > 0, err
	}, "a TriggeredScaleUp event on the pending pod")

	if err := cloud.SetCapacity(spotOut, 0, true); err != nil {
		t.Fatal(err)
	}
	first := runningNode("the reaper to move the pod to spot", fallback)
	if got := capacityType(first); got != "spot" {
		t.Errorf("after the reap the pod runs on %s (%q), want spot", first, got)
	}
	testenv.Eventually(t, 60*time.Second, func(ctx context.Context) (bool, error) {
		ins, err := cloud.Instances(ctx, localcloud.GroupID(cluster, group+"-od"))
		for _, in := range ins {
			if in.State == provider.Pending || in.State == provider.Running {
				return false, err
			}
		}
		return err == nil, err
	}, "the reaped on-demand instance to be deleted")

	if _, err := cloud.Interrupt(first, "test"); err != nil {
		t.Fatal(err)
	}
	second := runningNode("the pod to move off the interrupted node", first)
	n, err := env.Client.CoreV1().Nodes().Get(ctx, first, metav1.GetOptions{})
	if err == nil {
		tainted := false
		for _, taint := range n.Spec.Taints {
			tainted = tainted || taint.Key == interruption.TaintKey
		}
		if !n.Spec.Unschedulable || !tainted {
			t.Errorf("interrupted node %s: unschedulable=%v, taints %v; want cordoned and tainted %s", first, n.Spec.Unschedulable, n.Spec.Taints, interruption.TaintKey)
		}
	}
	if second == first {
		t.Errorf("pod still on the interrupted node %s", first)
	}

	// Nothing left to run: the scale-down removes every empty node.
	patch := []byte(`{"spec":{"replicas":0}}`)
	if _, err := env.Client.AppsV1().Deployments(ns).Patch(ctx, "capacity", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, func(ctx context.Context) (bool, error) {
		for _, pool := range []string{group + "-spot", group + "-od"} {
			g, err := cloud.NodeGroup(ctx, localcloud.GroupID(cluster, pool))
			if err != nil || g.TargetSize != 0 {
				return false, err
			}
		}
		return true, nil
	}, "the scale-down to bring both groups to 0")

	families, err := reg2.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		found[f.GetName()] = true
	}
	for _, m := range []string{"bosun_provisioner_scale_ups_total", "bosun_provisioner_nodes_removed_total", "bosun_provisioner_on_demand_nodes_ratio"} {
		if !found[m] {
			t.Errorf("metric %s is not registered with the agent's registry", m)
		}
	}
}
