package aws_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/provider"
)

// A LaunchInstances answer as AWS documents it: one instance launched in
// us-east-1a, and the spot pool of m5.large there empty for the other.
const launchAnswer = `<Instances><member><InstanceType>m5.xlarge</InstanceType><AvailabilityZone>us-east-1a</AvailabilityZone><AvailabilityZoneId>use1-az1</AvailabilityZoneId>
<SubnetId>subnet-0a1b</SubnetId><MarketType>spot</MarketType><InstanceIds><member>i-0new1</member></InstanceIds></member></Instances>
<Errors><member><InstanceType>m5.large</InstanceType><MarketType>spot</MarketType><AvailabilityZone>us-east-1a</AvailabilityZone><AvailabilityZoneId>use1-az1</AvailabilityZoneId>
<SubnetId>subnet-0a1b</SubnetId><ErrorCode>InsufficientInstanceCapacity</ErrorCode><ErrorMessage>There is no Spot capacity available that matches your request.</ErrorMessage></member></Errors>`

// L11: a scale-up through LaunchInstances learns of a capacity error in
// the call's answer: the failure is a Failed instance and its offering is
// unavailable as soon as SetTargetSize returns, with no SetDesiredCapacity
// and no wait for a failed scaling activity.
func TestScaleUpThroughLaunchInstances(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
	r, p := newRecorded(t, clk)
	r.launch = launchAnswer
	ctx := context.Background()
	// The group wants 3 and runs 1 (in us-east-1b); 2 more go to
	// us-east-1a, the zone with fewer.
	if err := p.SetTargetSize(ctx, "c1/spot", 5); err != nil {
		t.Fatal(err)
	}
	if n, m := r.count("LaunchInstances"), r.count("SetDesiredCapacity"); n != 1 || m != 0 {
		t.Fatalf("LaunchInstances calls %d, SetDesiredCapacity calls %d; want 1 and 0", n, m)
	}
	f := r.forms["LaunchInstances"]
	if f.Get("AutoScalingGroupName") != "bosun-c1-spot" || f.Get("RequestedCapacity") != "2" || f.Get("AvailabilityZones.member.1") != "us-east-1a" ||
		f.Get("RetryStrategy") != "none" || !strings.HasPrefix(f.Get("ClientToken"), "bosun-") {
		t.Errorf("LaunchInstances request = %v", f)
	}
	ins, err := p.Instances(ctx, "c1/spot")
	if err != nil {
		t.Fatal(err)
	}
	var failed []provider.Instance
	for _, in := range ins {
		if in.State == provider.Failed {
			failed = append(failed, in)
		}
	}
	if len(failed) != 1 || failed[0].ErrorClass != provider.InsufficientCapacity || failed[0].Zone != "us-east-1a" || failed[0].InstanceType != "m5.large" ||
		failed[0].Lifecycle != provider.Spot || !strings.Contains(failed[0].ErrorMessage, "no Spot capacity") {
		t.Fatalf("failed launches = %+v, want the m5.large capacity error in us-east-1a", failed)
	}
	offs, err := p.Offerings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		if o.Lifecycle != provider.Spot || o.Zone != "us-east-1a" {
			continue
		}
		if want := o.InstanceType != "m5.large"; o.Available != want {
			t.Errorf("offering %+v: available %v, want %v (the error named m5.large in us-east-1a)", o, o.Available, want)
		}
	}
	// A later scale-up is a new attempt: the old failure is history.
	r.launch = `<Instances><member><InstanceType>m5.xlarge</InstanceType><AvailabilityZone>us-east-1b</AvailabilityZone><MarketType>spot</MarketType><InstanceIds><member>i-0new2</member></InstanceIds></member></Instances><Errors/>`
	if err := p.SetTargetSize(ctx, "c1/spot", 4); err != nil {
		t.Fatal(err)
	}
	if ins, _ := p.Instances(ctx, "c1/spot"); len(ins) != 1 {
		t.Errorf("instances after a clean scale-up = %+v, want the running one only", ins)
	}
}

// Where the endpoint lacks LaunchInstances (moto, an older partition),
// the first scale-up falls back to SetDesiredCapacity and later ones go
// there directly; a transient error is returned, not taken for that.
func TestLaunchInstancesFallback(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
	r, p := newRecorded(t, clk)
	ctx := context.Background()
	r.launchErr = "Throttling"
	if err := p.SetTargetSize(ctx, "c1/spot", 5); err == nil || !strings.Contains(err.Error(), "Throttling") {
		t.Fatalf("throttled launch: err = %v, want it returned", err)
	}
	if r.count("SetDesiredCapacity") != 0 {
		t.Fatal("a throttled LaunchInstances fell back to SetDesiredCapacity")
	}
	r.launchErr = ""
	for _, size := range []int{5, 6} {
		if err := p.SetTargetSize(ctx, "c1/spot", size); err != nil {
			t.Fatal(err)
		}
		if got := r.forms["SetDesiredCapacity"].Get("DesiredCapacity"); got != strconv.Itoa(size) {
			t.Errorf("SetDesiredCapacity to %q, want %d", got, size)
		}
	}
	launches := r.count("LaunchInstances")
	if r.count("SetDesiredCapacity") != 2 {
		t.Errorf("SetDesiredCapacity calls = %d, want 2", r.count("SetDesiredCapacity"))
	}
	if err := p.SetTargetSize(ctx, "c1/spot", 7); err != nil {
		t.Fatal(err)
	}
	if r.count("LaunchInstances") != launches {
		t.Errorf("LaunchInstances tried again after the endpoint said it lacks it")
	}
}
