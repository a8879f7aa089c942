//go:build integration

package provisioner_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// Scale-down with the real scheduler and zones: node b1 is a quarter full
// with one replica of a Deployment spread over the zones (maxSkew 1,
// DoNotSchedule); the other replica runs on a1 in zone a, and the only room
// in zone b is on b1 itself. The replica would fit on a1, but the skew
// would be 2: b1 stays. a2 runs an unconstrained pod: it is removed and the
// scheduler places the pod elsewhere.
func TestIntegrationScaleDownKeepsZoneSpread(t *testing.T) {
	env := testenv.Get(t)
	const cluster, appGroup = "sdt", "grp-sdt"
	reg := localcloud.NewClientRegistry()
	reg.Add(cluster, env.Client)
	cloud := localcloud.New(localcloud.Config{BootDelay: 500 * time.Millisecond}, clock.RealClock{}, reg)
	pool := func(name, zone string) fleet.NodePool {
		return fleet.NodePool{Name: name, Role: "worker", ApplicationGroup: appGroup, Lifecycle: "spot",
			InstanceTypes: []string{"m5.xlarge"}, Zones: []string{zone}, MaxSize: 5}
	}
	if err := cloud.AddCluster(&fleet.Cluster{ID: cluster, Region: "local", NodePools: []fleet.NodePool{
		pool("sdt-a", "local-a"), pool("sdt-b", "local-b"),
	}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); deleteNodes(env.Client, appGroup) })
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	groupA, groupB := localcloud.GroupID(cluster, "sdt-a"), localcloud.GroupID(cluster, "sdt-b")
	for _, g := range []string{groupA, groupB} {
		if err := cloud.SetTargetSize(ctx, g, 2); err != nil {
			t.Fatal(err)
		}
	}
	var zoneA, zoneB []string
	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		zoneA, zoneB = runningInstances(t, cloud, groupA), runningInstances(t, cloud, groupB)
		return len(zoneA) == 2 && len(zoneB) == 2, nil
	}, "2 running instances in each zone")
	for _, n := range append(zoneA, zoneB...) {
		env.WaitNodeReady(t, n, time.Minute)
	}
	a1, a2, b1, b2 := zoneA[0], zoneA[1], zoneB[0], zoneB[1]
	ns := env.Namespace(t)

	// a1 and b2 are busy (b2 has no room for a replica, a1 has); the
	// cordons steer the scheduler: the spread replicas to a1 and b1, the
	// free pod to a2.
	pinned(t, env.Client, ns, "filler-a", a1, "1")
	pinned(t, env.Client, ns, "filler-b", b2, "3500m")
	cordon(t, env.Client, a2, true)
	workload(t, env.Client, ns, "spread", appGroup, 2, "1", true)
	spreadPods := waitRunning(t, env.Client, ns, "spread", 2)
	if on := nodesOf(spreadPods); !slices.Equal(on, sorted(a1, b1)) {
		t.Fatalf("spread replicas on %v, want one on %s and one on %s", on, a1, b1)
	}
	cordon(t, env.Client, a1, true)
	cordon(t, env.Client, b1, true)
	cordon(t, env.Client, a2, false)
	workload(t, env.Client, ns, "free", appGroup, 1, "500m", false)
	if on := nodesOf(waitRunning(t, env.Client, ns, "free", 1)); !slices.Equal(on, []string{a2}) {
		t.Fatalf("free pod on %v, want %s", on, a2)
	}
	cordon(t, env.Client, a1, false)
	cordon(t, env.Client, b1, false)

	sd := runScaleDown(t, cloud, cluster, 10*time.Second)

	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		return slices.Equal(runningInstances(t, cloud, groupA), []string{a1}), nil
	}, "the unconstrained node %s's instance deleted", a2)
	if on := nodesOf(waitRunning(t, env.Client, ns, "free", 1)); slices.Contains(on, a2) {
		t.Fatalf("free pod still on %v", on)
	}
	// Several more passes: b1 stays.
	time.Sleep(4 * time.Second)
	sd.Wait()
	if left := runningInstances(t, cloud, groupB); !slices.Equal(left, sorted(b1, b2)) {
		t.Fatalf("zone b instances %v: %s must stay (its replica would break the zone spread)", left, b1)
	}
	if left := runningInstances(t, cloud, groupA); !slices.Equal(left, []string{a1}) {
		t.Fatalf("zone a instances %v, want %s", left, a1)
	}
	now := waitRunning(t, env.Client, ns, "spread", 2)
	for i := range now {
		if now[i].UID != spreadPods[i].UID {
			t.Fatalf("spread replicas disrupted: %v, were %v", names(now), names(spreadPods))
		}
	}
	for _, n := range []string{a1, b1} {
		node, err := env.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node.Spec.Unschedulable {
			t.Errorf("node %s left cordoned", n)
		}
	}
}

// workload creates a Deployment of pods labelled app=<name> on the
// application group's nodes, spread over the zones if asked.
func workload(t *testing.T, cs kubernetes.Interface, ns, name, appGroup string, replicas int32, cpu string, spread bool) {
	t.Helper()
	labels := map[string]string{"app": name}
	spec := corev1.PodSpec{
		NodeSelector: map[string]string{fleet.LabelApplicationGroup: appGroup},
		Containers: []corev1.Container{{Name: name, Image: "nginx", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)},
		}}},
	}
	if spread {
		spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: localcloud.LabelZone, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
		}}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitRunning waits for exactly n running pods of the app and returns
// them sorted by node.
func waitRunning(t *testing.T, cs kubernetes.Interface, ns, app string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		pods, err = runningPods(ctx, cs, ns, "app="+app)
		return len(pods) == n, err
	}, "%d running %s pod(s)", n, app)
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		if a.Spec.NodeName < b.Spec.NodeName {
			return -1
		}
		if a.Spec.NodeName > b.Spec.NodeName {
			return 1
		}
		return 0
	})
	return pods
}

func cordon(t *testing.T, cs kubernetes.Interface, node string, on bool) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on))
	if _, err := cs.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func nodesOf(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Spec.NodeName)
	}
	slices.Sort(out)
	return out
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}
