package providertest_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/provider/providertest"
)

func TestContractFake(t *testing.T) {
	var p *fake.Provider
	providertest.Run(t, providertest.Harness{
		Zone: "zone-a",
		New: func(t *testing.T, groups []provider.NodeGroup) provider.Provider {
			for i := range groups {
				groups[i].TargetSize = 0
			}
			p = fake.New(groups, nil, nil)
			for _, g := range groups {
				if err := p.SetTargetSize(context.Background(), g.ID, g.MinSize); err != nil {
					t.Fatal(err)
				}
			}
			return p
		},
		Exhaust: func(_ *testing.T, typ, zone string, lc provider.Lifecycle) {
			p.Unavailable[fake.OfferingKey(typ, zone, lc)] = true
		},
	})
}

type nopRegistry struct{}

func (nopRegistry) Register(context.Context, string, *corev1.Node) error { return nil }
func (nopRegistry) Deregister(context.Context, string, string) error     { return nil }

func TestContractLocalCloud(t *testing.T) {
	var (
		mu    sync.Mutex
		cloud *localcloud.Cloud
		clk   *clocktesting.FakeClock
	)
	providertest.Run(t, providertest.Harness{
		Zone: "zone-a",
		New: func(t *testing.T, groups []provider.NodeGroup) provider.Provider {
			mu.Lock()
			defer mu.Unlock()
			clk = clocktesting.NewFakeClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
			cloud = localcloud.New(localcloud.Config{BootDelay: time.Second}, clk, nopRegistry{})
			cl := &fleet.Cluster{ID: providertest.Cluster, Region: "local"}
			for _, g := range groups {
				cl.NodePools = append(cl.NodePools, fleet.NodePool{Name: g.Pool, Lifecycle: string(g.Lifecycle), InstanceTypes: g.InstanceTypes,
					Zones: g.Zones, MinSize: g.MinSize, MaxSize: g.MaxSize, Priority: g.Priority})
			}
			if err := cloud.AddCluster(cl); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(cloud.Handler("secret"))
			t.Cleanup(srv.Close)
			return local.New(local.Endpoint{URL: srv.URL, Token: "secret"})
		},
		Settle: func(t *testing.T) {
			mu.Lock()
			defer mu.Unlock()
			for range 2 {
				if err := cloud.Reconcile(context.Background()); err != nil {
					t.Fatal(err)
				}
				clk.Step(2 * time.Second)
			}
		},
		Exhaust: func(t *testing.T, typ, zone string, lc provider.Lifecycle) {
			if err := cloud.SetCapacity(localcloud.OfferingKey{InstanceType: typ, Zone: zone, Lifecycle: lc}, 0, false); err != nil {
				t.Fatal(err)
			}
		},
	})
}
