package localcloud

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bosun-platform/bosun/internal/provider"
)

// savedState is what survives a restart of `bosun up --keep`.
type savedState struct {
	Seq           int                           `json:"seq"`
	Limits        []CapacityLimit               `json:"limits"`
	Interruptions []provider.InterruptionNotice `json:"interruptions"`
	Groups        map[string]savedGroup         `json:"groups"`
}

type savedGroup struct {
	TargetSize int                 `json:"targetSize"`
	Instances  []provider.Instance `json:"instances"`
}

// MarshalState encodes the cloud's dynamic state: target sizes, instances,
// capacity limits and notices. Group definitions come from the fleet.
func (c *Cloud) MarshalState() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := savedState{Seq: c.seq, Limits: c.limits, Interruptions: c.interruptions, Groups: map[string]savedGroup{}}
	for id, g := range c.groups {
		sg := savedGroup{TargetSize: g.TargetSize}
		for _, in := range g.instances {
			sg.Instances = append(sg.Instances, copyInstance(in))
		}
		s.Groups[id] = sg
	}
	return json.Marshal(s)
}

// LoadState restores state saved by MarshalState onto groups already added
// with AddCluster. Groups no longer in the fleet are dropped; target sizes
// are clamped to the groups' current bounds.
func (c *Cloud) LoadState(data []byte) error {
	var s savedState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decoding saved local cloud state, %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq, c.limits, c.interruptions = s.Seq, s.Limits, s.Interruptions
	for id, sg := range s.Groups {
		g, ok := c.groups[id]
		if !ok {
			continue
		}
		g.TargetSize = clamp(sg.TargetSize, g.MinSize, g.MaxSize)
		g.instances = nil
		for i := range sg.Instances {
			in := sg.Instances[i]
			g.instances = append(g.instances, &in)
		}
	}
	return nil
}

// Bootstrap launches every group's minimum as instances that have already
// booted, so a new cluster starts with its base nodes instead of waiting a
// boot delay for each; the next Reconcile registers them.
func (c *Cloud) Bootstrap(ctx context.Context) error {
	c.mu.Lock()
	booted := c.clock.Now().Add(-c.cfg.BootDelay)
	for _, g := range c.groups {
		n := 0
		for _, in := range g.instances {
			if live(in) {
				n++
			}
		}
		for ; n < g.TargetSize; n++ {
			in := c.launch(g, booted)
			g.instances = append(g.instances, in)
			if in.State == provider.Failed {
				g.failures++
				g.nextLaunch = c.clock.Now().Add(c.cfg.LaunchRetry)
				break
			}
		}
	}
	c.mu.Unlock()
	return c.Reconcile(ctx)
}
