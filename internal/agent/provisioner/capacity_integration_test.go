//go:build integration

package provisioner_test

import (
	"context"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/reaper"
	"github.com/bosun-platform/bosun/internal/agent/scaledown"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// passer is the agent's view of a controller.
type passer interface {
	Pass(ctx context.Context) ([]string, error)
}

// runPasses starts the informers and runs the controller's passes every
// interval until the test ends.
// runScaleDown runs a scale-down of the cluster on its own informers,
// a pass every 200 ms, removing nodes unneeded for a second, until the
// test ends.
func runScaleDown(t *testing.T, cloud provider.Provider, cluster string, drainTimeout time.Duration) *scaledown.Controller {
	t.Helper()
	env := testenv.Get(t)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	opts := scaledown.DefaultOptions()
	opts.UnneededTime, opts.DelayAfterScaleUp, opts.DrainTimeout = time.Second, 0, drainTimeout
	sd, err := scaledown.New(controller.Deps{
		Provider: cloud, Cluster: cluster, Client: env.Client, Factory: factory, Clock: clock.RealClock{}, Logger: quiet,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	runPasses(t, factory, sd, 200*time.Millisecond)
	t.Cleanup(sd.Wait)
	return sd
}

func runPasses(t *testing.T, factory informers.SharedInformerFactory, c passer, interval time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("syncing %v", typ)
		}
	}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if actions, err := c.Pass(ctx); err != nil && ctx.Err() == nil {
				t.Logf("pass: %v", err)
			} else if len(actions) > 0 {
				t.Logf("pass: %v", actions)
			}
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
}

func deleteNodes(cs kubernetes.Interface, appGroup string) {
	nodes, _ := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=" + appGroup})
	for _, n := range nodes.Items {
		_ = cs.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
	}
}

// runningInstances returns the node names of the group's running
// instances, sorted.
func runningInstances(t *testing.T, cloud *localcloud.Cloud, group string) []string {
	t.Helper()
	ins, err := cloud.Instances(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range ins {
		if in.State == provider.Running {
			out = append(out, in.NodeName)
		}
	}
	sort.Strings(out)
	return out
}

// pinned is a one-replica Deployment whose pod runs on the given node.
func pinned(t *testing.T, cs kubernetes.Interface, ns, name, node, cpu string) {
	t.Helper()
	labels := map[string]string{"app": name}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeName:   node,
					Containers: []corev1.Container{{Name: name, Image: "nginx", Resources: corev1.ResourceRequirements{Requests: req}}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func pdb(t *testing.T, cs kubernetes.Interface, ns, app string, maxUnavailable int32) {
	t.Helper()
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(maxUnavailable)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func runningPods(ctx context.Context, cs kubernetes.Interface, ns, selector string) ([]corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Scale-down removes an empty node's instance, and keeps a node whose only
// pod a PodDisruptionBudget protects (maxUnavailable 0) even though the
// pod would fit elsewhere.
func TestIntegrationScaleDownRemovesEmptyNodeAndRespectsPDB(t *testing.T) {
	env := testenv.Get(t)
	reg := localcloud.NewClientRegistry()
	reg.Add("sd", env.Client)
	cloud := localcloud.New(localcloud.Config{BootDelay: 500 * time.Millisecond}, clock.RealClock{}, reg)
	err := cloud.AddCluster(&fleet.Cluster{ID: "sd", Region: "local", NodePools: []fleet.NodePool{{
		Name: "sd-spot", Role: "worker", ApplicationGroup: "grp-sd", Lifecycle: "spot",
		InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"local-a"}, MaxSize: 5,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); deleteNodes(env.Client, "grp-sd") })
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	group := localcloud.GroupID("sd", "sd-spot")
	if err := cloud.SetTargetSize(ctx, group, 3); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		nodes = runningInstances(t, cloud, group)
		return len(nodes) == 3, nil
	}, "3 running instances")
	for _, n := range nodes {
		env.WaitNodeReady(t, n, time.Minute)
	}
	guarded, busy, empty := nodes[0], nodes[1], nodes[2]
	ns := env.Namespace(t)
	// guarded is a quarter full and its pod would fit on busy, but the
	// PDB allows no disruption; busy is above the threshold; empty is empty.
	pinned(t, env.Client, ns, "guarded", guarded, "1")
	pinned(t, env.Client, ns, "filler", busy, "2500m")
	pdb(t, env.Client, ns, "guarded", 0)
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		a, err := runningPods(ctx, env.Client, ns, "app=guarded")
		if err != nil {
			return false, err
		}
		b, err := runningPods(ctx, env.Client, ns, "app=filler")
		return len(a) == 1 && len(b) == 1, err
	}, "pods running")

	sd := runScaleDown(t, cloud, "sd", 3*time.Second)

	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		left := runningInstances(t, cloud, group)
		return len(left) == 2 && left[0] != empty && left[1] != empty, nil
	}, "the empty node %s's instance deleted", empty)
	// Several more passes: the guarded node must stay.
	time.Sleep(4 * time.Second)
	sd.Wait()
	if left := runningInstances(t, cloud, group); len(left) != 2 || left[0] != guarded && left[1] != guarded {
		t.Fatalf("instances left %v: the PDB-protected node %s must stay", left, guarded)
	}
	n, err := env.Client.CoreV1().Nodes().Get(ctx, guarded, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.Unschedulable {
		t.Errorf("node %s left cordoned", guarded)
	}
	if pods, _ := runningPods(ctx, env.Client, ns, "app=guarded"); len(pods) != 1 || pods[0].Spec.NodeName != guarded {
		t.Errorf("guarded pod disrupted: %v", pods)
	}
}

// L22: under ICE the provisioner falls back to on-demand; once spot is back
// the reaper gets a spot node first, then drains the on-demand node
// (through evictions the PDB allows) and deletes its instance; the pods end
// up running on spot.
func TestIntegrationReaperReplacesOnDemandWithSpot(t *testing.T) {
	f := start(t, "reap", "grp-reap")
	env := testenv.Get(t)
	if err := f.cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, 0, false); err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	deploy(t, ns, "grp-reap", 2)
	if got := runningOn(t, ns, 2); got["on-demand"] != 2 {
		t.Fatalf("pods by capacity type %v, want both on on-demand (fallback)", got)
	}
	pdb(t, env.Client, ns, "web", 1)
	odGroup := localcloud.GroupID("reap", "grp-reap-od")
	spotGroup := localcloud.GroupID("reap", "grp-reap-spot")
	odNodes := runningInstances(t, f.cloud, odGroup)
	if len(odNodes) != 1 {
		t.Fatalf("on-demand nodes %v, want 1", odNodes)
	}

	factory := informers.NewSharedInformerFactory(env.Client, 0)
	opts := reaper.DefaultOptions()
	opts.MinAge, opts.ReplacementTimeout, opts.DrainTimeout = time.Second, time.Minute, time.Minute
	opts.Templates = localcloud.ZoneTemplates("local")
	r, err := reaper.New(controller.Deps{
		Provider: f.cloud, Cluster: "reap", Client: env.Client, Factory: factory, Clock: clock.RealClock{}, Logger: quiet,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	runPasses(t, factory, r, 200*time.Millisecond)
	t.Cleanup(r.Wait)

	// Spot is still out: the on-demand node stays.
	time.Sleep(2 * time.Second)
	if got := runningInstances(t, f.cloud, odGroup); len(got) != 1 {
		t.Fatalf("on-demand nodes %v while spot is out, want 1", got)
	}
	if err := f.cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, 0, true); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func(context.Context) (bool, error) {
		return len(runningInstances(t, f.cloud, odGroup)) == 0 && len(runningInstances(t, f.cloud, spotGroup)) >= 1, nil
	}, "the on-demand instance deleted and a spot instance running")
	if got := runningOn(t, ns, 2); got["spot"] != 2 {
		t.Errorf("pods by capacity type %v, want both on spot", got)
	}
	if g, _ := f.cloud.NodeGroup(context.Background(), odGroup); g.TargetSize != 0 {
		t.Errorf("on-demand target %d, want 0", g.TargetSize)
	}
}
