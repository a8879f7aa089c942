//go:build integration

package provisioner_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// recorder wraps a provider and notes when capacity of each lifecycle was
// first requested.
type recorder struct {
	provider.Provider
	mu    sync.Mutex
	first map[provider.Lifecycle]time.Time
}

func (r *recorder) SetTargetSize(ctx context.Context, id string, size int) error {
	g, err := r.NodeGroup(ctx, id)
	if err == nil && size > g.TargetSize {
		r.mu.Lock()
		if _, ok := r.first[g.Lifecycle]; !ok {
			r.first[g.Lifecycle] = time.Now()
		}
		r.mu.Unlock()
	}
	return r.Provider.SetTargetSize(ctx, id, size)
}

func (r *recorder) requested(l provider.Lifecycle) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.first[l]
	return t, ok
}

// benchSeq keeps cluster and application-group names unique across the
// benchmark's runs, whose namespaces may still be terminating.
var benchSeq atomic.Int64

// spotTypes are 12 instance types of distinct families: 12 spot groups
// that share no offering, the seeds' worst case (each group fails on its
// own, so a provisioner that waits for timeouts waits 12 times).
var spotTypes = []string{"m5.xlarge", "m5a.xlarge", "m5n.xlarge", "m6i.xlarge", "m6a.xlarge", "m6in.xlarge", "m7i.xlarge", "m7a.xlarge", "c5.2xlarge", "c6i.2xlarge", "r5.large", "r6i.large"}

// scaleUp runs one scenario: 10 pending pods for an application group of
// 12 spot groups and 2 on-demand groups, all spot out of capacity if ice.
// It returns the time from the pods' creation to the first spot and
// on-demand requests and to all pods Running.
func scaleUp(b *testing.B, ice bool) (spot, onDemand, running time.Duration) {
	env := testenv.Get(b)
	cluster := fmt.Sprintf("bench-%d-%t", benchSeq.Add(1), ice)
	group := cluster
	var pools []fleet.NodePool
	for i, t := range spotTypes {
		pools = append(pools, fleet.NodePool{Name: fmt.Sprintf("spot-%02d", i), Role: "worker", ApplicationGroup: group, Lifecycle: "spot",
			InstanceTypes: []string{t}, Zones: []string{"local-a", "local-b"}, MaxSize: 10, Priority: 100 - i})
	}
	for i, t := range []string{"m6i.xlarge", "m5.xlarge"} {
		pools = append(pools, fleet.NodePool{Name: fmt.Sprintf("od-%d", i), Role: "worker", ApplicationGroup: group, Lifecycle: "on-demand",
			InstanceTypes: []string{t}, Zones: []string{"local-a", "local-b"}, MaxSize: 10, Priority: 10 - i})
	}
	reg := localcloud.NewClientRegistry()
	reg.Add(cluster, env.Client)
	cloud := localcloud.New(localcloud.Config{BootDelay: time.Second}, clock.RealClock{}, reg)
	if err := cloud.AddCluster(&fleet.Cluster{ID: cluster, Region: "local", NodePools: pools}); err != nil {
		b.Fatal(err)
	}
	if ice {
		if err := cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, 0, false); err != nil {
			b.Fatal(err)
		}
	}
	rec := &recorder{Provider: cloud, first: map[provider.Lifecycle]time.Time{}}
	prov, err := provisioner.NewProvisioner(controller.Deps{Provider: rec, Cluster: cluster, Logger: quiet}, provisioner.Options{Templates: localcloud.ZoneTemplates("local"), ProvisionTimeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cloud.Run(ctx, clock.RealClock{}, 100*time.Millisecond, quiet)
	go func() { _ = prov.Run(ctx, env.Client, 100*time.Millisecond) }()

	ns := env.Namespace(b)
	created := time.Now()
	deploy(b, ns, group, 10)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		pods, err := env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				n++
			}
		}
		if n == 10 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of 10 pods running after 3 minutes (ice %t); cloud: %+v", n, ice, cloud.Status(context.Background()).Groups)
		}
		time.Sleep(50 * time.Millisecond)
	}
	running = time.Since(created)
	if t, ok := rec.requested(provider.Spot); ok {
		spot = t.Sub(created)
	}
	if t, ok := rec.requested(provider.OnDemand); ok {
		onDemand = t.Sub(created)
	}
	cancel()
	_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	nodes, _ := env.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: fleet.LabelApplicationGroup + "=" + group})
	for _, n := range nodes.Items {
		_ = env.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
	}
	return spot, onDemand, running
}

// BenchmarkScaleUpUnderICE compares, in one run, a normal spot market (the
// baseline: pods to spot) with every spot offering out of capacity across
// 12 spot groups of distinct types (pods must fall back to on-demand). The
// figure that matters is ice-ondemand-requested-s: how long the fallback
// took (L11; the seeds waited 10 to 45 minutes).
func BenchmarkScaleUpUnderICE(b *testing.B) {
	var normalReq, normalRun, iceReq, iceRun time.Duration
	for i := 0; i < b.N; i++ {
		s, _, r := scaleUp(b, false)
		normalReq += s
		normalRun += r
		_, od, r2 := scaleUp(b, true)
		if od == 0 {
			b.Fatal("no on-demand capacity was requested under ICE")
		}
		iceReq += od
		iceRun += r2
	}
	n := float64(b.N)
	b.ReportMetric(normalReq.Seconds()/n, "normal-spot-requested-s")
	b.ReportMetric(normalRun.Seconds()/n, "normal-running-s")
	b.ReportMetric(iceReq.Seconds()/n, "ice-ondemand-requested-s")
	b.ReportMetric(iceRun.Seconds()/n, "ice-running-s")
	b.ReportMetric(float64(iceRun)/float64(normalRun), "ice/normal-running")
	b.ReportMetric(0, "ns/op")
}
