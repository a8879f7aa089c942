package localcloud

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// live reports whether an instance holds capacity: launched and not going
// away. An interrupted instance no longer counts, so its group replaces it
// as soon as the notice is out.
func live(in *provider.Instance) bool {
	return (in.State == provider.Pending || in.State == provider.Running) && in.Interruption == nil
}

// usage counts instances holding capacity per offering.
func (c *Cloud) usage() map[OfferingKey]int {
	used := map[OfferingKey]int{}
	for _, g := range c.groups {
		for _, in := range g.instances {
			if in.State == provider.Pending || in.State == provider.Running {
				used[OfferingKey{InstanceType: in.InstanceType, Zone: in.Zone, Lifecycle: in.Lifecycle}]++
			}
		}
	}
	return used
}

// hasCapacity reports whether one more instance of the offering fits under
// every limit that covers it.
func (c *Cloud) hasCapacity(k OfferingKey, used map[OfferingKey]int) bool {
	for _, l := range c.limits {
		if !l.Matches(k) {
			continue
		}
		n := 0
		for o, cnt := range used {
			if l.Matches(o) {
				n += cnt
			}
		}
		if n+1 > l.Limit {
			return false
		}
	}
	return true
}

// vcpusUsed counts vCPUs of instances holding capacity per lifecycle.
func (c *Cloud) vcpusUsed(l provider.Lifecycle) int {
	n := 0
	for _, g := range c.groups {
		for _, in := range g.instances {
			if in.Lifecycle == l && (in.State == provider.Pending || in.State == provider.Running) {
				t, _ := ec2catalog.Lookup(in.InstanceType)
				n += t.VCPU
			}
		}
	}
	return n
}

// nodeOp is registry work decided under the lock and done outside it.
type nodeOp struct {
	g        *group
	in       *provider.Instance
	register bool
}

// Reconcile moves the simulation forward to the clock's now: booted
// instances register their Nodes, interrupted ones past their notice and
// deleted ones go away, spot beyond a shrunk limit is reclaimed, and groups
// below (above) their target launch (terminate) instances. Run calls it in
// a loop; tests call it after stepping a fake clock.
func (c *Cloud) Reconcile(ctx context.Context) error {
	ops := c.plan()
	var firstErr error
	for _, op := range ops {
		var err error
		if op.register {
			err = c.register(ctx, op)
		} else {
			err = c.nodes.Deregister(ctx, op.g.Cluster, op.in.NodeName)
		}
		c.mu.Lock()
		switch {
		case err != nil:
			// Leave the instance as it is; the next pass retries.
			if firstErr == nil {
				firstErr = err
			}
		case op.register:
			if op.in.State == provider.Pending {
				op.in.State = provider.Running
			}
		default:
			c.drop(op.g, op.in)
		}
		c.mu.Unlock()
	}
	return firstErr
}

func (c *Cloud) register(ctx context.Context, op nodeOp) error {
	t, _ := ec2catalog.Lookup(op.in.InstanceType)
	region := op.g.region
	node, err := nodeFor(&op.g.NodeGroup, op.in, t, region)
	if err != nil {
		return err
	}
	return c.nodes.Register(ctx, op.g.Cluster, node)
}

func (c *Cloud) drop(g *group, victim *provider.Instance) {
	kept := g.instances[:0]
	for _, in := range g.instances {
		if in != victim {
			kept = append(kept, in)
		}
	}
	g.instances = kept
}

// plan updates instance states that need no I/O and returns the node
// registrations and removals to do.
func (c *Cloud) plan() []nodeOp {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	c.reclaimSpot()
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var ops []nodeOp
	for _, id := range ids {
		g := c.groups[id]
		for _, in := range g.instances {
			if in.Interruption != nil && !now.Before(in.Interruption.TerminationTime) && in.State != provider.Terminating {
				in.State = provider.Terminating
			}
		}
		c.scale(g, now)
		for _, in := range g.instances {
			switch {
			case in.State == provider.Pending && !now.Before(in.LaunchTime.Add(c.cfg.BootDelay)):
				ops = append(ops, nodeOp{g: g, in: in, register: true})
			case in.State == provider.Terminating:
				ops = append(ops, nodeOp{g: g, in: in})
			}
		}
	}
	return ops
}

// scale launches or terminates instances to meet the group's target.
func (c *Cloud) scale(g *group, now time.Time) {
	var alive []*provider.Instance
	for _, in := range g.instances {
		if live(in) {
			alive = append(alive, in)
		}
	}
	if len(alive) > g.TargetSize {
		// Newest first, pending before running: the cheapest to lose.
		sort.SliceStable(alive, func(i, j int) bool {
			if (alive[i].State == provider.Pending) != (alive[j].State == provider.Pending) {
				return alive[i].State == provider.Pending
			}
			return alive[i].LaunchTime.After(alive[j].LaunchTime)
		})
		for _, in := range alive[:len(alive)-g.TargetSize] {
			in.State = provider.Terminating
		}
		return
	}
	if len(alive) == g.TargetSize || now.Before(g.nextLaunch) {
		return
	}
	// A new attempt: forget the failures of the last one.
	kept := g.instances[:0]
	for _, in := range g.instances {
		if in.State != provider.Failed {
			kept = append(kept, in)
		}
	}
	g.instances = kept
	for n := len(alive); n < g.TargetSize; n++ {
		in := c.launch(g, now)
		g.instances = append(g.instances, in)
		if in.State == provider.Failed {
			g.failures++
			g.nextLaunch = now.Add(c.cfg.LaunchRetry)
			slog.Debug("launch failed", "group", g.ID, "error", in.ErrorClass)
			return
		}
	}
}

// launch picks an offering with capacity, trying the group's instance types
// in order and, for each, its zones from the least used (AZ balance).
func (c *Cloud) launch(g *group, now time.Time) *provider.Instance {
	c.seq++
	in := &provider.Instance{
		ID: fmt.Sprintf("i-%08x", c.seq), Group: g.ID, Lifecycle: g.Lifecycle, LaunchTime: now,
	}
	used := c.usage()
	perZone := map[string]int{}
	for _, o := range g.instances {
		if live(o) {
			perZone[o.Zone]++
		}
	}
	zones := append([]string(nil), g.Zones...)
	sort.SliceStable(zones, func(i, j int) bool { return perZone[zones[i]] < perZone[zones[j]] })
	quotaHit := false
	for _, tn := range g.InstanceTypes {
		t, _ := ec2catalog.Lookup(tn)
		if q, ok := c.cfg.VCPUQuota[g.Lifecycle]; ok && c.vcpusUsed(g.Lifecycle)+t.VCPU > q {
			quotaHit = true
			continue
		}
		for _, z := range zones {
			k := OfferingKey{InstanceType: tn, Zone: z, Lifecycle: g.Lifecycle}
			if !c.hasCapacity(k, used) {
				continue
			}
			in.InstanceType, in.Zone, in.State = tn, z, provider.Pending
			in.NodeName = fmt.Sprintf("%s-%s", g.Pool, in.ID)
			in.ProviderID = fmt.Sprintf("local:///%s/%s", z, in.ID)
			return in
		}
	}
	in.InstanceType, in.Zone, in.State = g.InstanceTypes[0], zones[0], provider.Failed
	if quotaHit {
		in.ErrorClass = provider.QuotaExceeded
		in.ErrorMessage = fmt.Sprintf("You have requested more vCPU capacity than your current %s vCPU limit allows.", g.Lifecycle)
	} else {
		in.ErrorClass = provider.InsufficientCapacity
		in.ErrorMessage = fmt.Sprintf("We currently do not have sufficient %s capacity for %v in %v.", g.Lifecycle, g.InstanceTypes, g.Zones)
	}
	return in
}

// reclaimSpot issues interruption notices to spot instances beyond a limit
// that shrank below what runs, newest first (L20: someone else's on-demand
// launches take the capacity back).
func (c *Cloud) reclaimSpot() {
	for _, l := range c.limits {
		if l.Lifecycle == provider.OnDemand {
			continue
		}
		type victim struct {
			g  *group
			in *provider.Instance
		}
		var holding []victim
		for _, g := range c.groups {
			for _, in := range g.instances {
				k := OfferingKey{InstanceType: in.InstanceType, Zone: in.Zone, Lifecycle: in.Lifecycle}
				if in.Lifecycle == provider.Spot && live(in) && l.Matches(k) {
					holding = append(holding, victim{g, in})
				}
			}
		}
		if len(holding) <= l.Limit {
			continue
		}
		sort.Slice(holding, func(i, j int) bool { return holding[i].in.LaunchTime.After(holding[j].in.LaunchTime) })
		for _, v := range holding[:len(holding)-l.Limit] {
			c.interrupt(v.g, v.in, "capacity reclaimed")
		}
	}
}

// Run reconciles every interval until ctx ends. Errors are logged and
// retried on the next pass.
func (c *Cloud) Run(ctx context.Context, clk clock.WithTicker, interval time.Duration, log *slog.Logger) {
	t := clk.NewTicker(interval)
	defer t.Stop()
	for {
		if err := c.Reconcile(ctx); err != nil && ctx.Err() == nil {
			log.Warn("local cloud reconcile", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}
