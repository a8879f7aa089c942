// Package fake is an in-memory provider.Provider for unit tests of the
// controllers that use a cloud. Scaling is instant: SetTargetSize creates
// Running instances (or Failed ones for offerings marked unavailable) and
// removes instances synchronously. Knobs inject failures.
package fake

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/bosun-platform/bosun/internal/provider"
)

// Provider is the fake. The zero value is not usable; use New.
type Provider struct {
	mu sync.Mutex
	// NextErr, if set, is returned by the next call of any method, then
	// cleared.
	NextErr error
	// Unavailable marks offerings ("type/zone/lifecycle") with no capacity:
	// launches there fail with InsufficientCapacity.
	Unavailable map[string]bool
	// FailAck, if set, is returned by the next AckInterruption, then
	// cleared.
	FailAck error
	// Calls counts calls by method name.
	Calls map[string]int

	groups        map[string]*provider.NodeGroup
	instances     map[string][]provider.Instance
	offerings     []provider.Offering
	interruptions []provider.InterruptionNotice
	acked         map[string]int
	seq           int
	now           func() time.Time
}

// New returns a fake with the given groups and offerings; now supplies
// launch times (time.Now if nil).
func New(groups []provider.NodeGroup, offerings []provider.Offering, now func() time.Time) *Provider {
	if now == nil {
		now = time.Now
	}
	p := &Provider{
		Unavailable: map[string]bool{},
		Calls:       map[string]int{},
		groups:      map[string]*provider.NodeGroup{},
		instances:   map[string][]provider.Instance{},
		acked:       map[string]int{},
		offerings:   offerings,
		now:         now,
	}
	for i := range groups {
		g := groups[i]
		p.groups[g.ID] = &g
	}
	return p
}

// OfferingKey is the key of Unavailable.
func OfferingKey(instanceType, zone string, l provider.Lifecycle) string {
	return instanceType + "/" + zone + "/" + string(l)
}

var _ provider.Provider = (*Provider)(nil)

func (p *Provider) enter(method string) error {
	p.Calls[method]++
	if err := p.NextErr; err != nil {
		p.NextErr = nil
		return err
	}
	return nil
}

// NodeGroups implements provider.Provider.
func (p *Provider) NodeGroups(context.Context) ([]provider.NodeGroup, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("NodeGroups"); err != nil {
		return nil, err
	}
	out := make([]provider.NodeGroup, 0, len(p.groups))
	for _, g := range p.groups {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// NodeGroup implements provider.Provider.
func (p *Provider) NodeGroup(_ context.Context, id string) (provider.NodeGroup, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("NodeGroup"); err != nil {
		return provider.NodeGroup{}, err
	}
	g, ok := p.groups[id]
	if !ok {
		return provider.NodeGroup{}, fmt.Errorf("node group %q, %w", id, provider.ErrNotFound)
	}
	return *g, nil
}

// SetTargetSize implements provider.Provider: instances appear or vanish at
// once. Launches try the group's types and zones in order and fail with
// InsufficientCapacity when all are unavailable.
func (p *Provider) SetTargetSize(_ context.Context, id string, size int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("SetTargetSize"); err != nil {
		return err
	}
	g, ok := p.groups[id]
	if !ok {
		return fmt.Errorf("node group %q, %w", id, provider.ErrNotFound)
	}
	if size < g.MinSize || size > g.MaxSize {
		return fmt.Errorf("node group %q: size %d not in [%d, %d], %w", id, size, g.MinSize, g.MaxSize, provider.ErrOutOfRange)
	}
	g.TargetSize = size
	var live []provider.Instance
	for _, in := range p.instances[id] {
		if in.State != provider.Failed {
			live = append(live, in)
		}
	}
	for len(live) > size {
		live = live[:len(live)-1]
	}
	var failed []provider.Instance
	for len(live) < size {
		in, ok := p.launch(g)
		if !ok {
			failed = append(failed, in)
			break
		}
		live = append(live, in)
	}
	p.instances[id] = append(live, failed...)
	return nil
}

func (p *Provider) launch(g *provider.NodeGroup) (provider.Instance, bool) {
	p.seq++
	in := provider.Instance{ID: fmt.Sprintf("i-%05d", p.seq), Group: g.ID, Lifecycle: g.Lifecycle, LaunchTime: p.now()}
	for _, t := range g.InstanceTypes {
		for _, z := range g.Zones {
			if p.Unavailable[OfferingKey(t, z, g.Lifecycle)] {
				continue
			}
			in.InstanceType, in.Zone, in.State = t, z, provider.Running
			in.NodeName = "node-" + in.ID
			in.ProviderID = "fake:///" + z + "/" + in.ID
			return in, true
		}
	}
	in.State = provider.Failed
	in.ErrorClass = provider.InsufficientCapacity
	in.ErrorMessage = "no capacity in any offering of the group"
	return in, false
}

// Instances implements provider.Provider.
func (p *Provider) Instances(_ context.Context, id string) ([]provider.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("Instances"); err != nil {
		return nil, err
	}
	if _, ok := p.groups[id]; !ok {
		return nil, fmt.Errorf("node group %q, %w", id, provider.ErrNotFound)
	}
	out := append([]provider.Instance(nil), p.instances[id]...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeleteInstances implements provider.Provider.
func (p *Provider) DeleteInstances(_ context.Context, id string, ids []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("DeleteInstances"); err != nil {
		return err
	}
	g, ok := p.groups[id]
	if !ok {
		return fmt.Errorf("node group %q, %w", id, provider.ErrNotFound)
	}
	drop := map[string]bool{}
	for _, i := range ids {
		drop[i] = true
	}
	var keep []provider.Instance
	removed := 0
	for _, in := range p.instances[id] {
		if drop[in.ID] && in.State != provider.Failed {
			removed++
			continue
		}
		keep = append(keep, in)
	}
	if g.TargetSize-removed < g.MinSize {
		return fmt.Errorf("node group %q: deleting %d would go below min %d, %w", id, removed, g.MinSize, provider.ErrOutOfRange)
	}
	g.TargetSize -= removed
	p.instances[id] = keep
	return nil
}

// Offerings implements provider.Provider; availability follows Unavailable.
func (p *Provider) Offerings(context.Context) ([]provider.Offering, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("Offerings"); err != nil {
		return nil, err
	}
	out := append([]provider.Offering(nil), p.offerings...)
	for i := range out {
		out[i].Available = !p.Unavailable[OfferingKey(out[i].InstanceType, out[i].Zone, out[i].Lifecycle)]
	}
	return out, nil
}

// Interrupt issues a notice for an instance, terminating after notice.
func (p *Provider) Interrupt(instanceID string, notice time.Duration) (provider.InterruptionNotice, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for gid, list := range p.instances {
		for i, in := range list {
			if in.ID != instanceID {
				continue
			}
			now := p.now()
			n := provider.InterruptionNotice{InstanceID: in.ID, Group: gid, NodeName: in.NodeName, Issued: now, TerminationTime: now.Add(notice), Reason: "requested", Handle: "fake-" + in.ID}
			list[i].Interruption = &n
			p.interruptions = append(p.interruptions, n)
			return n, nil
		}
	}
	return provider.InterruptionNotice{}, fmt.Errorf("instance %q, %w", instanceID, provider.ErrNotFound)
}

// Interruptions implements provider.Provider.
func (p *Provider) Interruptions(_ context.Context, since time.Time) ([]provider.InterruptionNotice, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("Interruptions"); err != nil {
		return nil, err
	}
	var out []provider.InterruptionNotice
	for _, n := range p.interruptions {
		if !n.Issued.Before(since) {
			out = append(out, n)
		}
	}
	return out, nil
}

var _ provider.InterruptionAcker = (*Provider)(nil)

// AckInterruption implements provider.InterruptionAcker: it counts the
// acknowledgements of each instance's notice (see Acks).
func (p *Provider) AckInterruption(_ context.Context, n provider.InterruptionNotice) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enter("AckInterruption"); err != nil {
		return err
	}
	if err := p.FailAck; err != nil {
		p.FailAck = nil
		return err
	}
	p.acked[n.InstanceID]++
	return nil
}

// Acks returns how many times the notice of instanceID was acknowledged.
func (p *Provider) Acks(instanceID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked[instanceID]
}

// SetState forces an instance's state, e.g. to model a launch that hangs.
func (p *Provider) SetState(groupID, instanceID string, s provider.InstanceState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.instances[groupID] {
		if p.instances[groupID][i].ID == instanceID {
			p.instances[groupID][i].State = s
		}
	}
}
