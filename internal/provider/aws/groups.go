package aws

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/provider"
)

// snapshot is one read of the cluster's groups and instances. It serves
// every NodeGroup and Instances call of a provisioner pass, so a pass
// costs the same few requests for 1 group or 500.
type snapshot struct {
	at     time.Time
	groups []provider.NodeGroup
	byID   map[string]*groupSnap
	// instance ID -> group ID, for interruption notices.
	owner map[string]string
}

type groupSnap struct {
	group     provider.NodeGroup
	asgName   string
	instances []provider.Instance
}

// asgNameTag is the tag EC2 Auto Scaling puts on every instance it
// launches.
const asgNameTag = "aws:autoscaling:groupName"

// ProviderID is the Kubernetes provider ID of an EC2 instance, as the AWS
// cloud provider sets it on the Node.
func ProviderID(zone, instanceID string) string { return "aws:///" + zone + "/" + instanceID }

// current returns a snapshot no older than SnapshotMaxAge, reading one if
// needed.
func (p *Provider) current(ctx context.Context) (*snapshot, error) {
	p.mu.Lock()
	s := p.snap
	p.mu.Unlock()
	if s != nil && p.opts.Clock.Since(s.at) < p.opts.SnapshotMaxAge {
		return s, nil
	}
	return p.refresh(ctx)
}

// invalidate drops the snapshot after a write.
func (p *Provider) invalidate() {
	p.mu.Lock()
	p.snap = nil
	p.mu.Unlock()
}

// refresh reads the groups (one paginated DescribeAutoScalingGroups by
// tag), their instances (one DescribeInstances) and, while a scale-up is
// outstanding, the failed scaling activities (one account-wide
// DescribeScalingActivities bounded by start time).
func (p *Provider) refresh(ctx context.Context) (*snapshot, error) {
	now := p.opts.Clock.Now()
	asgs, err := p.describeGroups(ctx)
	if err != nil {
		return nil, err
	}
	s := &snapshot{at: now, byID: map[string]*groupSnap{}, owner: map[string]string{}}
	var withInstances []string
	for i := range asgs {
		g, err := p.parseGroup(&asgs[i])
		if err != nil {
			p.opts.Logger.Warn("ignoring Auto Scaling group", "error", err)
			continue
		}
		if prev, dup := s.byID[g.ID]; dup {
			p.opts.Logger.Warn("two Auto Scaling groups for one pool; using the first", "group", g.ID, "kept", prev.asgName, "ignored", aws.ToString(asgs[i].AutoScalingGroupName))
			continue
		}
		s.byID[g.ID] = &groupSnap{group: g, asgName: aws.ToString(asgs[i].AutoScalingGroupName)}
		s.groups = append(s.groups, g)
		if len(asgs[i].Instances) > 0 {
			withInstances = append(withInstances, aws.ToString(asgs[i].AutoScalingGroupName))
		}
	}
	sort.Slice(s.groups, func(i, j int) bool { return s.groups[i].ID < s.groups[j].ID })
	details, err := p.describeInstances(ctx, withInstances)
	if err != nil {
		return nil, err
	}
	byName := map[string]*groupSnap{}
	for _, gs := range s.byID {
		byName[gs.asgName] = gs
	}
	p.mu.Lock()
	seen := map[string]bool{}
	for i := range asgs {
		gs := byName[aws.ToString(asgs[i].AutoScalingGroupName)]
		if gs == nil {
			continue
		}
		for _, ai := range asgs[i].Instances {
			in := p.instanceLocked(&gs.group, ai, details[aws.ToString(ai.InstanceId)], now)
			seen[in.ID] = true
			s.owner[in.ID] = gs.group.ID
			gs.instances = append(gs.instances, in)
		}
	}
	for id := range p.firstSee {
		if !seen[id] {
			delete(p.firstSee, id)
		}
	}
	for id, gs := range s.byID {
		gs.instances = append(gs.instances, p.launchFailuresLocked(id, now)...)
	}
	outstanding, since := p.outstandingLocked(s, now)
	p.mu.Unlock()
	if len(outstanding) > 0 {
		if err := p.addFailures(ctx, s, outstanding, since, now); err != nil {
			return nil, err
		}
	}
	p.attachNotices(s)
	for _, gs := range s.byID {
		sort.Slice(gs.instances, func(i, j int) bool { return gs.instances[i].ID < gs.instances[j].ID })
	}
	// Fresh from when the reads ended: a slow read must not leave the
	// pass's Instances calls a stale snapshot that each read again.
	s.at = p.opts.Clock.Now()
	p.mu.Lock()
	p.snap = s
	p.mu.Unlock()
	return s, nil
}

func (p *Provider) describeGroups(ctx context.Context) ([]asgtypes.AutoScalingGroup, error) {
	var out []asgtypes.AutoScalingGroup
	in := &autoscaling.DescribeAutoScalingGroupsInput{
		Filters:    []asgtypes.Filter{{Name: aws.String("tag:" + TagCluster), Values: []string{p.opts.Cluster}}},
		MaxRecords: aws.Int32(100),
	}
	for {
		cctx, cancel := p.call(ctx)
		resp, err := p.c.ASG.DescribeAutoScalingGroups(cctx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describing the Auto Scaling groups of cluster %s, %w", p.opts.Cluster, err)
		}
		out = append(out, resp.AutoScalingGroups...)
		if aws.ToString(resp.NextToken) == "" {
			return out, nil
		}
		in.NextToken = resp.NextToken
	}
}

// instanceDetail is what DescribeInstances adds to an ASG's instance list.
type instanceDetail struct {
	launch    time.Time
	spot      bool
	nodeName  string
	zone      string
	typ       string
	stateName ec2types.InstanceStateName
}

// maxFilterValues is how many values EC2 accepts in one filter; more
// groups than that are read in batches (one call per 200 groups).
const maxFilterValues = 200

// batches splits values into slices of at most n.
func batches(values []string, n int) [][]string {
	var out [][]string
	for len(values) > n {
		out = append(out, values[:n:n])
		values = values[n:]
	}
	if len(values) > 0 {
		out = append(out, values)
	}
	return out
}

// describeInstances reads the instances of the named groups by the tag
// Auto Scaling puts on them: one call (and its pages) per 200 groups.
func (p *Provider) describeInstances(ctx context.Context, groups []string) (map[string]instanceDetail, error) {
	out := map[string]instanceDetail{}
	sort.Strings(groups)
	for _, batch := range batches(groups, maxFilterValues) {
		if err := p.describeInstanceBatch(ctx, batch, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *Provider) describeInstanceBatch(ctx context.Context, groups []string, out map[string]instanceDetail) error {
	in := &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + asgNameTag), Values: groups},
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "shutting-down", "stopping", "stopped"}},
		},
		MaxResults: aws.Int32(1000),
	}
	for {
		cctx, cancel := p.call(ctx)
		resp, err := p.c.EC2.DescribeInstances(cctx, in)
		cancel()
		if err != nil {
			return fmt.Errorf("describing the instances of cluster %s, %w", p.opts.Cluster, err)
		}
		for _, r := range resp.Reservations {
			for _, i := range r.Instances {
				d := instanceDetail{
					launch: aws.ToTime(i.LaunchTime), spot: i.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot,
					nodeName: aws.ToString(i.PrivateDnsName), typ: string(i.InstanceType),
				}
				if i.Placement != nil {
					d.zone = aws.ToString(i.Placement.AvailabilityZone)
				}
				if i.State != nil {
					d.stateName = i.State.Name
				}
				out[aws.ToString(i.InstanceId)] = d
			}
		}
		if aws.ToString(resp.NextToken) == "" {
			return nil
		}
		in.NextToken = resp.NextToken
	}
}

// parseGroup turns a tagged Auto Scaling group into a node group. A tag it
// cannot parse makes it refuse the group (never act on a value it could
// not read).
func (p *Provider) parseGroup(a *asgtypes.AutoScalingGroup) (provider.NodeGroup, error) {
	name := aws.ToString(a.AutoScalingGroupName)
	tags := map[string]string{}
	for _, t := range a.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	where := "Auto Scaling group " + name
	pool := tags[TagPool]
	if pool == "" {
		return provider.NodeGroup{}, fmt.Errorf("%s: no tag %s; expected the fleet pool name", where, TagPool)
	}
	g := provider.NodeGroup{
		ID: p.opts.Cluster + "/" + pool, Cluster: p.opts.Cluster, Pool: pool,
		MinSize: int(aws.ToInt32(a.MinSize)), MaxSize: int(aws.ToInt32(a.MaxSize)), TargetSize: int(aws.ToInt32(a.DesiredCapacity)),
		Zones: append([]string(nil), a.AvailabilityZones...),
	}
	sort.Strings(g.Zones)
	mip := a.MixedInstancesPolicy
	switch v, ok := tags[TagLifecycle]; {
	case ok:
		lc, err := provider.ParseLifecycle(v)
		if err != nil {
			return provider.NodeGroup{}, fmt.Errorf("%s: tag %s: %w", where, TagLifecycle, err)
		}
		g.Lifecycle = lc
	case mip != nil && mip.InstancesDistribution != nil && aws.ToInt32(mip.InstancesDistribution.OnDemandPercentageAboveBaseCapacity) == 0 && aws.ToInt32(mip.InstancesDistribution.OnDemandBaseCapacity) == 0:
		g.Lifecycle = provider.Spot
	default:
		g.Lifecycle = provider.OnDemand
	}
	if v, ok := tags[TagPriority]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return provider.NodeGroup{}, fmt.Errorf("%s: tag %s=%q: expected an integer", where, TagPriority, v)
		}
		g.Priority = n
	}
	if mip != nil && mip.LaunchTemplate != nil {
		for _, o := range mip.LaunchTemplate.Overrides {
			if t := aws.ToString(o.InstanceType); t != "" {
				g.InstanceTypes = append(g.InstanceTypes, t)
			}
		}
	}
	if len(g.InstanceTypes) == 0 {
		seen := map[string]bool{}
		for _, in := range a.Instances {
			if t := aws.ToString(in.InstanceType); t != "" && !seen[t] {
				seen[t] = true
				g.InstanceTypes = append(g.InstanceTypes, t)
			}
		}
		sort.Strings(g.InstanceTypes)
	}
	if len(g.InstanceTypes) == 0 {
		return provider.NodeGroup{}, fmt.Errorf("%s: no instance types; expected a MixedInstancesPolicy with launch template overrides", where)
	}
	for k, v := range tags {
		switch {
		case strings.HasPrefix(k, TagNodeTemplateLabel):
			if g.Labels == nil {
				g.Labels = map[string]string{}
			}
			g.Labels[strings.TrimPrefix(k, TagNodeTemplateLabel)] = v
		case strings.HasPrefix(k, TagNodeTemplateTaint):
			value, effect, ok := strings.Cut(v, ":")
			switch corev1.TaintEffect(effect) {
			case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
			default:
				ok = false
			}
			if !ok {
				return provider.NodeGroup{}, fmt.Errorf("%s: tag %s=%q: expected value:Effect (NoSchedule, PreferNoSchedule or NoExecute)", where, k, v)
			}
			g.Taints = append(g.Taints, corev1.Taint{Key: strings.TrimPrefix(k, TagNodeTemplateTaint), Value: value, Effect: corev1.TaintEffect(effect)})
		}
	}
	sort.Slice(g.Taints, func(i, j int) bool { return g.Taints[i].Key < g.Taints[j].Key })
	return g, nil
}

// instanceLocked maps an ASG instance (p.mu held).
func (p *Provider) instanceLocked(g *provider.NodeGroup, ai asgtypes.Instance, d instanceDetail, now time.Time) provider.Instance {
	id := aws.ToString(ai.InstanceId)
	in := provider.Instance{
		ID: id, Group: g.ID, InstanceType: aws.ToString(ai.InstanceType), Zone: aws.ToString(ai.AvailabilityZone),
		Lifecycle: g.Lifecycle, State: instanceState(ai.LifecycleState), NodeName: d.nodeName, LaunchTime: d.launch,
	}
	if in.InstanceType == "" {
		in.InstanceType = d.typ
	}
	if in.Zone == "" {
		in.Zone = d.zone
	}
	if d.typ != "" {
		if d.spot {
			in.Lifecycle = provider.Spot
		} else {
			in.Lifecycle = provider.OnDemand
		}
	}
	switch d.stateName {
	case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped, ec2types.InstanceStateNameTerminated:
		in.State = provider.Terminating
	}
	if in.Zone != "" {
		in.ProviderID = ProviderID(in.Zone, id)
	}
	if in.LaunchTime.IsZero() {
		// Not in DescribeInstances yet (eventual consistency): count its
		// age from when Bosun first saw it, never from the zero time
		// (which would look past every provision timeout).
		first, ok := p.firstSee[id]
		if !ok {
			first = now
			p.firstSee[id] = now
		}
		in.LaunchTime = first
	}
	return in
}

// instanceState maps an Auto Scaling lifecycle state.
func instanceState(s asgtypes.LifecycleState) provider.InstanceState {
	switch s {
	case asgtypes.LifecycleStateInService, asgtypes.LifecycleStateStandby, asgtypes.LifecycleStateEnteringStandby:
		return provider.Running
	case asgtypes.LifecycleStatePending, asgtypes.LifecycleStatePendingWait, asgtypes.LifecycleStatePendingProceed:
		// Pending:Wait/Proceed: running, held by a lifecycle hook; it
		// boots as a node meanwhile.
		return provider.Pending
	}
	return provider.Terminating
}

// live counts the instances that are or will be nodes.
func live(ins []provider.Instance) int {
	n := 0
	for _, in := range ins {
		if in.State == provider.Pending || in.State == provider.Running {
			n++
		}
	}
	return n
}

// outstandingLocked returns the groups with a scale-up not yet fulfilled
// and the earliest start time of activities worth reading (p.mu held).
func (p *Provider) outstandingLocked(s *snapshot, now time.Time) (map[string]time.Time, time.Time) {
	out := map[string]time.Time{}
	floor := now.Add(-p.opts.FailureWindow)
	since := now
	for id, gs := range s.byID {
		if gs.group.TargetSize <= live(gs.instances) {
			continue
		}
		from := floor
		if r, ok := p.raised[id]; ok && r.After(floor) {
			// A little before the request: clocks differ.
			from = r.Add(-5 * time.Second)
		}
		out[id] = from
		if from.Before(since) {
			since = from
		}
	}
	return out, since
}

// NodeGroups implements provider.Provider: one batched read.
func (p *Provider) NodeGroups(ctx context.Context) ([]provider.NodeGroup, error) {
	s, err := p.refresh(ctx)
	if err != nil {
		return nil, err
	}
	return append([]provider.NodeGroup(nil), s.groups...), nil
}

// NodeGroup implements provider.Provider.
func (p *Provider) NodeGroup(ctx context.Context, id string) (provider.NodeGroup, error) {
	s, err := p.current(ctx)
	if err != nil {
		return provider.NodeGroup{}, err
	}
	gs, ok := s.byID[id]
	if !ok {
		return provider.NodeGroup{}, fmt.Errorf("node group %q of cluster %s, %w", id, p.opts.Cluster, provider.ErrNotFound)
	}
	return gs.group, nil
}

// Instances implements provider.Provider, from the pass's snapshot.
func (p *Provider) Instances(ctx context.Context, id string) ([]provider.Instance, error) {
	s, err := p.current(ctx)
	if err != nil {
		return nil, err
	}
	gs, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("node group %q of cluster %s, %w", id, p.opts.Cluster, provider.ErrNotFound)
	}
	return append([]provider.Instance(nil), gs.instances...), nil
}

// SetTargetSize implements provider.Provider. A scale-up goes through
// LaunchInstances where the endpoint has it (launch.go: launches in the
// call, capacity errors in its answer become Failed instances at once),
// else, and for every other change, SetDesiredCapacity with cooldowns not
// honoured. Asking for the current size again is harmless.
func (p *Provider) SetTargetSize(ctx context.Context, id string, size int) error {
	s, err := p.current(ctx)
	if err != nil {
		return err
	}
	gs, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("node group %q of cluster %s, %w", id, p.opts.Cluster, provider.ErrNotFound)
	}
	g := gs.group
	if size < g.MinSize || size > g.MaxSize {
		return fmt.Errorf("node group %q: size %d not in [%d, %d], %w", id, size, g.MinSize, g.MaxSize, provider.ErrOutOfRange)
	}
	if size > g.TargetSize {
		p.mu.Lock()
		p.raised[id] = p.opts.Clock.Now()
		delete(p.launchFailed, id) // a new attempt: the last one's failures are history
		p.mu.Unlock()
		if p.useLaunch() {
			err := p.launch(ctx, gs, size-g.TargetSize)
			p.invalidate()
			if !errors.Is(err, errLaunchUnsupported) {
				return err
			}
		}
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	_, err = p.c.ASG.SetDesiredCapacity(cctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String(gs.asgName), DesiredCapacity: aws.Int32(int32(size)), HonorCooldown: aws.Bool(false), // #nosec G115 -- bounded by MaxSize
	})
	p.invalidate()
	if err != nil {
		if isValidation(err, "above max", "below min", "outside of") {
			return fmt.Errorf("node group %q: size %d: %v, %w", id, size, err, provider.ErrOutOfRange)
		}
		return fmt.Errorf("setting the desired capacity of %s (%s) to %d, %w", id, gs.asgName, size, err)
	}
	return nil
}

// DeleteInstances implements provider.Provider with
// TerminateInstanceInAutoScalingGroup, decrementing the desired capacity.
func (p *Provider) DeleteInstances(ctx context.Context, id string, instanceIDs []string) error {
	s, err := p.refresh(ctx)
	if err != nil {
		return err
	}
	gs, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("node group %q of cluster %s, %w", id, p.opts.Cluster, provider.ErrNotFound)
	}
	liveIDs := map[string]bool{}
	for _, in := range gs.instances {
		if in.State == provider.Pending || in.State == provider.Running {
			liveIDs[in.ID] = true
		}
	}
	var drop []string
	for _, i := range instanceIDs {
		if liveIDs[i] {
			drop = append(drop, i)
			delete(liveIDs, i)
		}
	}
	if gs.group.TargetSize-len(drop) < gs.group.MinSize {
		return fmt.Errorf("node group %q: deleting %d would go below min %d, %w", id, len(drop), gs.group.MinSize, provider.ErrOutOfRange)
	}
	defer p.invalidate()
	for _, i := range drop {
		cctx, cancel := p.call(ctx)
		_, err := p.c.ASG.TerminateInstanceInAutoScalingGroup(cctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(i), ShouldDecrementDesiredCapacity: aws.Bool(true),
		})
		cancel()
		if err != nil && !isValidation(err, "not found", "not part of", "terminat") {
			return fmt.Errorf("terminating %s in %s (%s), %w", i, id, gs.asgName, err)
		}
	}
	return nil
}

// isValidation reports whether err is an Auto Scaling ValidationError whose
// message contains one of the fragments (case-insensitive).
func isValidation(err error, fragments ...string) bool {
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationError" {
		return false
	}
	msg := strings.ToLower(api.ErrorMessage())
	for _, f := range fragments {
		if strings.Contains(msg, f) {
			return true
		}
	}
	return false
}
