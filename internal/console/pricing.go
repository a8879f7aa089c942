package console

import (
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Lifecycles of a node's capacity.
const (
	LifecycleSpot     = "spot"
	LifecycleOnDemand = "on-demand"
)

// Sources of a node's price, shown beside every node cost.
const (
	PriceOverride = "override" // the override file: negotiated or reserved (L36)
	PriceCatalog  = "catalog"  // on-demand list price from ec2catalog
	PriceSpot     = "spot-est" // catalog on-demand price less the spot discount
	PriceDefault  = "per-unit" // no instance type known: default per-vCPU and per-GiB prices
	PriceProvider = "provider" // the provider's offering price (the local cloud's market, or AWS)
)

// Default per-unit prices (USD per hour) used to split a node's price
// between CPU and memory, and to price nodes of unknown instance type. They
// are close to a general-purpose instance's on-demand price per vCPU and
// per GiB in us-east-1 (m5: about 0.0316 per vCPU and 0.0042 per GiB).
const (
	DefaultCPUHourly    = 0.0316
	DefaultMemGiBHourly = 0.0042
)

// HoursPerMonth converts hourly to monthly cost (365 x 24 / 12).
const HoursPerMonth = 730

// CostOptions configure how nodes are priced and costs aggregated.
type CostOptions struct {
	// CapacityTypeLabels are the node labels that say spot or on-demand;
	// the first present wins.
	CapacityTypeLabels []string
	// TeamLabels and AppLabels are the pod label keys for team and
	// application; the first present wins.
	TeamLabels []string
	AppLabels  []string
	// Region prices nodes without a topology.kubernetes.io/region label.
	Region string
	// SpotDiscount is the fraction below on-demand assumed for spot when
	// no spot price is known (default 0.65, i.e. spot costs 35%).
	SpotDiscount float64
	// Overrides are negotiated or reserved prices (L36).
	Overrides []PriceOverrideEntry
	// Offerings are the provider's current prices per instance type, zone
	// and lifecycle; they win over the catalogue and the spot discount.
	Offerings []provider.Offering
}

// PriceOverrideEntry is one line of the override file: the hourly price
// of an instance type, for one lifecycle or (empty) any.
type PriceOverrideEntry struct {
	InstanceType string  `json:"instanceType"`
	Lifecycle    string  `json:"lifecycle,omitempty"`
	HourlyUSD    float64 `json:"hourlyUSD"`
	// Note says why (e.g. "3-year reserved instances"); it is shown.
	Note string `json:"note,omitempty"`
}

// Defaults for CostOptions.
var (
	DefaultCapacityTypeLabels = []string{"karpenter.sh/capacity-type", "eks.amazonaws.com/capacityType", "node.kubernetes.io/lifecycle"}
	DefaultTeamLabels         = []string{"team", "owner"}
	DefaultAppLabels          = []string{"application", "app.kubernetes.io/name", "app"}
)

func (o CostOptions) withDefaults() CostOptions {
	if len(o.CapacityTypeLabels) == 0 {
		o.CapacityTypeLabels = DefaultCapacityTypeLabels
	}
	if len(o.TeamLabels) == 0 {
		o.TeamLabels = DefaultTeamLabels
	}
	if len(o.AppLabels) == 0 {
		o.AppLabels = DefaultAppLabels
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.SpotDiscount <= 0 || o.SpotDiscount >= 1 {
		o.SpotDiscount = 0.65
	}
	return o
}

// LoadOverrides reads an override file: a YAML list of PriceOverrideEntry.
func LoadOverrides(path string) ([]PriceOverrideEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading price overrides, %w", err)
	}
	var out []PriceOverrideEntry
	if err := yaml.UnmarshalStrict(b, &out); err != nil {
		return nil, fmt.Errorf("parsing price overrides %s, %w", path, err)
	}
	for i, e := range out {
		if e.InstanceType == "" || e.HourlyUSD < 0 {
			return nil, fmt.Errorf("price overrides %s: entry %d needs an instanceType and a price >= 0", path, i+1)
		}
		if e.Lifecycle != "" && normalizeLifecycle(e.Lifecycle) == "" {
			return nil, fmt.Errorf("price overrides %s: entry %d: lifecycle %q is neither spot nor on-demand", path, i+1, e.Lifecycle)
		}
	}
	return out, nil
}

// normalizeLifecycle maps the spellings of Karpenter, EKS and kops
// (spot, SPOT, Ec2Spot, on-demand, ON_DEMAND, normal) to spot/on-demand,
// or "" when unknown.
func normalizeLifecycle(v string) string {
	switch strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(v)) {
	case "spot", "ec2spot", "preemptible":
		return LifecycleSpot
	case "ondemand", "normal", "regular", "reserved":
		return LifecycleOnDemand
	}
	return ""
}

// NodePrice is a node's price and how it was found.
type NodePrice struct {
	InstanceType string
	Lifecycle    string
	Region       string
	HourlyUSD    float64
	// OnDemandUSD is what the node would cost on demand (for spot savings).
	OnDemandUSD float64
	Source      string
	Note        string
}

// PriceNode prices a node from its labels and capacity.
func (o CostOptions) PriceNode(n *corev1.Node) NodePrice {
	p := NodePrice{InstanceType: n.Labels[corev1.LabelInstanceTypeStable], Region: n.Labels[corev1.LabelTopologyRegion]}
	if p.InstanceType == "" {
		p.InstanceType = n.Labels[corev1.LabelInstanceType]
	}
	if p.Region == "" {
		p.Region = o.Region
	}
	p.Lifecycle = o.lifecycleOf(n.Labels)
	zone := n.Labels[corev1.LabelTopologyZone]
	onDemand, source := o.onDemandPrice(n, p)
	if od, ok := o.offeringPrice(p.InstanceType, zone, LifecycleOnDemand); ok {
		onDemand, source = od, PriceProvider
	}
	p.OnDemandUSD, p.HourlyUSD, p.Source = onDemand, onDemand, source
	if p.Lifecycle == LifecycleSpot {
		p.HourlyUSD, p.Source = onDemand*(1-o.SpotDiscount), PriceSpot
		if sp, ok := o.offeringPrice(p.InstanceType, zone, LifecycleSpot); ok {
			p.HourlyUSD, p.Source = sp, PriceProvider
		}
	}
	// L36: a negotiated or reserved price replaces the list price.
	for _, e := range o.Overrides {
		if e.InstanceType == p.InstanceType && (e.Lifecycle == "" || normalizeLifecycle(e.Lifecycle) == p.Lifecycle) {
			p.HourlyUSD, p.Source, p.Note = e.HourlyUSD, PriceOverride, e.Note
			if e.Lifecycle != "" {
				break // an exact lifecycle match beats an any-lifecycle one
			}
		}
	}
	return p
}

// offeringPrice is the provider's price for the instance type and
// lifecycle in the node's zone, or the mean over zones when the node has no
// zone label or its zone is not offered.
func (o CostOptions) offeringPrice(instanceType, zone, lifecycle string) (float64, bool) {
	var sum float64
	n := 0
	for _, off := range o.Offerings {
		if off.InstanceType != instanceType || string(off.Lifecycle) != lifecycle {
			continue
		}
		if zone != "" && off.Zone == zone {
			return off.PricePerHour, true
		}
		sum += off.PricePerHour
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// onDemandPrice is the catalogue price of the node's instance type in its
// region, or the default per-unit prices times its capacity.
func (o CostOptions) onDemandPrice(n *corev1.Node, p NodePrice) (float64, string) {
	if t, ok := ec2catalog.Lookup(p.InstanceType); ok {
		if price, ok := t.Price[p.Region]; ok {
			return price, PriceCatalog
		}
		if price, ok := t.Price["us-east-1"]; ok {
			return price, PriceCatalog
		}
	}
	cpu, mem := capacity(n)
	return cpu*DefaultCPUHourly + mem*DefaultMemGiBHourly, PriceDefault
}

// capacity returns a node's CPU (cores) and memory (GiB) capacity.
func capacity(n *corev1.Node) (float64, float64) {
	cpu := n.Status.Capacity.Cpu().AsApproximateFloat64()
	mem := n.Status.Capacity.Memory().AsApproximateFloat64() / (1 << 30)
	return cpu, mem
}
