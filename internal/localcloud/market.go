package localcloud

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// defaultPriceRegion prices clusters whose region the catalogue lacks
// (such as "local").
const defaultPriceRegion = "us-east-1"

// onDemandPrice is the catalogue's on-demand price of the type in region,
// or in defaultPriceRegion when the region has none.
func onDemandPrice(t ec2catalog.InstanceType, region string) float64 {
	if p, ok := t.Price[region]; ok {
		return p
	}
	return t.Price[defaultPriceRegion]
}

// spotPrice simulates a spot price: 25-45% of on-demand, fixed per type and
// zone so runs are repeatable (real spot prices are about 60-75% below
// on-demand for these families).
func spotPrice(onDemand float64, instanceType, zone string) float64 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%s", instanceType, zone)
	factor := 0.25 + float64(h.Sum32()%2001)/10000 // 0.25 .. 0.45
	return math.Round(onDemand*factor*100000) / 100000
}

// price returns the hourly price of an offering in region.
func price(t ec2catalog.InstanceType, zone string, l provider.Lifecycle, region string) float64 {
	od := onDemandPrice(t, region)
	if l == provider.Spot {
		return spotPrice(od, t.Name, zone)
	}
	return od
}
