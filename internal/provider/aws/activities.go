package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/bosun-platform/bosun/internal/provider"
)

// maxActivityPages bounds the account-wide activity read of one pass.
const maxActivityPages = 3

// addFailures reads the failed scaling activities started since since, in
// one account-wide call (more pages only in a busy account), and adds those
// of outstanding groups to the snapshot as Failed instances (L11: the
// provisioner sees a capacity error within one pass of AWS recording it,
// instead of waiting for a provision timeout). Capacity errors also mark
// their offerings unavailable for UnavailableTTL.
func (p *Provider) addFailures(ctx context.Context, s *snapshot, outstanding map[string]time.Time, since, now time.Time) error {
	byASG := map[string]*groupSnap{}
	for id := range outstanding {
		byASG[s.byID[id].asgName] = s.byID[id]
	}
	in := &autoscaling.DescribeScalingActivitiesInput{
		Filters:    []asgtypes.Filter{{Name: aws.String("StartTimeLowerBound"), Values: []string{since.UTC().Format(time.RFC3339)}}},
		MaxRecords: aws.Int32(100),
	}
	if len(outstanding) == 1 {
		// One group: ask for it alone (less to read, same one call).
		for _, gs := range byASG {
			in.AutoScalingGroupName = aws.String(gs.asgName)
		}
	}
	for page := 0; page < maxActivityPages; page++ {
		cctx, cancel := p.call(ctx)
		resp, err := p.c.ASG.DescribeScalingActivities(cctx, in)
		cancel()
		if err != nil {
			return fmt.Errorf("describing scaling activities of cluster %s, %w", p.opts.Cluster, err)
		}
		for _, a := range resp.Activities {
			gs := byASG[aws.ToString(a.AutoScalingGroupName)]
			if gs == nil || a.StatusCode != asgtypes.ScalingActivityStatusCodeFailed {
				continue
			}
			start := aws.ToTime(a.StartTime)
			if start.Before(outstanding[gs.group.ID]) {
				continue
			}
			f := FailedLaunch(gs.group, a)
			gs.instances = append(gs.instances, f)
			if f.ErrorClass == provider.InsufficientCapacity {
				p.unavailable.mark(gs.group, f, now.Add(p.opts.UnavailableTTL))
			}
		}
		if aws.ToString(resp.NextToken) == "" {
			break
		}
		in.NextToken = resp.NextToken
	}
	return nil
}

// FailedLaunch maps a failed scaling activity of group g to a Failed
// instance: its ID is the activity ID; instance type and zone are read
// from the message and details where AWS names them.
func FailedLaunch(g provider.NodeGroup, a asgtypes.Activity) provider.Instance {
	msg := aws.ToString(a.StatusMessage)
	if msg == "" {
		msg = aws.ToString(a.Description)
	}
	in := provider.Instance{
		ID: aws.ToString(a.ActivityId), Group: g.ID, Lifecycle: g.Lifecycle, State: provider.Failed,
		LaunchTime: aws.ToTime(a.StartTime), ErrorClass: ClassifyFailure(msg), ErrorMessage: msg,
	}
	in.InstanceType = instanceTypeRE.FindString(msg)
	in.Zone = zoneFromDetails(aws.ToString(a.Details))
	if in.Zone == "" {
		in.Zone = zoneRE.FindString(msg)
	}
	return in
}

var (
	instanceTypeRE = regexp.MustCompile(`\b[a-z]+[0-9][a-z0-9-]*\.(?:nano|micro|small|medium|large|[0-9]*xlarge|metal(?:-[0-9]+xl)?)\b`)
	zoneRE         = regexp.MustCompile(`\b[a-z]{2}(?:-gov)?-[a-z]+-[0-9][a-z]\b`)
)

// zoneFromDetails reads "Availability Zone" from an activity's Details,
// a JSON object such as {"Subnet ID":"subnet-1","Availability Zone":"us-east-1a"}.
func zoneFromDetails(details string) string {
	var d map[string]any
	if json.Unmarshal([]byte(details), &d) != nil {
		return ""
	}
	z, _ := d["Availability Zone"].(string)
	return z
}

// Fragments of the status messages of failed launches, as EC2 and Auto
// Scaling word them.
var (
	capacityMarkers = []string{
		"insufficientinstancecapacity",
		"insufficient capacity",
		"do not have sufficient",
		"there is no spot capacity available",
		"unfulfillablecapacity",
		"capacity-not-available",
		"capacity not available",
	}
	quotaMarkers = []string{
		"vcpulimitexceeded",
		"maxspotinstancecountexceeded",
		"instancelimitexceeded",
		"requested more vcpu capacity than your current vcpu limit",
		"max spot instance count exceeded",
	}
)

// ClassifyFailure returns the error class of a failed launch's message:
// no capacity (InsufficientInstanceCapacity, the spot "no capacity"
// messages) or a quota (VcpuLimitExceeded, MaxSpotInstanceCountExceeded),
// else OtherError.
func ClassifyFailure(msg string) provider.ErrorClass {
	m := strings.ToLower(msg)
	for _, f := range quotaMarkers {
		if strings.Contains(m, f) {
			return provider.QuotaExceeded
		}
	}
	for _, f := range capacityMarkers {
		if strings.Contains(m, f) {
			return provider.InsufficientCapacity
		}
	}
	return provider.OtherError
}
