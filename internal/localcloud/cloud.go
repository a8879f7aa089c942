// Package localcloud is Bosun's simulated cloud: node groups like EC2 Auto
// Scaling groups, instances that boot for a while and then register as kwok
// Nodes, a capacity market per (instance type, zone, lifecycle) that runs out
// (InsufficientInstanceCapacity) and reclaims spot (L20), two-minute spot
// interruption notices (L19), and prices. It runs inside `bosun up` and is
// served on loopback (see Server) to the local provider, `bosun sim` and the
// cluster-autoscaler adapter, so a controller in another process drives it
// as it would drive AWS.
package localcloud

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Config tunes the simulation.
type Config struct {
	// BootDelay is how long an instance boots before its Node registers
	// (default 45s, about what an EC2 instance with a kubelet takes).
	BootDelay time.Duration
	// NoticePeriod is the time between a spot interruption notice and the
	// instance's termination (default 2 minutes, as on AWS).
	NoticePeriod time.Duration
	// LaunchRetry is how long a group waits after a failed launch before
	// it tries again (default 10s).
	LaunchRetry time.Duration
	// VCPUQuota, if set, caps the vCPUs running per lifecycle; launches
	// beyond it fail with VcpuLimitExceeded.
	VCPUQuota map[provider.Lifecycle]int
}

func (c *Config) defaults() {
	if c.BootDelay == 0 {
		c.BootDelay = 45 * time.Second
	}
	if c.NoticePeriod == 0 {
		c.NoticePeriod = 2 * time.Minute
	}
	if c.LaunchRetry == 0 {
		c.LaunchRetry = 10 * time.Second
	}
}

// Cloud is the simulated cloud. All methods are safe for concurrent use.
type Cloud struct {
	mu            sync.Mutex
	cfg           Config
	clock         clock.PassiveClock
	nodes         NodeRegistry
	groups        map[string]*group
	limits        []CapacityLimit
	interruptions []provider.InterruptionNotice
	seq           int
	// infra is served by the HTTP API when set (ServeInfra).
	infra provider.Infra
}

// group is a node group with its instances and bookkeeping.
type group struct {
	provider.NodeGroup
	region    string
	instances []*provider.Instance
	// nextLaunch is when launching may be tried again after a failure.
	nextLaunch time.Time
	// removed counts instances removed since start (for status).
	failures int
}

var _ provider.Provider = (*Cloud)(nil)

// New returns an empty cloud; add groups with AddCluster.
func New(cfg Config, clk clock.PassiveClock, nodes NodeRegistry) *Cloud {
	cfg.defaults()
	return &Cloud{cfg: cfg, clock: clk, nodes: nodes, groups: map[string]*group{}}
}

// GroupID is the node group ID of a fleet cluster's pool.
func GroupID(cluster, pool string) string { return cluster + "/" + pool }

// AddCluster creates a node group for each of the cluster's node pools, at
// its minimum size, from provider.SpecFor (so every node carries the pool's
// template hash label, L44). Every instance type must be in the catalogue.
// Adding a cluster again replaces its groups' settings but keeps their
// instances.
func (c *Cloud) AddCluster(cl *fleet.Cluster) error {
	spec, err := provider.SpecFor(cl)
	if err != nil {
		return err
	}
	groups := make([]*group, 0, len(spec.Groups))
	for _, gs := range spec.Groups {
		g, err := groupFromSpec(gs, cl.Region)
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range groups {
		if old, ok := c.groups[g.ID]; ok {
			g.instances, g.TargetSize = old.instances, clamp(old.TargetSize, g.MinSize, g.MaxSize)
		}
		c.groups[g.ID] = g
	}
	return nil
}

// groupFromSpec builds a node group from its spec (provider.SpecFor checked
// lifecycle, sizes, types and zones); the local cloud also needs every
// instance type in its catalogue.
func groupFromSpec(gs provider.GroupSpec, region string) (*group, error) {
	for _, t := range gs.InstanceTypes {
		if _, ok := ec2catalog.Lookup(t); !ok {
			return nil, fmt.Errorf("cluster %s, node pool %s: instance type %q is not in the catalogue", gs.Cluster, gs.Pool, t)
		}
	}
	ng := gs.NodeGroup
	ng.InstanceTypes = append([]string(nil), gs.InstanceTypes...)
	ng.Zones = append([]string(nil), gs.Zones...)
	ng.Labels = make(map[string]string, len(gs.Labels))
	for k, v := range gs.Labels {
		ng.Labels[k] = v
	}
	ng.Taints = append([]corev1.Taint(nil), gs.Taints...)
	return &group{NodeGroup: ng, region: region}, nil
}

func clamp(v, lo, hi int) int {
	return max(lo, min(v, hi))
}

// RemoveCluster forgets a cluster's groups (its control plane is gone).
func (c *Cloud) RemoveCluster(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, g := range c.groups {
		if g.Cluster == cluster {
			delete(c.groups, id)
		}
	}
}

func (c *Cloud) group(id string) (*group, error) {
	g, ok := c.groups[id]
	if !ok {
		return nil, fmt.Errorf("node group %q, %w", id, provider.ErrNotFound)
	}
	return g, nil
}

// NodeGroups implements provider.Provider.
func (c *Cloud) NodeGroups(context.Context) ([]provider.NodeGroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]provider.NodeGroup, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (g *group) snapshot() provider.NodeGroup {
	s := g.NodeGroup
	s.InstanceTypes = append([]string(nil), g.InstanceTypes...)
	s.Zones = append([]string(nil), g.Zones...)
	return s
}

// NodeGroup implements provider.Provider.
func (c *Cloud) NodeGroup(_ context.Context, id string) (provider.NodeGroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(id)
	if err != nil {
		return provider.NodeGroup{}, err
	}
	return g.snapshot(), nil
}

// SetTargetSize implements provider.Provider. Raising the size lets the
// group launch at once, even if it was waiting after a failed launch: a
// new request is a new attempt, as on AWS.
func (c *Cloud) SetTargetSize(_ context.Context, id string, size int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(id)
	if err != nil {
		return err
	}
	if size < g.MinSize || size > g.MaxSize {
		return fmt.Errorf("node group %q: size %d not in [%d, %d], %w", id, size, g.MinSize, g.MaxSize, provider.ErrOutOfRange)
	}
	if size > g.TargetSize {
		g.nextLaunch = time.Time{}
	}
	g.TargetSize = size
	return nil
}

// Instances implements provider.Provider.
func (c *Cloud) Instances(_ context.Context, id string) ([]provider.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(id)
	if err != nil {
		return nil, err
	}
	out := make([]provider.Instance, 0, len(g.instances))
	for _, in := range g.instances {
		out = append(out, copyInstance(in))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func copyInstance(in *provider.Instance) provider.Instance {
	out := *in
	if in.Interruption != nil {
		n := *in.Interruption
		out.Interruption = &n
	}
	return out
}

// DeleteInstances implements provider.Provider.
func (c *Cloud) DeleteInstances(_ context.Context, id string, ids []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(id)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, i := range ids {
		want[i] = true
	}
	var victims []*provider.Instance
	for _, in := range g.instances {
		if want[in.ID] && (in.State == provider.Pending || in.State == provider.Running) {
			victims = append(victims, in)
		}
	}
	if g.TargetSize-len(victims) < g.MinSize {
		return fmt.Errorf("node group %q: deleting %d instances would go below min size %d, %w", id, len(victims), g.MinSize, provider.ErrOutOfRange)
	}
	for _, in := range victims {
		in.State = provider.Terminating
	}
	g.TargetSize -= len(victims)
	return nil
}

// Offerings implements provider.Provider: every type and zone of every
// group, both lifecycles, priced in the group's region.
func (c *Cloud) Offerings(context.Context) ([]provider.Offering, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[OfferingKey]bool{}
	var out []provider.Offering
	used := c.usage()
	for _, g := range c.groups {
		for _, tn := range g.InstanceTypes {
			t, _ := ec2catalog.Lookup(tn)
			for _, z := range g.Zones {
				for _, lc := range []provider.Lifecycle{provider.Spot, provider.OnDemand} {
					k := OfferingKey{InstanceType: tn, Zone: z, Lifecycle: lc}
					if seen[k] {
						continue
					}
					seen[k] = true
					out = append(out, provider.Offering{
						InstanceType: tn, Zone: z, Lifecycle: lc,
						PricePerHour: price(t, z, lc, g.region),
						Available:    c.hasCapacity(k, used),
					})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.InstanceType != b.InstanceType {
			return a.InstanceType < b.InstanceType
		}
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		return a.Lifecycle < b.Lifecycle
	})
	return out, nil
}

// Interruptions implements provider.Provider.
func (c *Cloud) Interruptions(_ context.Context, since time.Time) ([]provider.InterruptionNotice, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []provider.InterruptionNotice
	for _, n := range c.interruptions {
		if !n.Issued.Before(since) {
			out = append(out, n)
		}
	}
	return out, nil
}

// SetCapacity sets (or, with clear, removes) the capacity limit of the
// offerings key covers. A key may use wildcards (empty fields). The newest
// rule for an identical key replaces the old one.
func (c *Cloud) SetCapacity(key OfferingKey, limit int, clear bool) error {
	if !clear && limit < 0 {
		return fmt.Errorf("capacity limit %d for %s: expected 0 or more", limit, key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.limits[:0]
	for _, l := range c.limits {
		if l.OfferingKey != key {
			kept = append(kept, l)
		}
	}
	c.limits = kept
	if !clear {
		c.limits = append(c.limits, CapacityLimit{OfferingKey: key, Limit: limit})
		return nil
	}
	// Capacity came back: groups waiting after a failure may try now.
	for _, g := range c.groups {
		g.nextLaunch = time.Time{}
	}
	return nil
}

// Limits returns the capacity rules in force.
func (c *Cloud) Limits() []CapacityLimit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CapacityLimit(nil), c.limits...)
}

// Interrupt issues a spot interruption notice for the instance running the
// node (or with that instance ID). The instance terminates after the notice
// period; its group launches a replacement at once (capacity rebalancing).
func (c *Cloud) Interrupt(nodeOrInstance, reason string) (provider.InterruptionNotice, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		for _, in := range g.instances {
			if in.NodeName != nodeOrInstance && in.ID != nodeOrInstance {
				continue
			}
			if in.State != provider.Running && in.State != provider.Pending {
				return provider.InterruptionNotice{}, fmt.Errorf("instance %s is %s, not running", in.ID, in.State)
			}
			if in.Interruption != nil {
				return *in.Interruption, nil
			}
			return c.interrupt(g, in, reason), nil
		}
	}
	return provider.InterruptionNotice{}, fmt.Errorf("no instance runs node %q, %w", nodeOrInstance, provider.ErrNotFound)
}

func (c *Cloud) interrupt(g *group, in *provider.Instance, reason string) provider.InterruptionNotice {
	now := c.clock.Now()
	n := provider.InterruptionNotice{
		InstanceID: in.ID, Group: g.ID, NodeName: in.NodeName,
		Issued: now, TerminationTime: now.Add(c.cfg.NoticePeriod), Reason: reason,
	}
	in.Interruption = &n
	c.interruptions = append(c.interruptions, n)
	return n
}
