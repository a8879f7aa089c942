//go:build integration

// Package e2e runs Bosun's provisioner with the AWS provider against moto
// and a real local control plane: a small bridge registers a kwok Node for
// every running moto instance (providerID aws:///<zone>/<instance-id>), as
// a kubelet would.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/agent/reaper"
	"github.com/bosun-platform/bosun/internal/agent/scaledown"
	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
	"github.com/bosun-platform/bosun/internal/provider/nodeshape"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// bridge registers a Node for each running instance of the cluster's
// groups and removes Nodes whose instance is gone.
func bridge(ctx context.Context, t *testing.T, p provider.Provider, cs kubernetes.Interface, cluster string) {
	for ctx.Err() == nil {
		groups, err := p.NodeGroups(ctx)
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		live := map[string]bool{}
		for _, g := range groups {
			ins, err := p.Instances(ctx, g.ID)
			if err != nil {
				continue
			}
			for _, in := range ins {
				if in.State != provider.Running || in.NodeName == "" {
					continue
				}
				live[in.NodeName] = true
				typ, ok := ec2catalog.Lookup(in.InstanceType)
				if !ok {
					t.Errorf("instance type %s not in the catalogue", in.InstanceType)
					continue
				}
				node, err := nodeshape.Node(&g, &in, typ, awstest.Region)
				if err != nil {
					t.Errorf("node for %s: %v", in.ID, err)
					continue
				}
				if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
					t.Logf("registering %s: %v", in.NodeName, err)
				}
			}
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, n := range nodes.Items {
				if strings.HasPrefix(n.Spec.ProviderID, "aws:///") && !live[n.Name] {
					_ = cs.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// L10, L11: pending pods raise the desired capacity of the cluster's
// Auto Scaling group, moto launches the instances, their nodes register
// and the pods run; removing a node's instance goes through the group.
func TestIntegrationProvisionerOnMoto(t *testing.T) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not on PATH (pip install 'moto[server]'): the AWS end-to-end test needs it")
	}
	moto, err := awstest.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	env := testenv.Get(t)
	ns := env.Namespace(t)
	const cluster, appGroup = "e2e", "e2e-web"
	moto.CreateGroup(t, awstest.Group{Cluster: cluster, Pool: "spot", Spot: true, Types: []string{"m5.xlarge"}, Zones: []string{"us-east-1a"}, Max: 5, Priority: 40,
		ExtraTags: map[string]string{bosunaws.TagNodeTemplateLabel + fleet.LabelApplicationGroup: appGroup}})
	p, err := bosunaws.NewFromConfig(awstest.Config(), bosunaws.Options{Cluster: cluster, Region: awstest.Region, Endpoint: moto.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provisioner.NewProvisioner(controller.Deps{Provider: p, Cluster: cluster, Logger: quiet}, provisioner.Options{Templates: nodeshape.ZoneTemplates(awstest.Region), ProvisionTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=" + appGroup})
		for _, n := range nodes.Items {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	})
	go func() { bridge(ctx, t, p, env.Client, cluster); done <- struct{}{} }()
	go func() { _ = prov.Run(ctx, env.Client, 500*time.Millisecond); done <- struct{}{} }()

	// 3 pods of 1.5 CPU: two fit on an m5.xlarge (4 vCPU), so 2 nodes.
	labels := map[string]string{"app": "web"}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("2Gi")}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(3)),
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
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, pod := range pods.Items {
			if pod.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 3, nil
	}, "3 pods Running on nodes of moto instances")
	g, err := p.NodeGroup(ctx, cluster+"/spot")
	if err != nil {
		t.Fatal(err)
	}
	if g.TargetSize != 2 {
		t.Errorf("desired capacity = %d, want 2 (3 pods of 1.5 CPU on 4-vCPU nodes)", g.TargetSize)
	}
	ins, err := p.Instances(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, in.NodeName, metav1.GetOptions{})
		if err != nil || n.Spec.ProviderID != "aws:///us-east-1a/"+in.ID {
			t.Errorf("instance %s: node %v, %v", in.ID, n, err)
		}
	}
	// Terminating through the group (what the reaper and scale-down call)
	// lowers the desired capacity; the node goes with the instance.
	if err := p.DeleteInstances(ctx, g.ID, []string{ins[0].ID}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().Nodes().Get(ctx, ins[0].NodeName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}, "the terminated instance's node is gone")

	// Scale-down (L11): with the Deployment gone to zero, the remaining
	// node is empty; the scale-down removes it through the group, which
	// lowers its desired capacity to the minimum.
	if _, err := env.Client.AppsV1().Deployments(ns).UpdateScale(ctx, "web", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 0},
	}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	opts := scaledown.DefaultOptions()
	opts.UnneededTime, opts.DelayAfterScaleUp = time.Second, 0
	sd, err := scaledown.New(controller.Deps{
		Provider: p, Cluster: cluster, Client: env.Client, Factory: factory, Clock: clock.RealClock{}, Logger: quiet,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		if _, err := sd.Pass(ctx); err != nil {
			t.Logf("scale-down pass: %v", err)
		}
		g, err := p.NodeGroup(ctx, cluster+"/spot")
		if err != nil {
			return false, err
		}
		nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=" + appGroup})
		if err != nil {
			return false, err
		}
		return g.TargetSize == 0 && len(nodes.Items) == 0, nil
	}, "the scale-down terminates the empty node through the Auto Scaling group (desired capacity 0, no node left)")
	sd.Wait()
}

// L22 on AWS: an on-demand fallback node whose pods could run on spot is
// replaced once spot is back. The reaper raises the spot group's desired
// capacity, moto launches the instance and its node registers; once it is
// Ready the reaper drains the on-demand node and terminates its instance
// through its Auto Scaling group (desired capacity back to 0); the pod
// runs on the spot node.
func TestIntegrationReaperOnMoto(t *testing.T) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not on PATH (pip install 'moto[server]'): the AWS end-to-end test needs it")
	}
	moto, err := awstest.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	env := testenv.Get(t)
	ns := env.Namespace(t)
	const cluster, appGroup = "e2e-reap", "e2e-reap-web"
	app := map[string]string{bosunaws.TagNodeTemplateLabel + fleet.LabelApplicationGroup: appGroup}
	moto.CreateGroup(t, awstest.Group{Cluster: cluster, Pool: "spot", Spot: true, Types: []string{"m5.xlarge"}, Zones: []string{"us-east-1a"}, Max: 3, Priority: 40, ExtraTags: app})
	moto.CreateGroup(t, awstest.Group{Cluster: cluster, Pool: "od", Types: []string{"m5.xlarge"}, Zones: []string{"us-east-1a"}, Max: 3, Desired: 1, Priority: 10, ExtraTags: app})
	p, err := bosunaws.NewFromConfig(awstest.Config(), bosunaws.Options{Cluster: cluster, Region: awstest.Region, Endpoint: moto.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
		nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=" + appGroup})
		for _, n := range nodes.Items {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	})
	go func() { bridge(ctx, t, p, env.Client, cluster); close(done) }()

	odIns, err := p.Instances(ctx, cluster+"/od")
	if err != nil || len(odIns) != 1 {
		t.Fatalf("on-demand instances = %+v, %v; want the one fallback instance", odIns, err)
	}
	odNode := odIns[0].NodeName
	labels := map[string]string{"app": "reap"}
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("2Gi")}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "reap", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
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
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningOn := func(ctx context.Context) (string, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=reap"})
		if err != nil {
			return "", err
		}
		for _, pod := range pods.Items {
			if pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil {
				return pod.Spec.NodeName, nil
			}
		}
		return "", nil
	}
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) (bool, error) {
		on, err := runningOn(ctx)
		return on == odNode, err
	}, "the pod Running on the on-demand fallback node")

	factory := informers.NewSharedInformerFactory(env.Client, 0)
	ropts := reaper.DefaultOptions()
	ropts.MinAge, ropts.DrainTimeout = time.Millisecond, time.Minute
	ropts.Templates = nodeshape.ZoneTemplates(awstest.Region)
	r, err := reaper.New(controller.Deps{
		Provider: p, Cluster: cluster, Client: env.Client, Factory: factory, Clock: clock.RealClock{}, Logger: quiet,
	}, ropts)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var actions []string
	testenv.Eventually(t, 3*time.Minute, func(ctx context.Context) (bool, error) {
		a, err := r.Pass(ctx)
		if err != nil {
			t.Logf("reaper pass: %v", err)
		}
		actions = append(actions, a...)
		od, err := p.NodeGroup(ctx, cluster+"/od")
		if err != nil {
			return false, err
		}
		spot, err := p.NodeGroup(ctx, cluster+"/spot")
		if err != nil {
			return false, err
		}
		_, gone := env.Client.CoreV1().Nodes().Get(ctx, odNode, metav1.GetOptions{})
		on, err := runningOn(ctx)
		return od.TargetSize == 0 && spot.TargetSize == 1 && apierrors.IsNotFound(gone) && on != "" && on != odNode, err
	}, "the reaper replaces the on-demand node with spot: spot desired 1, on-demand desired 0 through the group, node gone, pod Running on spot")
	r.Wait()
	// (moto launches a spot group's instances as on-demand ones: the
	// group's lifecycle comes from its tag, the instance's from EC2.)
	spotIns, err := p.Instances(ctx, cluster+"/spot")
	if err != nil || len(spotIns) != 1 {
		t.Fatalf("spot instances = %+v, %v", spotIns, err)
	}
	if on, _ := runningOn(ctx); on != spotIns[0].NodeName {
		t.Errorf("pod on %q, want the spot node %s", on, spotIns[0].NodeName)
	}
	if left, _ := p.Instances(ctx, cluster+"/od"); len(left) != 0 {
		t.Errorf("on-demand instances left: %+v", left)
	}
	t.Logf("reaper actions: %v", actions)
}
