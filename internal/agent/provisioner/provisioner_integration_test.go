//go:build integration

package provisioner_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is a local cloud over the test cluster with a spot pool and an
// on-demand fallback pool of one application group, and a provisioner.
type fixture struct {
	cloud *localcloud.Cloud
	prov  *provisioner.Provisioner
}

func start(t *testing.T, cluster, appGroup string) *fixture {
	t.Helper()
	return startBooting(t, cluster, appGroup, 2*time.Second)
}

// startBooting is start with instances that boot for bootDelay.
func startBooting(t *testing.T, cluster, appGroup string, bootDelay time.Duration) *fixture {
	t.Helper()
	env := testenv.Get(t)
	reg := localcloud.NewClientRegistry()
	reg.Add(cluster, env.Client)
	cloud := localcloud.New(localcloud.Config{BootDelay: bootDelay}, clock.RealClock{}, reg)
	pool := func(name, lc string, prio int) fleet.NodePool {
		return fleet.NodePool{Name: name, Role: "worker", ApplicationGroup: appGroup, Lifecycle: lc,
			InstanceTypes: []string{"m5.xlarge", "m6i.xlarge"}, Zones: []string{"local-a", "local-b"}, MaxSize: 5, Priority: prio}
	}
	err := cloud.AddCluster(&fleet.Cluster{ID: cluster, Region: "local", NodePools: []fleet.NodePool{
		pool(appGroup+"-spot", "spot", 40), pool(appGroup+"-od", "on-demand", 10),
	}})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provisioner.NewProvisioner(controller.Deps{Provider: cloud, Cluster: cluster, Logger: quiet}, provisioner.Options{Templates: func(g provider.NodeGroup) ([]*corev1.Node, error) {
		var out []*corev1.Node
		for _, z := range g.Zones {
			n, err := localcloud.TemplateNode(g, "template", g.InstanceTypes[0], z, "local")
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	}, // Long enough that passing the test proves fallback did not wait for it.
		ProvisionTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=" + appGroup})
		for _, n := range nodes.Items {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	})
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	go func() { _ = prov.Run(ctx, env.Client, 200*time.Millisecond) }()
	return &fixture{cloud: cloud, prov: prov}
}

func deploy(t testing.TB, ns, appGroup string, replicas int32) {
	t.Helper()
	env := testenv.Get(t)
	labels := map[string]string{"app": "web"}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("2Gi")}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{fleet.LabelApplicationGroup: appGroup},
					Containers:   []corev1.Container{{Name: "web", Image: "nginx", Resources: corev1.ResourceRequirements{Requests: req, Limits: req}}},
				},
			},
		},
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// runningOn waits until the deployment's pods all run and returns the
// capacity type of the nodes they run on.
func runningOn(t *testing.T, ns string, replicas int) map[string]int {
	t.Helper()
	env := testenv.Get(t)
	var byType map[string]int
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		byType = map[string]int{}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning {
				continue
			}
			running++
			n, err := env.Client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			byType[n.Labels["karpenter.sh/capacity-type"]]++
		}
		return running == replicas, nil
	}, "%d running pods in %s", replicas, ns)
	return byType
}

func TestIntegrationScaleUpOnSpot(t *testing.T) {
	start(t, "up", "grp-up")
	ns := testenv.Get(t).Namespace(t)
	deploy(t, ns, "grp-up", 4)
	if got := runningOn(t, ns, 4); got["spot"] != 4 {
		t.Errorf("pods by capacity type %v, want all 4 on spot", got)
	}
}

// L11/L21: with every spot offering out of capacity the pods run on
// on-demand long before the 10-minute provision timeout.
func TestIntegrationFallbackUnderICE(t *testing.T) {
	f := start(t, "ice", "grp-ice")
	if err := f.cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, 0, false); err != nil {
		t.Fatal(err)
	}
	ns := testenv.Get(t).Namespace(t)
	deploy(t, ns, "grp-ice", 3)
	if got := runningOn(t, ns, 3); got["on-demand"] != 3 {
		t.Errorf("pods by capacity type %v, want all 3 on on-demand", got)
	}
	st := f.cloud.Status(context.Background())
	for _, g := range st.Groups {
		if g.ID == "ice/grp-ice-spot" && (g.Failures == 0 || g.TargetSize != 0) {
			t.Errorf("spot group %+v: want a failed launch that was given back", g)
		}
	}
}

// A booting instance deleted by someone else (here: straight through the
// cloud, target size decremented) is asked for again: at the next pass if
// a pass saw it booting, after the 10 s launch lag if it went before any
// did. The scheduler sees no new node and would not retry the pods for
// minutes, so without it they would wait for the 10-minute provision
// timeout.
func TestIntegrationLostBootingInstanceIsAskedForAgain(t *testing.T) {
	f := startBooting(t, "lost", "grp-lost", 15*time.Second)
	ns := testenv.Get(t).Namespace(t)
	deploy(t, ns, "grp-lost", 2) // 2 × 1.5 CPU: one m5.xlarge
	const group = "lost/grp-lost-spot"
	var booting string
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		ins, err := f.cloud.Instances(ctx, group)
		if err != nil {
			return false, err
		}
		for _, in := range ins {
			if in.State == provider.Pending {
				booting = in.ID
			}
		}
		return booting != "", nil
	}, "a booting instance in %s", group)
	if err := f.cloud.DeleteInstances(context.Background(), group, []string{booting}); err != nil {
		t.Fatal(err)
	}
	if got := runningOn(t, ns, 2); got["spot"] != 2 {
		t.Errorf("pods by capacity type %v, want both on spot", got)
	}
	var m dto.Metric
	if err := f.prov.Metrics.Released.WithLabelValues("instance-lost").Write(&m); err != nil || m.GetCounter().GetValue() != 2 {
		t.Errorf("pods released for a lost instance: %v (%v), want 2", m.GetCounter().GetValue(), err)
	}
}
