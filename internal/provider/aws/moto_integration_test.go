//go:build integration

package aws_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func motoProvider(t *testing.T, moto *awstest.Moto, cluster, queue string) *bosunaws.Provider {
	t.Helper()
	return motoProviderWith(t, moto, bosunaws.Options{Cluster: cluster, QueueURL: queue})
}

// queueDepth counts the queue's messages, visible and in flight.
func queueDepth(t *testing.T, q *sqs.Client, url string) int {
	t.Helper()
	out, err := q.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, k := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, _ := strconv.Atoi(out.Attributes[string(k)])
		total += v
	}
	return total
}

func motoProviderWith(t *testing.T, moto *awstest.Moto, o bosunaws.Options) *bosunaws.Provider {
	t.Helper()
	o.Region, o.Endpoint, o.SnapshotMaxAge = awstest.Region, moto.URL, time.Nanosecond
	cfg := awstest.Config()
	m := bosunaws.NewMetrics()
	m.Install(&cfg)
	p, err := bosunaws.NewFromConfig(cfg, o, m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntegrationMotoDiscovery(t *testing.T) {
	moto := awstest.Get(t)
	moto.Reset(t)
	moto.CreateGroup(t, awstest.Group{Cluster: "c1", Pool: "spot", Spot: true, Types: []string{"m5.large", "m5a.large"}, Zones: []string{"us-east-1a", "us-east-1b"}, Max: 10, Priority: 20,
		ExtraTags: map[string]string{bosunaws.TagNodeTemplateLabel + "team": "shop", bosunaws.TagNodeTemplateTaint + "dedicated": "shop:NoSchedule"}})
	moto.CreateGroup(t, awstest.Group{Cluster: "c1", Pool: "od", Types: []string{"m5.large"}, Zones: []string{"us-east-1a"}, Min: 1, Max: 5, Desired: 1, Priority: 10})
	moto.CreateGroup(t, awstest.Group{Cluster: "c2", Pool: "spot", Spot: true, Types: []string{"c5.large"}, Zones: []string{"us-east-1a"}, Max: 3})
	p := motoProvider(t, moto, "c1", "")
	ctx := context.Background()
	groups, err := p.NodeGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].ID != "c1/od" || groups[1].ID != "c1/spot" {
		t.Fatalf("groups = %+v, want c1/od and c1/spot only", groups)
	}
	od, spot := groups[0], groups[1]
	if od.Lifecycle != provider.OnDemand || od.MinSize != 1 || od.MaxSize != 5 || od.TargetSize != 1 || od.Priority != 10 {
		t.Errorf("on-demand group = %+v", od)
	}
	if spot.Lifecycle != provider.Spot || strings.Join(spot.InstanceTypes, ",") != "m5.large,m5a.large" || strings.Join(spot.Zones, ",") != "us-east-1a,us-east-1b" ||
		spot.Labels["team"] != "shop" || len(spot.Taints) != 1 || spot.Priority != 20 {
		t.Errorf("spot group = %+v", spot)
	}
	if n := p.Metrics().Count("Auto Scaling", "DescribeAutoScalingGroups"); n != 1 {
		t.Errorf("DescribeAutoScalingGroups requests = %v, want 1 for all groups", n)
	}
	if _, err := p.NodeGroup(ctx, "c2/spot"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("another cluster's group: err = %v, want ErrNotFound", err)
	}
}

func TestIntegrationMotoScaling(t *testing.T) {
	moto := awstest.Get(t)
	moto.Reset(t)
	moto.CreateGroup(t, awstest.Group{Cluster: "c1", Pool: "spot", Spot: true, Types: []string{"m5.large"}, Zones: []string{"us-east-1a"}, Min: 1, Max: 4, Desired: 1})
	p := motoProvider(t, moto, "c1", "")
	ctx := context.Background()
	if err := p.SetTargetSize(ctx, "c1/spot", 3); err != nil {
		t.Fatal(err)
	}
	if err := p.SetTargetSize(ctx, "c1/spot", 3); err != nil {
		t.Fatalf("setting the same size again: %v", err)
	}
	// moto lacks LaunchInstances: the scale-up tried it once, then fell
	// back to SetDesiredCapacity.
	tried := p.Metrics().Count("Auto Scaling", "LaunchInstances")
	if tried == 0 || p.Metrics().Count("Auto Scaling", "SetDesiredCapacity") == 0 {
		t.Errorf("LaunchInstances attempts %v, SetDesiredCapacity %v: want the first tried and the second used", tried, p.Metrics().Count("Auto Scaling", "SetDesiredCapacity"))
	}
	if err := p.SetTargetSize(ctx, "c1/spot", 5); !errors.Is(err, provider.ErrOutOfRange) {
		t.Errorf("size above max: err = %v, want ErrOutOfRange", err)
	}
	if err := p.SetTargetSize(ctx, "c1/nope", 1); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("unknown group: err = %v, want ErrNotFound", err)
	}
	ins, err := p.Instances(ctx, "c1/spot")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 3 {
		t.Fatalf("instances = %+v, want 3", ins)
	}
	for _, in := range ins {
		if !strings.HasPrefix(in.ID, "i-") || in.State != provider.Running || in.InstanceType != "m5.large" || in.Zone != "us-east-1a" ||
			in.ProviderID != "aws:///us-east-1a/"+in.ID || in.NodeName == "" || in.LaunchTime.IsZero() {
			t.Errorf("instance = %+v", in)
		}
	}
	// Delete one: the target follows; below min is refused whole.
	if err := p.DeleteInstances(ctx, "c1/spot", []string{ins[0].ID}); err != nil {
		t.Fatal(err)
	}
	g, err := p.NodeGroup(ctx, "c1/spot")
	if err != nil {
		t.Fatal(err)
	}
	after, _ := p.Instances(ctx, "c1/spot")
	if g.TargetSize != 2 || len(after) != 2 {
		t.Errorf("after deleting one: target %d, instances %+v", g.TargetSize, after)
	}
	if err := p.DeleteInstances(ctx, "c1/spot", []string{after[0].ID, after[1].ID}); !errors.Is(err, provider.ErrOutOfRange) {
		t.Errorf("deleting below min: err = %v, want ErrOutOfRange", err)
	}
	if still, _ := p.Instances(ctx, "c1/spot"); len(still) != 2 {
		t.Errorf("a refused delete deleted something: %+v", still)
	}
	// A retry with an instance already gone is harmless.
	if err := p.DeleteInstances(ctx, "c1/spot", []string{ins[0].ID}); err != nil {
		t.Errorf("deleting an instance already gone: %v", err)
	}
	if g, _ := p.NodeGroup(ctx, "c1/spot"); g.TargetSize != 2 {
		t.Errorf("target after the retry = %d, want 2", g.TargetSize)
	}
	if err := p.SetTargetSize(ctx, "c1/spot", 4); err != nil {
		t.Fatal(err)
	}
	if n := p.Metrics().Count("Auto Scaling", "LaunchInstances"); n != tried {
		t.Errorf("LaunchInstances attempts went from %v to %v: tried again after moto said it lacks it", tried, n)
	}
}

func TestIntegrationMotoOfferings(t *testing.T) {
	moto := awstest.Get(t)
	moto.Reset(t)
	moto.CreateGroup(t, awstest.Group{Cluster: "c1", Pool: "spot", Spot: true, Types: []string{"m5.large"}, Zones: []string{"us-east-1a", "us-east-1b"}, Max: 4})
	p := motoProvider(t, moto, "c1", "")
	offs, err := p.Offerings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// moto has no Pricing API: on-demand prices come from the catalogue.
	if len(offs) != 4 {
		t.Fatalf("offerings = %+v, want m5.large x 2 zones x 2 lifecycles", offs)
	}
	for _, o := range offs {
		if !o.Available || o.PricePerHour <= 0 {
			t.Errorf("offering %+v", o)
		}
	}
}

func TestIntegrationMotoInterruptions(t *testing.T) {
	moto := awstest.Get(t)
	moto.Reset(t)
	moto.CreateGroup(t, awstest.Group{Cluster: "c1", Pool: "spot", Spot: true, Types: []string{"m5.large"}, Zones: []string{"us-east-1a"}, Max: 4, Desired: 2})
	ctx := context.Background()
	q := sqs.NewFromConfig(awstest.Config(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(moto.URL) })
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("bosun-c1")})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(created.QueueUrl)
	p := motoProviderWith(t, moto, bosunaws.Options{Cluster: "c1", QueueURL: url, VisibilityTimeout: time.Second})
	ins, err := p.Instances(ctx, "c1/spot")
	if err != nil || len(ins) != 2 {
		t.Fatalf("instances = %+v, %v", ins, err)
	}
	issued := time.Now().UTC().Truncate(time.Second)
	send := func(body string) {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	send(fmt.Sprintf(`{"version":"0","id":"e1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":%q,"region":"us-east-1","resources":[],"detail":{"instance-id":%q,"instance-action":"terminate"}}`, issued.Format(time.RFC3339), ins[0].ID))
	send(fmt.Sprintf(`{"version":"0","id":"e2","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":%q,"detail":{"instance-id":"i-notours","instance-action":"terminate"}}`, issued.Format(time.RFC3339)))
	send(`not an event`)
	notices, err := p.Interruptions(ctx, issued.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 {
		t.Fatalf("notices = %+v, want one for %s", notices, ins[0].ID)
	}
	n := notices[0]
	if n.InstanceID != ins[0].ID || n.Group != "c1/spot" || n.NodeName != ins[0].NodeName || !n.TerminationTime.Equal(issued.Add(2*time.Minute)) {
		t.Errorf("notice = %+v", n)
	}
	// L19: the message about our instance stays until the notice is
	// acknowledged; the others are gone. After the visibility timeout it is
	// delivered again: still one notice, with the new receipt handle.
	if n := queueDepth(t, q, url); n != 1 {
		t.Errorf("%d messages in the queue, want 1 (ours, in flight until acknowledged)", n)
	}
	time.Sleep(1500 * time.Millisecond)
	redelivered, err := p.Interruptions(ctx, issued.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(redelivered) != 1 || redelivered[0].Handle == n.Handle || redelivered[0].Handle == "" {
		t.Fatalf("after the visibility timeout: %+v, want one notice with a new handle (was %q)", redelivered, n.Handle)
	}
	if err := p.AckInterruption(ctx, redelivered[0]); err != nil {
		t.Fatal(err)
	}
	if n := queueDepth(t, q, url); n != 0 {
		t.Errorf("%d messages left after the acknowledgement, want 0", n)
	}
	// A duplicate (SQS delivers at least once) of an acknowledged notice
	// is deleted when read.
	send(fmt.Sprintf(`{"version":"0","id":"e1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":%q,"region":"us-east-1","resources":[],"detail":{"instance-id":%q,"instance-action":"terminate"}}`, issued.Format(time.RFC3339), ins[0].ID))
	if _, err := p.Interruptions(ctx, issued.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := queueDepth(t, q, url); n != 0 {
		t.Errorf("a duplicate of an acknowledged notice is still in the queue (%d messages)", n)
	}
	again, err := p.Interruptions(ctx, issued.Add(-time.Minute))
	if err != nil || len(again) != 1 {
		t.Errorf("second read: %+v, %v; want the same notice (idempotent handling)", again, err)
	}
	if later, _ := p.Interruptions(ctx, issued.Add(time.Second)); len(later) != 0 {
		t.Errorf("notices since after the issue time: %+v", later)
	}
	marked, _ := p.Instances(ctx, "c1/spot")
	for _, in := range marked {
		if (in.ID == ins[0].ID) != (in.Interruption != nil) {
			t.Errorf("instance %s interruption = %+v", in.ID, in.Interruption)
		}
	}
}
