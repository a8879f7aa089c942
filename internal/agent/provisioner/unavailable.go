package provisioner

import (
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/provider"
)

// offering identifies an instance type in a zone with a lifecycle.
type offering struct {
	instanceType, zone string
	lifecycle          provider.Lifecycle
}

// unavailableOfferings remembers offerings that failed to launch for
// insufficient capacity or quota, for a TTL (L11): the provisioner skips
// them at once instead of waiting for a provision timeout, the way
// Karpenter caches unavailable offerings. An instance of the offering that
// was launched after the mark and runs proves the capacity is back (the
// reaper's spot replacement, L22), and ends the mark before its TTL.
type unavailableOfferings struct {
	mu    sync.Mutex
	clock clock.PassiveClock
	ttl   time.Duration
	until map[offering]time.Time
}

func newUnavailableOfferings(clk clock.PassiveClock, ttl time.Duration) *unavailableOfferings {
	return &unavailableOfferings{clock: clk, ttl: ttl, until: map[offering]time.Time{}}
}

// markGroup marks every offering of the group unavailable until now+ttl.
func (u *unavailableOfferings) markGroup(g provider.NodeGroup) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range g.InstanceTypes {
		for _, z := range g.Zones {
			u.mark(offering{t, z, g.Lifecycle})
		}
	}
}

// markOffering marks one offering unavailable until now+ttl.
func (u *unavailableOfferings) markOffering(o provider.Offering) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.mark(offering{o.InstanceType, o.Zone, o.Lifecycle})
}

// mark records o as unavailable until now+ttl; u.mu is held.
func (u *unavailableOfferings) mark(o offering) {
	u.until[o] = u.clock.Now().Add(u.ttl)
}

// running ends the mark on the offering of a running instance launched
// after the offering was marked (until-ttl): whoever launched it (this
// provisioner, the reaper, a person), the capacity is there again. lc is
// the group's lifecycle, for an instance that does not say its own.
func (u *unavailableOfferings) running(in provider.Instance, lc provider.Lifecycle) {
	if in.Lifecycle != "" {
		lc = in.Lifecycle
	}
	o := offering{in.InstanceType, in.Zone, lc}
	u.mu.Lock()
	defer u.mu.Unlock()
	if until, ok := u.until[o]; ok && in.LaunchTime.After(until.Add(-u.ttl)) {
		delete(u.until, o)
	}
}

// groupAvailable reports whether any offering of the group may be tried.
func (u *unavailableOfferings) groupAvailable(g provider.NodeGroup) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.clock.Now()
	for _, t := range g.InstanceTypes {
		for _, z := range g.Zones {
			if exp, ok := u.until[offering{t, z, g.Lifecycle}]; !ok || !now.Before(exp) {
				return true
			}
		}
	}
	return false
}

// count returns how many offerings are marked unavailable now.
func (u *unavailableOfferings) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.clock.Now()
	n := 0
	for o, exp := range u.until {
		if now.Before(exp) {
			n++
		} else {
			delete(u.until, o)
		}
	}
	return n
}
