package lint

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/fleet"
)

// groups returns the cluster's pools by application group, groups sorted.
func (ctx *clusterContext) groups() ([]string, map[string][]*fleet.NodePool) {
	by := map[string][]*fleet.NodePool{}
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		if p.ApplicationGroup != "" {
			by[p.ApplicationGroup] = append(by[p.ApplicationGroup], p)
		}
	}
	names := make([]string, 0, len(by))
	for g := range by {
		names = append(names, g)
	}
	sort.Strings(names)
	return names, by
}

// L04: in a mixed-instances pool every instance type has the same vCPU
// and memory, or the autoscaler's view of the pool's capacity is wrong. A
// type the catalogue lacks is a warning (its size cannot be checked, yet
// it may be a new type that works); mixing architectures is
// checkSingleArchitecture's error.
func checkEqualInstanceSizes(ctx *clusterContext, r *Rule) {
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		var first *ec2catalog.InstanceType
		for _, name := range p.InstanceTypes {
			it, ok := ec2catalog.Lookup(name)
			if !ok {
				ctx.poolWith(r, p, SeverityWarning, unknownTypeHint,
					"instance type %s is not in the catalogue: size not checked; `bosun catalogue` lists what is known", name)
				continue
			}
			if first == nil {
				first = &it
				continue
			}
			if it.VCPU != first.VCPU || it.MemoryMiB != first.MemoryMiB {
				ctx.pool(r, p, "%s has %s but %s has %s; a mixed pool needs equal sizes",
					first.Name, describe(*first), it.Name, describe(it))
			}
		}
	}
}

// unknownTypeHint is the hint of L04's warning about a type the catalogue
// lacks.
const unknownTypeHint = "check the name with `bosun catalogue --family <family>` (a typo launches nothing); a type newer than the catalogue works, but keep the pool's types of one size by hand"

// L04: one pool, one architecture. An arm64 (Graviton) node needs images
// built for arm64; a pool that mixes them with x86_64 types lands pods on
// nodes whose architecture they may not run on, and its template node
// (the autoscaler's view) is one architecture only.
func checkSingleArchitecture(ctx *clusterContext, r *Rule) {
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		var first *ec2catalog.InstanceType
		for _, name := range p.InstanceTypes {
			it, ok := ec2catalog.Lookup(name)
			if !ok {
				continue
			}
			if first == nil {
				first = &it
				continue
			}
			if it.Arch != first.Arch {
				ctx.pool(r, p, "mixes architectures: %s is %s but %s is %s", first.Name, first.Arch, it.Name, it.Arch)
				break
			}
		}
	}
}

func describe(it ec2catalog.InstanceType) string {
	return fmt.Sprintf("%d vCPU, %g GiB, %s", it.VCPU, it.MemoryGiB(), it.Arch)
}

// L05: more than 4 pools per group break AZ rebalancing and fallback.
func checkMaxPoolsPerGroup(ctx *clusterContext, r *Rule) {
	names, by := ctx.groups()
	for _, g := range names {
		if pools := by[g]; len(pools) > 4 {
			ctx.pool(r, pools[4], "application group %q has %d pools (%s); at most 4 (2 spot + 2 on-demand)", g, len(pools), poolNames(pools))
		}
	}
}

func poolNames(pools []*fleet.NodePool) string {
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// L06: a dedicated pool keeps other pods off with a taint and has its own
// overprovisioning, so peaks of its application find room at once.
func checkDedicatedPools(ctx *clusterContext, r *Rule) {
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		if p.Role != fleet.RoleDedicated {
			continue
		}
		tainted := false
		for _, t := range p.Taints {
			if t.Effect == "NoSchedule" || t.Effect == "NoExecute" {
				tainted = true
			}
		}
		if !tainted {
			ctx.pool(r, p, "dedicated pool without a NoSchedule or NoExecute taint; other pods will land on it")
		}
		if !ctx.hasOverprovisioning(p) {
			ctx.pool(r, p, "dedicated pool without its own overprovisioning: expected a pod labelled %s=true that fits the pool, or an agent that runs the overprovisioner (--controllers=...,overprovisioner, its ConfigMap rendered), which gives the pool Deployment %s",
				OverprovisioningLabel, agentapi.DeploymentName("pool-"+p.Name))
		}
	}
}

// hasOverprovisioning reports whether the pool has its own headroom:
// static pause pods that fit it, or a running overprovisioner whose target
// for the pool's nodes is the pool's own.
func (ctx *clusterContext) hasOverprovisioning(p *fleet.NodePool) bool {
	for _, w := range ctx.workloads {
		if w.overprovisioning() && inPools(w, p) {
			return true
		}
	}
	return ctx.runningOverprovisioner() != nil && agentapi.PoolTarget(p) == "pool-"+p.Name
}

// L07: system pods on dedicated on-demand nodes, so a cold start or a
// spot reclaim cannot take the platform down with the workloads.
func checkSystemPool(ctx *clusterContext, r *Rule) {
	found := false
	for i := range ctx.cluster.NodePools {
		p := &ctx.cluster.NodePools[i]
		if p.Role != fleet.RoleSystem {
			continue
		}
		found = true
		if p.Lifecycle != fleet.LifecycleOnDemand {
			ctx.pool(r, p, "system pool is %s; system pools must be on-demand", p.Lifecycle)
		}
	}
	if !found {
		ctx.clusterFinding(r, 0, "cluster %s has no node pool with role system", ctx.cluster.ID)
	}
}

// L21, L57: spot capacity runs out; each spot pool needs an on-demand pool
// of lower priority in its group for the autoscaler to fall back to.
func checkSpotFallback(ctx *clusterContext, r *Rule) {
	names, by := ctx.groups()
	for _, g := range names {
		for _, p := range by[g] {
			if p.Lifecycle != fleet.LifecycleSpot {
				continue
			}
			ok := false
			for _, q := range by[g] {
				if q.Lifecycle == fleet.LifecycleOnDemand && q.Priority < p.Priority {
					ok = true
				}
			}
			if !ok {
				ctx.pool(r, p, "spot pool (priority %d) has no on-demand pool of lower priority in application group %q", p.Priority, g)
			}
		}
	}
}

// L23: spot needs many instance types and several zones so one reclaim
// does not empty the group.
func checkSpotDiversity(ctx *clusterContext, r *Rule) {
	min := ctx.fleet.Settings.Lint.MinSpotInstanceTypes
	if min == 0 {
		min = 10
	}
	names, by := ctx.groups()
	for _, g := range names {
		types := map[string]bool{}
		var first *fleet.NodePool
		for _, p := range by[g] {
			if p.Lifecycle != fleet.LifecycleSpot {
				continue
			}
			if first == nil {
				first = p
			}
			for _, t := range p.InstanceTypes {
				types[t] = true
			}
			if zones := distinct(p.Zones); zones < 2 {
				ctx.pool(r, p, "spot pool spans %d zone(s); at least 2", zones)
			}
		}
		if first != nil && len(types) < min {
			ctx.pool(r, first, "the spot pools of application group %q span %d instance types; at least %d", g, len(types), min)
		}
	}
}

func distinct(items []string) int {
	seen := map[string]bool{}
	for _, s := range items {
		seen[s] = true
	}
	return len(seen)
}
