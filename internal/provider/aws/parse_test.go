package aws_test

import (
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
)

func TestClassifyFailure(t *testing.T) {
	for msg, want := range map[string]provider.ErrorClass{
		"We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a). Launching EC2 instance failed.": provider.InsufficientCapacity,
		"Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request.":            provider.InsufficientCapacity,
		"Could not launch Spot Instances. UnfulfillableCapacity - Unable to fulfill capacity due to your request configuration.":                    provider.InsufficientCapacity,
		"You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket.":                                  provider.QuotaExceeded,
		"Could not launch Spot Instances. MaxSpotInstanceCountExceeded - Max spot instance count exceeded. Launching EC2 instance failed.":          provider.QuotaExceeded,
		"VcpuLimitExceeded":                            provider.QuotaExceeded,
		"The image id '[ami-1]' does not exist.":       provider.OtherError,
		"Access denied when attempting to assume role": provider.OtherError,
	} {
		if got := bosunaws.ClassifyFailure(msg); got != want {
			t.Errorf("ClassifyFailure(%q) = %s, want %s", msg, got, want)
		}
	}
}

func TestParseEvent(t *testing.T) {
	at := "2026-12-02T12:00:00Z"
	issued, _ := time.Parse(time.RFC3339, at)
	for _, tc := range []struct {
		name, body string
		ok         bool
		wantErr    bool
		id         string
		term       time.Duration
	}{
		{"spot", `{"version":"0","id":"e1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":"` + at + `","region":"us-east-1","resources":["arn:aws:ec2:us-east-1b:instance/i-1"],"detail":{"instance-id":"i-1","instance-action":"terminate"}}`, true, false, "i-1", 2 * time.Minute},
		{"rebalance", `{"id":"e2","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2","time":"` + at + `","detail":{"instance-id":"i-2"}}`, true, false, "i-2", 2 * time.Minute},
		{"lifecycle", `{"id":"e3","detail-type":"EC2 Instance-terminate Lifecycle Action","source":"aws.autoscaling","time":"` + at + `","detail":{"LifecycleActionToken":"t","AutoScalingGroupName":"g","LifecycleHookName":"h","EC2InstanceId":"i-3","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}}`, true, false, "i-3", 2 * time.Minute},
		{"terminated", `{"id":"e4","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","time":"` + at + `","detail":{"instance-id":"i-4","state":"shutting-down"}}`, true, false, "i-4", 0},
		{"running", `{"id":"e5","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","time":"` + at + `","detail":{"instance-id":"i-5","state":"running"}}`, false, false, "", 0},
		{"other", `{"id":"e6","detail-type":"AWS API Call via CloudTrail","time":"` + at + `","detail":{}}`, false, false, "", 0},
		{"no instance", `{"id":"e7","detail-type":"EC2 Spot Instance Interruption Warning","time":"` + at + `","detail":{}}`, false, true, "", 0},
		{"garbage", `not json`, false, true, "", 0},
	} {
		n, ok, err := bosunaws.ParseEvent(tc.body)
		if ok != tc.ok || (err != nil) != tc.wantErr {
			t.Errorf("%s: ok=%v err=%v", tc.name, ok, err)
			continue
		}
		if ok && (n.InstanceID != tc.id || !n.Issued.Equal(issued) || n.TerminationTime.Sub(n.Issued) != tc.term) {
			t.Errorf("%s: notice %+v", tc.name, n)
		}
	}
}

func TestParsePriceListItem(t *testing.T) {
	if _, _, err := bosunaws.ParsePriceListItem(`{`); err == nil {
		t.Error("broken JSON accepted")
	}
	if _, _, err := bosunaws.ParsePriceListItem(`{"terms":{"OnDemand":{"a":{"priceDimensions":{"b":{"unit":"Hrs","pricePerUnit":{"USD":"abc"}}}}}}}`); err == nil {
		t.Error("a price that is not a number accepted")
	}
	if _, ok, err := bosunaws.ParsePriceListItem(`{"terms":{"OnDemand":{"a":{"priceDimensions":{"b":{"unit":"Hrs","pricePerUnit":{"USD":"0.0000000000"}}}}}}}`); ok || err != nil {
		t.Errorf("zero price: ok=%v err=%v", ok, err)
	}
	if p, ok, err := bosunaws.ParsePriceListItem(`{"terms":{"OnDemand":{"a":{"priceDimensions":{"b":{"unit":"Hrs","pricePerUnit":{"USD":"0.1920000000"}}}}}}}`); !ok || err != nil || p != 0.192 {
		t.Errorf("price = %v ok=%v err=%v", p, ok, err)
	}
}
