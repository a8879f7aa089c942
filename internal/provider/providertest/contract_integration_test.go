//go:build integration

package providertest_test

import (
	"testing"

	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
	"github.com/bosun-platform/bosun/internal/provider/providertest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func TestIntegrationContractAWSOnMoto(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		Zone: "us-east-1a",
		New: func(t *testing.T, groups []provider.NodeGroup) provider.Provider {
			moto := awstest.Get(t)
			moto.Reset(t)
			for _, g := range groups {
				moto.CreateGroup(t, awstest.Group{Cluster: g.Cluster, Pool: g.Pool, Spot: g.Lifecycle == provider.Spot, Types: g.InstanceTypes, Zones: g.Zones,
					Min: int32(g.MinSize), Max: int32(g.MaxSize), Desired: int32(g.MinSize), Priority: g.Priority}) // #nosec G115 -- small test sizes
			}
			cfg := awstest.Config()
			p, err := bosunaws.NewFromConfig(cfg, bosunaws.Options{Cluster: providertest.Cluster, Region: awstest.Region, Endpoint: moto.URL, SnapshotMaxAge: 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		// moto has no capacity errors: FailedLaunch skips (recorded
		// responses cover it in provider/aws).
	})
}
