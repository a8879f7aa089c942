package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"

	"github.com/bosun-platform/bosun/internal/provider"
)

// Scale-ups through EC2 Auto Scaling's LaunchInstances (synchronous
// provisioning): the launch happens in the call, which returns the new
// instance IDs and, for what could not launch, the error per instance type
// and zone. A capacity error is thus known when SetTargetSize returns, not
// a pass later from the group's failed scaling activities (L11). The group
// keeps launched instances as its own and raises its desired capacity by
// them; with RetryStrategy none, what failed is not retried in the
// background, so the provisioner falls back to the next group at once.
//
// Where the API is not available (an older endpoint, an emulator such as
// moto) the first call's error switches the provider to SetDesiredCapacity
// for good, logged once.

// errLaunchUnsupported: the endpoint does not know LaunchInstances.
var errLaunchUnsupported = errors.New("LaunchInstances not supported by this endpoint")

// launchUnsupportedCodes are the error codes of an endpoint that does not
// implement an operation.
var launchUnsupportedCodes = map[string]bool{
	"InvalidAction": true, "UnknownOperationException": true, "UnknownOperation": true,
	"UnsupportedOperation": true, "NotImplemented": true, "InvalidOperation": true,
}

// isUnsupported reports whether err says the endpoint lacks the operation
// (rather than a transient or a capacity failure): an AWS error code for
// an unknown operation, or a 404, 500 or 501 whose body is no AWS error
// document at all (moto answers operations it lacks with an HTML 500; AWS
// itself answers its own failures with an error code, InternalFailure).
func isUnsupported(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		return launchUnsupportedCodes[api.ErrorCode()]
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound, http.StatusNotImplemented, http.StatusInternalServerError:
			return true
		}
	}
	return false
}

// useLaunch reports whether scale-ups go through LaunchInstances.
func (p *Provider) useLaunch() bool {
	if p.opts.DisableLaunchInstances {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.launchUnsupported
}

// launchPlan spreads n new instances over the group's zones, each to the
// zone with the fewest live instances (ties: zone order), skipping zones
// where every offering of the group is marked unavailable unless all are.
func (p *Provider) launchPlan(gs *groupSnap, n int, now time.Time) map[string]int {
	g := gs.group
	zones := append([]string(nil), g.Zones...)
	sort.Strings(zones)
	var open []string
	for _, z := range zones {
		for _, t := range g.InstanceTypes {
			if !p.unavailable.unavailable(offeringKey{t, z, g.Lifecycle}, now) {
				open = append(open, z)
				break
			}
		}
	}
	if len(open) == 0 {
		open = zones
	}
	count := map[string]int{}
	for _, in := range gs.instances {
		if in.State == provider.Pending || in.State == provider.Running {
			count[in.Zone]++
		}
	}
	plan := map[string]int{}
	for range n {
		best := ""
		for _, z := range open {
			if best == "" || count[z] < count[best] {
				best = z
			}
		}
		if best == "" {
			break
		}
		count[best]++
		plan[best]++
	}
	return plan
}

// launch raises the group by n through LaunchInstances, one call per zone
// (the API takes one zone per call in a multi-zone group). Failed launches
// are recorded as Failed instances of the group, and capacity errors mark
// their offerings unavailable. errLaunchUnsupported when the endpoint lacks
// the API (nothing was launched then).
func (p *Provider) launch(ctx context.Context, gs *groupSnap, n int) error {
	now := p.opts.Clock.Now()
	plan := p.launchPlan(gs, n, now)
	zones := make([]string, 0, len(plan))
	for z := range plan {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	var failed []provider.Instance
	defer func() {
		p.mu.Lock()
		p.launchFailed[gs.group.ID] = append(p.launchFailed[gs.group.ID], failed...)
		p.mu.Unlock()
	}()
	for i, z := range zones {
		in := &autoscaling.LaunchInstancesInput{
			AutoScalingGroupName: aws.String(gs.asgName),
			RequestedCapacity:    aws.Int32(int32(plan[z])), // #nosec G115 -- bounded by MaxSize
			ClientToken:          aws.String(clientToken(gs.asgName, z, now)),
			RetryStrategy:        asgtypes.RetryStrategyNone,
		}
		if len(gs.group.Zones) > 1 {
			in.AvailabilityZones = []string{z}
		}
		cctx, cancel := p.call(ctx)
		out, err := p.c.ASG.LaunchInstances(cctx, in)
		cancel()
		if err != nil {
			if i == 0 && isUnsupported(err) {
				p.mu.Lock()
				p.launchUnsupported = true
				p.mu.Unlock()
				p.opts.Logger.Warn("LaunchInstances is not available here; scaling up with SetDesiredCapacity from now on", "group", gs.group.ID, "error", err)
				return errLaunchUnsupported
			}
			return fmt.Errorf("launching %d instance(s) in %s of %s (%s), %w", plan[z], z, gs.group.ID, gs.asgName, err)
		}
		for j, e := range out.Errors {
			f := launchError(gs.group, e, aws.ToString(in.ClientToken)+"-"+strconv.Itoa(j), now)
			if f.Zone == "" {
				f.Zone = z
			}
			failed = append(failed, f)
			if f.ErrorClass == provider.InsufficientCapacity {
				p.unavailable.mark(gs.group, f, now.Add(p.opts.UnavailableTTL))
			}
		}
	}
	return nil
}

// launchError maps one error of a LaunchInstances answer to a Failed
// instance of group g.
func launchError(g provider.NodeGroup, e asgtypes.LaunchInstancesError, id string, now time.Time) provider.Instance {
	msg := strings.TrimSpace(aws.ToString(e.ErrorCode) + ": " + aws.ToString(e.ErrorMessage))
	return provider.Instance{
		ID: id, Group: g.ID, Lifecycle: g.Lifecycle, State: provider.Failed, LaunchTime: now,
		InstanceType: aws.ToString(e.InstanceType), Zone: aws.ToString(e.AvailabilityZone),
		ErrorClass: ClassifyFailure(msg), ErrorMessage: msg,
	}
}

// clientToken is LaunchInstances' idempotency token: the same for the
// SDK's retries of one call, different for every scale-up.
func clientToken(asg, zone string, now time.Time) string {
	sum := sha256.Sum256([]byte(asg + "/" + zone + "/" + strconv.FormatInt(now.UnixNano(), 10)))
	return "bosun-" + hex.EncodeToString(sum[:16])
}

// launchFailuresLocked returns the group's failed LaunchInstances attempts
// of its current scale-up, pruning those older than the failure window
// (p.mu held).
func (p *Provider) launchFailuresLocked(id string, now time.Time) []provider.Instance {
	var kept []provider.Instance
	for _, f := range p.launchFailed[id] {
		if now.Sub(f.LaunchTime) < p.opts.FailureWindow {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		delete(p.launchFailed, id)
		return nil
	}
	p.launchFailed[id] = kept
	return kept
}
