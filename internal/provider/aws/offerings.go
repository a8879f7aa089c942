package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// spotEstimate is the share of the on-demand price assumed for spot only
// when AWS has no spot price for a type and zone (logged).
const spotEstimate = 0.35

// catalogueRetry is how soon a price taken from the catalogue after a
// Pricing API error is asked again.
const catalogueRetry = 10 * time.Minute

type offeringKey struct {
	typ, zone string
	lc        provider.Lifecycle
}

// unavailableCache remembers offerings that failed with a capacity error
// (Karpenter keeps such a cache with a 3-minute TTL): they are reported
// Available=false until the entry expires.
type unavailableCache struct {
	mu    sync.Mutex
	until map[offeringKey]time.Time
}

// mark records a capacity failure of group g: the failed type and zone
// when AWS named them, else every type or zone of the group.
func (u *unavailableCache) mark(g provider.NodeGroup, f provider.Instance, until time.Time) {
	types, zones := g.InstanceTypes, g.Zones
	if f.InstanceType != "" {
		types = []string{f.InstanceType}
	}
	if f.Zone != "" {
		zones = []string{f.Zone}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range types {
		for _, z := range zones {
			k := offeringKey{t, z, g.Lifecycle}
			if until.After(u.until[k]) {
				u.until[k] = until
			}
		}
	}
}

func (u *unavailableCache) unavailable(k offeringKey, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.until[k]
	if ok && !now.Before(t) {
		delete(u.until, k)
		return false
	}
	return ok
}

type priceEntry struct {
	price   float64
	at      time.Time
	retryAt time.Time
}

// priceCache holds on-demand prices (Pricing API, 24 h), spot prices
// (spot price history, minutes) and where each type is offered.
type priceCache struct {
	mu       sync.Mutex
	onDemand map[string]priceEntry
	spot     map[[2]string]float64
	spotAt   time.Time
	spotKey  string
	offered  map[[2]string]bool
	offerKey string
	offerAt  time.Time
	// estimated: offerings whose spot price is estimated (logged once).
	estimated map[[2]string]bool
}

// estimating records whether the spot price of an offering is estimated
// and reports whether that is news (to log once per type and zone, not
// every pass): true when it starts being estimated; a real price resets it.
func (c *priceCache) estimating(k [2]string, estimated bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !estimated {
		delete(c.estimated, k)
		return false
	}
	if c.estimated[k] {
		return false
	}
	c.estimated[k] = true
	return true
}

func newPriceCache() *priceCache {
	return &priceCache{onDemand: map[string]priceEntry{}, estimated: map[[2]string]bool{}}
}

// Offerings implements provider.Provider: for every instance type and zone
// of the cluster's groups that EC2 offers there, an on-demand and a spot
// offering with its price; Available=false for those that failed with a
// capacity error within UnavailableTTL.
func (p *Provider) Offerings(ctx context.Context) ([]provider.Offering, error) {
	s, err := p.current(ctx)
	if err != nil {
		return nil, err
	}
	typeSet, zoneSet := map[string]bool{}, map[string]bool{}
	for _, g := range s.groups {
		for _, t := range g.InstanceTypes {
			typeSet[t] = true
		}
		for _, z := range g.Zones {
			zoneSet[z] = true
		}
	}
	types, zones := keys(typeSet), keys(zoneSet)
	if len(types) == 0 {
		return nil, nil
	}
	offered, err := p.offered(ctx, types, zones)
	if err != nil {
		return nil, err
	}
	od := p.onDemandPrices(ctx, types)
	spot, err := p.spotPrices(ctx, types)
	if err != nil {
		return nil, err
	}
	now := p.opts.Clock.Now()
	var out []provider.Offering
	for _, t := range types {
		for _, z := range zones {
			if !offered[[2]string{t, z}] {
				continue
			}
			sp, ok := spot[[2]string{t, z}]
			if !ok {
				sp = od[t] * spotEstimate
			}
			if p.prices.estimating([2]string{t, z}, !ok) {
				p.opts.Logger.Warn("no spot price from AWS; estimating (logged once until AWS has one again)", "instanceType", t, "zone", z, "ratio", spotEstimate)
			}
			for _, o := range []provider.Offering{
				{InstanceType: t, Zone: z, Lifecycle: provider.OnDemand, PricePerHour: od[t]},
				{InstanceType: t, Zone: z, Lifecycle: provider.Spot, PricePerHour: sp},
			} {
				o.Available = !p.unavailable.unavailable(offeringKey{t, z, o.Lifecycle}, now)
				out = append(out, o)
			}
		}
	}
	return out, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// offered reads which types EC2 offers in which zones
// (DescribeInstanceTypeOfferings by availability zone), cached PriceTTL.
func (p *Provider) offered(ctx context.Context, types, zones []string) (map[[2]string]bool, error) {
	key := fmt.Sprint(types, zones)
	now := p.opts.Clock.Now()
	p.prices.mu.Lock()
	if p.prices.offerKey == key && now.Sub(p.prices.offerAt) < p.opts.PriceTTL {
		m := p.prices.offered
		p.prices.mu.Unlock()
		return m, nil
	}
	p.prices.mu.Unlock()
	m := map[[2]string]bool{}
	for _, batch := range batches(types, maxFilterValues) {
		in := &ec2.DescribeInstanceTypeOfferingsInput{
			LocationType: ec2types.LocationTypeAvailabilityZone,
			Filters: []ec2types.Filter{
				{Name: aws.String("instance-type"), Values: batch},
				{Name: aws.String("location"), Values: zones},
			},
		}
		for {
			cctx, cancel := p.call(ctx)
			resp, err := p.c.EC2.DescribeInstanceTypeOfferings(cctx, in)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("describing instance type offerings in %s, %w", p.opts.Region, err)
			}
			for _, o := range resp.InstanceTypeOfferings {
				m[[2]string{string(o.InstanceType), aws.ToString(o.Location)}] = true
			}
			if aws.ToString(resp.NextToken) == "" {
				break
			}
			in.NextToken = resp.NextToken
		}
	}
	p.prices.mu.Lock()
	p.prices.offered, p.prices.offerKey, p.prices.offerAt = m, key, now
	p.prices.mu.Unlock()
	return m, nil
}

// onDemandPrices returns the Linux on-demand price of each type in the
// region: from the Pricing API (cached PriceTTL), else from the embedded
// catalogue with a logged warning.
func (p *Provider) onDemandPrices(ctx context.Context, types []string) map[string]float64 {
	now := p.opts.Clock.Now()
	out := map[string]float64{}
	for _, t := range types {
		p.prices.mu.Lock()
		e, ok := p.prices.onDemand[t]
		p.prices.mu.Unlock()
		fresh := ok && now.Sub(e.at) < p.opts.PriceTTL && (e.retryAt.IsZero() || now.Before(e.retryAt))
		if !fresh {
			e = p.fetchOnDemand(ctx, t, now)
			p.prices.mu.Lock()
			p.prices.onDemand[t] = e
			p.prices.mu.Unlock()
		}
		out[t] = e.price
	}
	return out
}

func (p *Provider) fetchOnDemand(ctx context.Context, t string, now time.Time) priceEntry {
	price, err := p.getProduct(ctx, t)
	if err == nil {
		return priceEntry{price: price, at: now}
	}
	cat, ok := ec2catalog.Lookup(t)
	fallback := 0.0
	if ok {
		fallback = cat.Price[p.opts.Region]
	}
	p.opts.Logger.Warn("on-demand price from the embedded catalogue: the Pricing API did not answer", "instanceType", t, "region", p.opts.Region, "catalogue", fallback, "error", err)
	return priceEntry{price: fallback, at: now, retryAt: now.Add(catalogueRetry)}
}

func (p *Provider) getProduct(ctx context.Context, t string) (float64, error) {
	term := func(field, value string) pricingtypes.Filter {
		return pricingtypes.Filter{Field: aws.String(field), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String(value)}
	}
	in := &pricing.GetProductsInput{
		ServiceCode: aws.String("AmazonEC2"), FormatVersion: aws.String("aws_v1"), MaxResults: aws.Int32(10),
		Filters: []pricingtypes.Filter{
			term("instanceType", t), term("regionCode", p.opts.Region), term("operatingSystem", "Linux"),
			term("tenancy", "Shared"), term("preInstalledSw", "NA"), term("capacitystatus", "Used"),
		},
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	resp, err := p.c.Pricing.GetProducts(cctx, in)
	if err != nil {
		return 0, fmt.Errorf("pricing GetProducts %s in %s, %w", t, p.opts.Region, err)
	}
	for _, item := range resp.PriceList {
		if price, ok, err := ParsePriceListItem(item); err != nil {
			return 0, fmt.Errorf("pricing GetProducts %s in %s, %w", t, p.opts.Region, err)
		} else if ok {
			return price, nil
		}
	}
	return 0, fmt.Errorf("pricing GetProducts %s in %s: no on-demand hourly price in %d products", t, p.opts.Region, len(resp.PriceList))
}

// priceListItem is the part of a Pricing API price list entry read here.
type priceListItem struct {
	Terms struct {
		OnDemand map[string]struct {
			PriceDimensions map[string]struct {
				Unit         string            `json:"unit"`
				PricePerUnit map[string]string `json:"pricePerUnit"`
			} `json:"priceDimensions"`
		} `json:"OnDemand"`
	} `json:"terms"`
}

// ParsePriceListItem reads the hourly on-demand USD price from one entry
// of GetProducts' PriceList (a JSON document); ok is false when it has
// none greater than zero.
func ParsePriceListItem(item string) (price float64, ok bool, err error) {
	var it priceListItem
	if err := json.Unmarshal([]byte(item), &it); err != nil {
		return 0, false, fmt.Errorf("price list entry is not JSON, %w", err)
	}
	for _, term := range it.Terms.OnDemand {
		for _, d := range term.PriceDimensions {
			if d.Unit != "Hrs" {
				continue
			}
			v, err := strconv.ParseFloat(d.PricePerUnit["USD"], 64)
			if err != nil {
				return 0, false, fmt.Errorf("price list entry: pricePerUnit.USD %q is not a number", d.PricePerUnit["USD"])
			}
			if v > 0 {
				return v, true, nil
			}
		}
	}
	return 0, false, nil
}

// spotPrices returns the current Linux spot price per type and zone
// (DescribeSpotPriceHistory from now: the price in force in each zone),
// cached SpotPriceTTL.
func (p *Provider) spotPrices(ctx context.Context, types []string) (map[[2]string]float64, error) {
	now := p.opts.Clock.Now()
	key := fmt.Sprint(types)
	p.prices.mu.Lock()
	if p.prices.spotKey == key && now.Sub(p.prices.spotAt) < p.opts.SpotPriceTTL {
		m := p.prices.spot
		p.prices.mu.Unlock()
		return m, nil
	}
	p.prices.mu.Unlock()
	its := make([]ec2types.InstanceType, len(types))
	for i, t := range types {
		its[i] = ec2types.InstanceType(t)
	}
	in := &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes: its, ProductDescriptions: []string{"Linux/UNIX"}, StartTime: aws.Time(now),
	}
	m := map[[2]string]float64{}
	at := map[[2]string]time.Time{}
	for page := 0; ; page++ {
		cctx, cancel := p.call(ctx)
		resp, err := p.c.EC2.DescribeSpotPriceHistory(cctx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describing spot prices in %s, %w", p.opts.Region, err)
		}
		for _, h := range resp.SpotPriceHistory {
			k := [2]string{string(h.InstanceType), aws.ToString(h.AvailabilityZone)}
			v, err := strconv.ParseFloat(aws.ToString(h.SpotPrice), 64)
			if err != nil {
				continue
			}
			if ts := aws.ToTime(h.Timestamp); ts.After(at[k]) || at[k].IsZero() {
				m[k], at[k] = v, ts
			}
		}
		if aws.ToString(resp.NextToken) == "" || page > 20 {
			break
		}
		in.NextToken = resp.NextToken
	}
	p.prices.mu.Lock()
	p.prices.spot, p.prices.spotKey, p.prices.spotAt = m, key, now
	p.prices.mu.Unlock()
	return m, nil
}
