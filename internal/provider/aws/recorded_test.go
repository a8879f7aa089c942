package aws_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// recorded is an httptest server that answers the Auto Scaling and EC2
// Query APIs and the Pricing JSON API with responses shaped as AWS
// documents them (moto does not simulate capacity errors or Pricing).
type recorded struct {
	t     *testing.T
	now   func() time.Time
	mu    sync.Mutex
	calls map[string]int
	forms map[string]url.Values
	// activities is the Activities XML members of DescribeScalingActivities.
	activities string
	// launch is the LaunchInstancesResult XML members; empty: the action
	// is unknown (InvalidAction, as an endpoint without the API answers);
	// launchErr, if set, is the error code LaunchInstances answers with.
	launch, launchErr string
	// prices maps instance type to the price GetProducts returns; a type
	// absent makes GetProducts fail (to test the catalogue fallback).
	prices map[string]string
}

func (r *recorded) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if target := req.Header.Get("X-Amz-Target"); target != "" {
		r.calls[target]++
		r.pricing(w, target, string(body))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	action := form.Get("Action")
	r.calls[action]++
	r.forms[action] = form
	ts := func(d time.Duration) string { return r.now().Add(d).UTC().Format(time.RFC3339) }
	w.Header().Set("Content-Type", "text/xml")
	switch action {
	case "DescribeAutoScalingGroups":
		fmt.Fprintf(w, `<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
<DescribeAutoScalingGroupsResult><AutoScalingGroups><member>
<AutoScalingGroupName>bosun-c1-spot</AutoScalingGroupName>
<AutoScalingGroupARN>arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/bosun-c1-spot</AutoScalingGroupARN>
<MinSize>0</MinSize><MaxSize>10</MaxSize><DesiredCapacity>3</DesiredCapacity><DefaultCooldown>300</DefaultCooldown>
<AvailabilityZones><member>us-east-1a</member><member>us-east-1b</member></AvailabilityZones>
<HealthCheckType>EC2</HealthCheckType><CreatedTime>%s</CreatedTime>
<Instances><member><InstanceId>i-0aaa</InstanceId><InstanceType>m5.large</InstanceType><AvailabilityZone>us-east-1b</AvailabilityZone>
<LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member></Instances>
<MixedInstancesPolicy><LaunchTemplate><LaunchTemplateSpecification><LaunchTemplateName>bosun-c1-spot</LaunchTemplateName><Version>$Latest</Version></LaunchTemplateSpecification>
<Overrides><member><InstanceType>m5.large</InstanceType></member><member><InstanceType>m5.xlarge</InstanceType></member></Overrides></LaunchTemplate>
<InstancesDistribution><OnDemandBaseCapacity>0</OnDemandBaseCapacity><OnDemandPercentageAboveBaseCapacity>0</OnDemandPercentageAboveBaseCapacity><SpotAllocationStrategy>price-capacity-optimized</SpotAllocationStrategy></InstancesDistribution></MixedInstancesPolicy>
<Tags>
<member><ResourceId>bosun-c1-spot</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>bosun.dev/cluster</Key><Value>c1</Value><PropagateAtLaunch>true</PropagateAtLaunch></member>
<member><ResourceId>bosun-c1-spot</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>bosun.dev/pool</Key><Value>spot</Value><PropagateAtLaunch>true</PropagateAtLaunch></member>
<member><ResourceId>bosun-c1-spot</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>bosun.dev/lifecycle</Key><Value>spot</Value><PropagateAtLaunch>true</PropagateAtLaunch></member>
<member><ResourceId>bosun-c1-spot</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>bosun.dev/priority</Key><Value>20</Value><PropagateAtLaunch>false</PropagateAtLaunch></member>
<member><ResourceId>bosun-c1-spot</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>k8s.io/cluster-autoscaler/node-template/label/team</Key><Value>shop</Value><PropagateAtLaunch>false</PropagateAtLaunch></member>
<member><ResourceId>bosun-c1-spot</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>k8s.io/cluster-autoscaler/node-template/taint/dedicated</Key><Value>shop:NoSchedule</Value><PropagateAtLaunch>false</PropagateAtLaunch></member>
</Tags></member></AutoScalingGroups></DescribeAutoScalingGroupsResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>`, ts(-time.Hour))
	case "DescribeInstances":
		fmt.Fprintf(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>2</requestId>
<reservationSet><item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId><instancesSet><item>
<instanceId>i-0aaa</instanceId><instanceType>m5.large</instanceType><instanceState><code>16</code><name>running</name></instanceState>
<privateDnsName>ip-10-0-1-17.ec2.internal</privateDnsName><launchTime>%s</launchTime><placement><availabilityZone>us-east-1b</availabilityZone><tenancy>default</tenancy></placement>
<instanceLifecycle>spot</instanceLifecycle></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`, ts(-10*time.Minute))
	case "DescribeScalingActivities":
		fmt.Fprintf(w, `<DescribeScalingActivitiesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
<DescribeScalingActivitiesResult><Activities>%s</Activities></DescribeScalingActivitiesResult>
<ResponseMetadata><RequestId>3</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>`, strings.ReplaceAll(r.activities, "{{now-30s}}", ts(-30*time.Second)))
	case "LaunchInstances":
		if r.launchErr != "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>%s</Code><Message>recorded</Message></Error><RequestId>6</RequestId></ErrorResponse>`, r.launchErr)
			return
		}
		if r.launch == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>Could not find operation LaunchInstances for version 2011-01-01</Message></Error><RequestId>6</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprintf(w, `<LaunchInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><LaunchInstancesResult>
<AutoScalingGroupName>%s</AutoScalingGroupName><ClientToken>%s</ClientToken>%s</LaunchInstancesResult>
<ResponseMetadata><RequestId>6</RequestId></ResponseMetadata></LaunchInstancesResponse>`, form.Get("AutoScalingGroupName"), form.Get("ClientToken"), r.launch)
	case "SetDesiredCapacity":
		fmt.Fprint(w, `<SetDesiredCapacityResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><ResponseMetadata><RequestId>8</RequestId></ResponseMetadata></SetDesiredCapacityResponse>`)
	case "DescribeInstanceTypeOfferings":
		fmt.Fprint(w, `<DescribeInstanceTypeOfferingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>4</requestId><instanceTypeOfferingSet>
<item><instanceType>m5.large</instanceType><locationType>availability-zone</locationType><location>us-east-1a</location></item>
<item><instanceType>m5.large</instanceType><locationType>availability-zone</locationType><location>us-east-1b</location></item>
<item><instanceType>m5.xlarge</instanceType><locationType>availability-zone</locationType><location>us-east-1a</location></item>
</instanceTypeOfferingSet></DescribeInstanceTypeOfferingsResponse>`)
	case "DescribeSpotPriceHistory":
		fmt.Fprintf(w, `<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>5</requestId><spotPriceHistorySet>
<item><instanceType>m5.large</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>0.041000</spotPrice><timestamp>%s</timestamp><availabilityZone>us-east-1a</availabilityZone></item>
<item><instanceType>m5.large</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>0.039000</spotPrice><timestamp>%s</timestamp><availabilityZone>us-east-1a</availabilityZone></item>
<item><instanceType>m5.large</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>0.043500</spotPrice><timestamp>%s</timestamp><availabilityZone>us-east-1b</availabilityZone></item>
<item><instanceType>m5.xlarge</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>0.080100</spotPrice><timestamp>%s</timestamp><availabilityZone>us-east-1a</availabilityZone></item>
</spotPriceHistorySet><nextToken></nextToken></DescribeSpotPriceHistoryResponse>`, ts(-time.Hour), ts(-2*time.Hour), ts(-time.Hour), ts(-time.Hour))
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>%s not recorded</Message></Error></ErrorResponse>`, action)
	}
}

func (r *recorded) pricing(w http.ResponseWriter, target, body string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if target != "AWSPriceListService.GetProducts" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"InvalidParameterException","Message":"not recorded"}`)
		return
	}
	for typ, price := range r.prices {
		if !strings.Contains(body, `"Value":"`+typ+`"`) {
			continue
		}
		item := fmt.Sprintf(`{"product":{"productFamily":"Compute Instance","attributes":{"instanceType":%q,"regionCode":"us-east-1","operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used"},"sku":"SKU1"},"serviceCode":"AmazonEC2","terms":{"OnDemand":{"SKU1.JRTCKXETXF":{"priceDimensions":{"SKU1.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","endRange":"Inf","description":"$%s per On Demand Linux %s Instance Hour","appliesTo":[],"rateCode":"SKU1.JRTCKXETXF.6YS6EN2CT7","beginRange":"0","pricePerUnit":{"USD":%q}}},"sku":"SKU1","effectiveDate":"2026-11-01T00:00:00Z","offerTermCode":"JRTCKXETXF","termAttributes":{}}}},"version":"20261101000000","publicationDate":"2026-11-01T00:00:00Z"}`, typ, price, typ, price)
		fmt.Fprintf(w, `{"FormatVersion":"aws_v1","PriceList":[%q]}`, item)
		return
	}
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprint(w, `{"__type":"InternalErrorException","Message":"recorded failure"}`)
}

func (r *recorded) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[name]
}

func newRecorded(t *testing.T, clk *clocktesting.FakeClock) (*recorded, *bosunaws.Provider) {
	t.Helper()
	r := &recorded{t: t, now: clk.Now, calls: map[string]int{}, forms: map[string]url.Values{}, prices: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	cfg := awstest.Config()
	m := bosunaws.NewMetrics()
	m.Install(&cfg)
	p, err := bosunaws.NewFromConfig(cfg, bosunaws.Options{Cluster: "c1", Region: "us-east-1", Endpoint: srv.URL, Clock: clk}, m)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

const iceActivity = `<member><ActivityId>act-ice-1</ActivityId><AutoScalingGroupName>bosun-c1-spot</AutoScalingGroupName>
<Description>Launching a new EC2 instance.  Status Reason: Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request. Launching EC2 instance failed.</Description>
<Cause>At 2026-12-02T12:00:00Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 1 to 3.</Cause>
<StartTime>{{now-30s}}</StartTime><EndTime>{{now-30s}}</EndTime><StatusCode>Failed</StatusCode>
<StatusMessage>Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request. Launching EC2 instance failed.</StatusMessage>
<Progress>100</Progress><Details>{"Subnet ID":"subnet-0a1b","Availability Zone":"us-east-1a"}</Details></member>`

const oldQuotaActivity = `<member><ActivityId>act-old</ActivityId><AutoScalingGroupName>bosun-c1-spot</AutoScalingGroupName>
<Description>Launching a new EC2 instance.  Status Reason: You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit. Launching EC2 instance failed.</Description>
<Cause>old</Cause><StartTime>2026-12-02T09:00:00Z</StartTime><StatusCode>Failed</StatusCode>
<StatusMessage>You have requested more vCPU capacity than your current vCPU limit of 32 allows. Launching EC2 instance failed.</StatusMessage><Progress>100</Progress><Details>{}</Details></member>`

const otherGroupActivity = `<member><ActivityId>act-other</ActivityId><AutoScalingGroupName>someone-elses-group</AutoScalingGroupName>
<Description>x</Description><Cause>x</Cause><StartTime>{{now-30s}}</StartTime><StatusCode>Failed</StatusCode>
<StatusMessage>We currently do not have sufficient c5.large capacity in the Availability Zone you requested (us-east-1a).</StatusMessage><Progress>100</Progress></member>`

// L11: a failed scaling activity is a Failed instance with its error class
// in the same pass, and marks its offering unavailable for 3 minutes.
func TestFailedActivitiesAreFailedInstances(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 12, 0, 30, 0, time.UTC))
	r, p := newRecorded(t, clk)
	r.activities = iceActivity + oldQuotaActivity + otherGroupActivity
	ctx := context.Background()

	groups, err := p.NodeGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 {
		t.Fatalf("groups = %+v, want 1", groups)
	}
	g := groups[0]
	if g.ID != "c1/spot" || g.Lifecycle != provider.Spot || g.Priority != 20 || g.TargetSize != 3 || g.MaxSize != 10 ||
		strings.Join(g.InstanceTypes, ",") != "m5.large,m5.xlarge" || strings.Join(g.Zones, ",") != "us-east-1a,us-east-1b" ||
		g.Labels["team"] != "shop" || len(g.Taints) != 1 || g.Taints[0].Key != "dedicated" || g.Taints[0].Effect != "NoSchedule" {
		t.Errorf("group = %+v", g)
	}
	if f := r.forms["DescribeAutoScalingGroups"]; f.Get("Filters.member.1.Name") != "tag:bosun.dev/cluster" || f.Get("Filters.member.1.Values.member.1") != "c1" {
		t.Errorf("DescribeAutoScalingGroups not filtered by the cluster tag: %v", f)
	}
	if f := r.forms["DescribeScalingActivities"]; f.Get("Filters.member.1.Name") != "StartTimeLowerBound" {
		t.Errorf("DescribeScalingActivities not bounded by start time: %v", f)
	}
	ins, err := p.Instances(ctx, "c1/spot")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 {
		t.Fatalf("instances = %+v, want the running one and the failed launch", ins)
	}
	failed, running := ins[0], ins[1]
	if running.ID != "i-0aaa" || running.State != provider.Running || running.NodeName != "ip-10-0-1-17.ec2.internal" ||
		running.ProviderID != "aws:///us-east-1b/i-0aaa" || running.Lifecycle != provider.Spot || !running.LaunchTime.Equal(clk.Now().Add(-10*time.Minute)) {
		t.Errorf("running instance = %+v", running)
	}
	if failed.ID != "act-ice-1" || failed.State != provider.Failed || failed.ErrorClass != provider.InsufficientCapacity || failed.Zone != "us-east-1a" {
		t.Errorf("failed launch = %+v", failed)
	}
	// One pass: NodeGroups + Instances cost three requests, not per group.
	if n := r.count("DescribeAutoScalingGroups") + r.count("DescribeInstances") + r.count("DescribeScalingActivities"); n != 3 {
		t.Errorf("describe calls = %d, want 3", n)
	}

	offs, err := p.Offerings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	find := func(offs []provider.Offering, typ, zone string, lc provider.Lifecycle) provider.Offering {
		for _, o := range offs {
			if o.InstanceType == typ && o.Zone == zone && o.Lifecycle == lc {
				return o
			}
		}
		t.Fatalf("no offering %s/%s/%s in %+v", typ, zone, lc, offs)
		return provider.Offering{}
	}
	if o := find(offs, "m5.large", "us-east-1a", provider.Spot); o.Available {
		t.Errorf("spot m5.large in us-east-1a failed with ICE but is available: %+v", o)
	}
	if o := find(offs, "m5.xlarge", "us-east-1a", provider.Spot); o.Available {
		t.Errorf("the spot failure named no type, so it holds for every type of the group in us-east-1a: %+v", o)
	}
	if o := find(offs, "m5.large", "us-east-1b", provider.Spot); !o.Available {
		t.Errorf("the failure named us-east-1a only: %+v", o)
	}
	if o := find(offs, "m5.large", "us-east-1a", provider.OnDemand); !o.Available {
		t.Errorf("on-demand is a different pool: %+v", o)
	}
	for _, o := range offs {
		if o.InstanceType == "m5.xlarge" && o.Zone == "us-east-1b" {
			t.Errorf("m5.xlarge is not offered in us-east-1b: %+v", o)
		}
	}
	clk.Step(3*time.Minute + time.Second)
	r.activities = ""
	offs, err = p.Offerings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := find(offs, "m5.large", "us-east-1a", provider.Spot); !o.Available {
		t.Errorf("3 minutes after the failure the offering is still unavailable: %+v", o)
	}
}

func TestQuotaActivityIsQuotaExceeded(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 12, 0, 30, 0, time.UTC))
	r, p := newRecorded(t, clk)
	r.activities = strings.ReplaceAll(oldQuotaActivity, "2026-12-02T09:00:00Z", "{{now-30s}}")
	ins, err := p.Instances(context.Background(), "c1/spot")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || ins[0].ErrorClass != provider.QuotaExceeded {
		t.Fatalf("instances = %+v, want a QuotaExceeded failure", ins)
	}
}

// L53: on-demand prices from the Pricing API, cached a day; the catalogue
// when it fails; spot prices from the history, the latest per zone.
func TestPrices(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 12, 0, 30, 0, time.UTC))
	r, p := newRecorded(t, clk)
	r.prices["m5.large"] = "0.0960000000"
	ctx := context.Background()
	offs, err := p.Offerings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	price := func(offs []provider.Offering, typ, zone string, lc provider.Lifecycle) float64 {
		for _, o := range offs {
			if o.InstanceType == typ && o.Zone == zone && o.Lifecycle == lc {
				return o.PricePerHour
			}
		}
		t.Fatalf("no offering %s/%s/%s", typ, zone, lc)
		return 0
	}
	if got := price(offs, "m5.large", "us-east-1a", provider.OnDemand); got != 0.096 {
		t.Errorf("m5.large on-demand = %v, want 0.096 from the Pricing API", got)
	}
	cat, _ := ec2catalog.Lookup("m5.xlarge")
	if got := price(offs, "m5.xlarge", "us-east-1a", provider.OnDemand); got != cat.Price["us-east-1"] || got == 0 {
		t.Errorf("m5.xlarge on-demand = %v, want the catalogue's %v after a Pricing error", got, cat.Price["us-east-1"])
	}
	if got := price(offs, "m5.large", "us-east-1a", provider.Spot); got != 0.041 {
		t.Errorf("m5.large spot in 1a = %v, want the latest 0.041", got)
	}
	if got := price(offs, "m5.large", "us-east-1b", provider.Spot); got != 0.0435 {
		t.Errorf("m5.large spot in 1b = %v, want 0.0435", got)
	}
	calls := r.count("AWSPriceListService.GetProducts")
	if _, err := p.Offerings(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.count("AWSPriceListService.GetProducts"); got != calls {
		t.Errorf("GetProducts called again within the cache: %d -> %d", calls, got)
	}
	if got := r.count("DescribeSpotPriceHistory"); got != 1 {
		t.Errorf("DescribeSpotPriceHistory calls = %d, want 1 (cached)", got)
	}
	// The catalogue fallback is retried sooner than a day; the API
	// price is kept a day.
	r.mu.Lock()
	r.prices["m5.xlarge"] = "0.1920000000"
	r.mu.Unlock()
	clk.Step(11 * time.Minute)
	offs, err = p.Offerings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := price(offs, "m5.xlarge", "us-east-1a", provider.OnDemand); got != 0.192 {
		t.Errorf("m5.xlarge after the retry = %v, want 0.192", got)
	}
	if got := r.count("AWSPriceListService.GetProducts"); got != calls+1 {
		t.Errorf("GetProducts calls = %d, want %d (only the fallback retried)", got, calls+1)
	}
	if got := r.count("DescribeSpotPriceHistory"); got != 2 {
		t.Errorf("DescribeSpotPriceHistory calls = %d, want 2 (refreshed after 5 minutes)", got)
	}
	if n := p.Metrics().Count("Pricing", "GetProducts"); n < 3 {
		t.Errorf("bosun_aws_api_requests_total for Pricing GetProducts = %v, want >= 3", n)
	}
}

// A failure that names its type and zone marks that offering alone.
func TestNamedFailureMarksOneOffering(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 12, 0, 30, 0, time.UTC))
	r, p := newRecorded(t, clk)
	r.activities = `<member><ActivityId>act-ice-2</ActivityId><AutoScalingGroupName>bosun-c1-spot</AutoScalingGroupName>
<Description>Launching a new EC2 instance.  Status Reason: We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1b). Our system will be working on provisioning additional capacity. You can currently get m5.large capacity by not specifying an Availability Zone in your request or choosing us-east-1a. Launching EC2 instance failed.</Description>
<Cause>x</Cause><StartTime>{{now-30s}}</StartTime><StatusCode>Failed</StatusCode>
<StatusMessage>We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1b). Our system will be working on provisioning additional capacity. You can currently get m5.large capacity by not specifying an Availability Zone in your request or choosing us-east-1a. Launching EC2 instance failed.</StatusMessage>
<Progress>100</Progress><Details>{"Subnet ID":"subnet-0b2c","Availability Zone":"us-east-1b"}</Details></member>`
	ctx := context.Background()
	ins, err := p.Instances(ctx, "c1/spot")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || ins[0].InstanceType != "m5.large" || ins[0].Zone != "us-east-1b" || ins[0].ErrorClass != provider.InsufficientCapacity {
		t.Fatalf("instances = %+v", ins)
	}
	offs, err := p.Offerings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		want := o.InstanceType != "m5.large" || o.Zone != "us-east-1b" || o.Lifecycle != provider.Spot
		if o.Available != want {
			t.Errorf("offering %+v: available %v, want %v", o, o.Available, want)
		}
	}
}
