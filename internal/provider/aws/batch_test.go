package aws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	clocktesting "k8s.io/utils/clock/testing"

	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
)

// bigASG answers DescribeAutoScalingGroups with n groups of cluster c1,
// one instance each (i-<k>), 100 per page.
type bigASG struct {
	bosunaws.ASGAPI
	n int
}

func (a bigASG) DescribeAutoScalingGroups(_ context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	start := 0
	if in.NextToken != nil {
		if _, err := fmt.Sscan(*in.NextToken, &start); err != nil {
			return nil, err
		}
	}
	out := &autoscaling.DescribeAutoScalingGroupsOutput{}
	for k := start; k < a.n && k < start+100; k++ {
		name := fmt.Sprintf("bosun-c1-p%03d", k)
		tag := func(key, v string) asgtypes.TagDescription {
			return asgtypes.TagDescription{Key: aws.String(key), Value: aws.String(v), ResourceId: aws.String(name)}
		}
		out.AutoScalingGroups = append(out.AutoScalingGroups, asgtypes.AutoScalingGroup{
			AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(0), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(1),
			AvailabilityZones: []string{"us-east-1a"},
			MixedInstancesPolicy: &asgtypes.MixedInstancesPolicy{LaunchTemplate: &asgtypes.LaunchTemplate{
				Overrides: []asgtypes.LaunchTemplateOverrides{{InstanceType: aws.String(fmt.Sprintf("t%d.large", k))}},
			}},
			Instances: []asgtypes.Instance{{InstanceId: aws.String(fmt.Sprintf("i-%d", k)), AvailabilityZone: aws.String("us-east-1a"),
				InstanceType: aws.String(fmt.Sprintf("t%d.large", k)), LifecycleState: asgtypes.LifecycleStateInService}},
			Tags: []asgtypes.TagDescription{tag(bosunaws.TagCluster, "c1"), tag(bosunaws.TagPool, fmt.Sprintf("p%03d", k)), tag(bosunaws.TagLifecycle, "spot")},
		})
	}
	if start+100 < a.n {
		out.NextToken = aws.String(fmt.Sprint(start + 100))
	}
	return out, nil
}

// filterEC2 answers DescribeInstances and DescribeInstanceTypeOfferings
// for what their filters name, refusing a filter of more than 200 values
// as EC2 does; it has no spot prices.
type filterEC2 struct {
	mu        sync.Mutex
	calls     map[string]int
	maxValues int
}

func (e *filterEC2) check(op string, filters []ec2types.Filter) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[op]++
	for _, f := range filters {
		if len(f.Values) > 200 {
			return fmt.Errorf("api error FilterLimitExceeded: filter %s has %d values, at most 200", aws.ToString(f.Name), len(f.Values))
		}
		e.maxValues = max(e.maxValues, len(f.Values))
	}
	return nil
}

func (e *filterEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := e.check("DescribeInstances", in.Filters); err != nil {
		return nil, err
	}
	var insts []ec2types.Instance
	for _, name := range in.Filters[0].Values {
		var k int
		if _, err := fmt.Sscanf(name, "bosun-c1-p%03d", &k); err != nil {
			return nil, err
		}
		insts = append(insts, ec2types.Instance{InstanceId: aws.String(fmt.Sprintf("i-%d", k)), PrivateDnsName: aws.String(fmt.Sprintf("node-%d", k)),
			LaunchTime: aws.Time(time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)), State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}})
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: insts}}}, nil
}

func (e *filterEC2) DescribeInstanceTypeOfferings(_ context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	if err := e.check("DescribeInstanceTypeOfferings", in.Filters); err != nil {
		return nil, err
	}
	out := &ec2.DescribeInstanceTypeOfferingsOutput{}
	for _, t := range in.Filters[0].Values {
		out.InstanceTypeOfferings = append(out.InstanceTypeOfferings, ec2types.InstanceTypeOffering{InstanceType: ec2types.InstanceType(t), Location: aws.String("us-east-1a")})
	}
	return out, nil
}

func (e *filterEC2) DescribeSpotPriceHistory(context.Context, *ec2.DescribeSpotPriceHistoryInput, ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	return &ec2.DescribeSpotPriceHistoryOutput{}, nil
}

type noPricing struct{}

func (noPricing) GetProducts(context.Context, *pricing.GetProductsInput, ...func(*pricing.Options)) (*pricing.GetProductsOutput, error) {
	return nil, errors.New("no Pricing API here")
}

// EC2 takes at most 200 values per filter: 250 groups are read in two
// DescribeInstances calls (and their 250 types in two offering reads),
// every instance found; 200 groups still cost one.
func TestFiltersBatchedBy200(t *testing.T) {
	for _, tc := range []struct{ groups, calls int }{{200, 1}, {250, 2}, {401, 3}} {
		e := &filterEC2{calls: map[string]int{}}
		clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
		p := bosunaws.NewWithClients(bosunaws.Clients{ASG: bigASG{n: tc.groups}, EC2: e, Pricing: noPricing{}}, bosunaws.Options{Cluster: "c1", Region: "us-east-1", Clock: clk}, nil)
		ctx := context.Background()
		groups, err := p.NodeGroups(ctx)
		if err != nil {
			t.Fatalf("%d groups: %v", tc.groups, err)
		}
		if len(groups) != tc.groups {
			t.Fatalf("%d groups read, want %d", len(groups), tc.groups)
		}
		last := groups[len(groups)-1]
		ins, err := p.Instances(ctx, last.ID)
		if err != nil || len(ins) != 1 || ins[0].NodeName != fmt.Sprintf("node-%d", tc.groups-1) {
			t.Errorf("%d groups: instances of the last group %+v, %v; want its node name from DescribeInstances", tc.groups, ins, err)
		}
		if got := e.calls["DescribeInstances"]; got != tc.calls {
			t.Errorf("%d groups: %d DescribeInstances calls, want %d", tc.groups, got, tc.calls)
		}
		offs, err := p.Offerings(ctx)
		if err != nil {
			t.Fatalf("%d groups: offerings: %v", tc.groups, err)
		}
		if len(offs) != 2*tc.groups || e.calls["DescribeInstanceTypeOfferings"] != tc.calls {
			t.Errorf("%d groups: %d offerings in %d calls, want %d in %d", tc.groups, len(offs), e.calls["DescribeInstanceTypeOfferings"], 2*tc.groups, tc.calls)
		}
		if e.maxValues > 200 {
			t.Errorf("a filter had %d values", e.maxValues)
		}
	}
}

// Without a spot price from AWS the estimate is logged once per type and
// zone, not on every pass.
func TestSpotEstimateLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
	p := bosunaws.NewWithClients(bosunaws.Clients{ASG: bigASG{n: 3}, EC2: &filterEC2{calls: map[string]int{}}, Pricing: noPricing{}},
		bosunaws.Options{Cluster: "c1", Region: "us-east-1", Clock: clk, Logger: slog.New(slog.NewTextHandler(&buf, nil))}, nil)
	for range 5 {
		clk.Step(10 * time.Minute) // past the spot price cache: AWS is asked again each time
		if _, err := p.Offerings(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "no spot price from AWS"); n != 3 {
		t.Errorf("%d estimate warnings over 5 passes, want 3 (one per type and zone):\n%s", n, buf.String())
	}
}
