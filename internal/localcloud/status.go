package localcloud

import (
	"context"
	"sort"

	"github.com/bosun-platform/bosun/internal/provider"
)

// Status returns a snapshot of groups, limits and usage.
func (c *Cloud) Status(context.Context) Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s Status
	for _, g := range c.groups {
		gs := GroupStatus{
			ID: g.ID, Lifecycle: string(g.Lifecycle), Priority: g.Priority,
			MinSize: g.MinSize, MaxSize: g.MaxSize, TargetSize: g.TargetSize, Failures: g.failures,
		}
		for _, in := range g.instances {
			switch {
			case in.Interruption != nil && in.State != provider.Terminating:
				gs.Interrupted++
			case in.State == provider.Running:
				gs.Running++
			case in.State == provider.Pending:
				gs.Pending++
			case in.State == provider.Terminating:
				gs.Terminating++
			case in.State == provider.Failed:
				gs.LastError = string(in.ErrorClass) + ": " + in.ErrorMessage
			}
		}
		s.Groups = append(s.Groups, gs)
	}
	sort.Slice(s.Groups, func(i, j int) bool { return s.Groups[i].ID < s.Groups[j].ID })
	s.Limits = append([]CapacityLimit(nil), c.limits...)
	for k, n := range c.usage() {
		s.Usage = append(s.Usage, OfferingUsage{OfferingKey: k, Instances: n})
	}
	sort.Slice(s.Usage, func(i, j int) bool { return s.Usage[i].String() < s.Usage[j].String() })
	return s
}
