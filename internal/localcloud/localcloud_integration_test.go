//go:build integration

package localcloud_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

// startCloud runs a local cloud over the package's cluster and returns a
// client of its API, as another process would use it.
func startCloud(t *testing.T, cluster *fleet.Cluster, cfg localcloud.Config) *local.Client {
	t.Helper()
	env := testenv.Get(t)
	reg := localcloud.NewClientRegistry()
	reg.Add(cluster.ID, env.Client)
	cloud := localcloud.New(cfg, clock.RealClock{}, reg)
	if err := cloud.AddCluster(cluster); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	url, _, err := cloud.Serve(ctx, "t0ken")
	if err != nil {
		t.Fatal(err)
	}
	return local.New(local.Endpoint{URL: url, Token: "t0ken"})
}

func pool(name, lifecycle string, types ...string) fleet.NodePool {
	return fleet.NodePool{
		Name: name, Role: "worker", ApplicationGroup: "app", Lifecycle: lifecycle,
		InstanceTypes: types, Zones: []string{"eu-west-1a", "eu-west-1b"}, MaxSize: 5,
	}
}

func TestIntegrationScaleUpRegistersLabelledNodesAfterBootDelay(t *testing.T) {
	env := testenv.Get(t)
	cl := &fleet.Cluster{ID: "scale", Region: "eu-west-1", NodePools: []fleet.NodePool{pool("scale-spot", "spot", "c5.2xlarge", "c6i.2xlarge")}}
	c := startCloud(t, cl, localcloud.Config{BootDelay: 3 * time.Second})
	ctx := context.Background()
	if err := c.SetTargetSize(ctx, "scale/scale-spot", 2); err != nil {
		t.Fatal(err)
	}
	var ins []provider.Instance
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		ins, err = c.Instances(ctx, "scale/scale-spot")
		return err == nil && len(ins) == 2, err
	}, "two launched instances")
	for _, in := range ins {
		if in.State != provider.Pending {
			continue
		}
		// Booting: the node must not exist yet.
		if _, err := env.Client.CoreV1().Nodes().Get(ctx, in.NodeName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node %s exists while its instance is still booting (err %v)", in.NodeName, err)
		}
	}
	for _, in := range ins {
		env.WaitNodeReady(t, in.NodeName, time.Minute)
		t.Cleanup(func() {
			_ = env.Client.CoreV1().Nodes().Delete(context.Background(), in.NodeName, metav1.DeleteOptions{})
		})
		n, err := env.Client.CoreV1().Nodes().Get(ctx, in.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"node.kubernetes.io/instance-type": in.InstanceType,
			"topology.kubernetes.io/zone":      in.Zone,
			"topology.kubernetes.io/region":    "eu-west-1",
			"karpenter.sh/capacity-type":       "spot",
			"eks.amazonaws.com/capacityType":   "SPOT",
			fleet.LabelPool:                    "scale-spot",
		}
		for k, v := range want {
			if n.Labels[k] != v {
				t.Errorf("node %s label %s = %q, want %q", n.Name, k, n.Labels[k], v)
			}
		}
		if n.Spec.ProviderID != in.ProviderID || n.Status.Capacity.Cpu().Value() != 8 {
			t.Errorf("node %s providerID %q capacity %v", n.Name, n.Spec.ProviderID, n.Status.Capacity)
		}
		if n.Status.Allocatable.Cpu().Cmp(*n.Status.Capacity.Cpu()) >= 0 {
			t.Errorf("node %s allocatable %v not below capacity (L35 reservation)", n.Name, n.Status.Allocatable.Cpu())
		}
	}
}

// L11: ICE is reported as a failed launch with the AWS error class, within
// one reconcile, not after a provisioning timeout.
func TestIntegrationInsufficientCapacityIsReported(t *testing.T) {
	cl := &fleet.Cluster{ID: "ice", Region: "eu-west-1", NodePools: []fleet.NodePool{pool("ice-spot", "spot", "m5.large")}}
	c := startCloud(t, cl, localcloud.Config{BootDelay: time.Second})
	ctx := context.Background()
	if _, err := c.SetCapacity(ctx, localcloud.CapacityRequest{OfferingKey: localcloud.OfferingKey{Lifecycle: provider.Spot}, Limit: 0}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTargetSize(ctx, "ice/ice-spot", 1); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		ins, err := c.Instances(ctx, "ice/ice-spot")
		if err != nil {
			return false, err
		}
		return len(ins) == 1 && ins[0].State == provider.Failed && ins[0].ErrorClass == provider.InsufficientCapacity, nil
	}, "a failed launch with InsufficientInstanceCapacity")
	offs, err := c.Offerings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		if o.PricePerHour <= 0 {
			t.Errorf("offering without price: %+v", o)
		}
		if o.Lifecycle == provider.Spot && o.Available {
			t.Errorf("ICE'd spot offering reported available: %+v", o)
		}
	}
}

// L19: the notice comes first; the node goes away only when it runs out.
func TestIntegrationInterruptionNoticePrecedesNodeRemoval(t *testing.T) {
	env := testenv.Get(t)
	cl := &fleet.Cluster{ID: "intr", Region: "eu-west-1", NodePools: []fleet.NodePool{pool("intr-spot", "spot", "m5.large")}}
	c := startCloud(t, cl, localcloud.Config{BootDelay: 500 * time.Millisecond, NoticePeriod: 4 * time.Second})
	ctx := context.Background()
	if err := c.SetTargetSize(ctx, "intr/intr-spot", 1); err != nil {
		t.Fatal(err)
	}
	var victim provider.Instance
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		ins, err := c.Instances(ctx, "intr/intr-spot")
		if err != nil || len(ins) != 1 {
			return false, err
		}
		victim = ins[0]
		return victim.State == provider.Running, nil
	}, "a running spot instance")
	env.WaitNodeReady(t, victim.NodeName, time.Minute)
	n, err := c.Interrupt(ctx, victim.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	notices, err := c.Interruptions(ctx, n.Issued)
	if err != nil || len(notices) != 1 || notices[0].NodeName != victim.NodeName {
		t.Fatalf("notices %+v, %v", notices, err)
	}
	if _, err := env.Client.CoreV1().Nodes().Get(ctx, victim.NodeName, metav1.GetOptions{}); err != nil {
		t.Fatalf("node gone right after the notice: %v", err)
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().Nodes().Get(ctx, victim.NodeName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}, "node %s removed after the notice period", victim.NodeName)
	removed := time.Now()
	if removed.Before(n.TerminationTime) {
		t.Errorf("node removed at %s, before the termination time %s", removed, n.TerminationTime)
	}
	// The group replaced the instance.
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		ins, err := c.Instances(ctx, "intr/intr-spot")
		return err == nil && len(ins) == 1 && ins[0].ID != victim.ID, err
	}, "a replacement instance")
	ins, _ := c.Instances(ctx, "intr/intr-spot")
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Nodes().Delete(context.Background(), ins[0].NodeName, metav1.DeleteOptions{})
	})
}
