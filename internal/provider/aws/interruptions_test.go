package aws_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
)

// fakeQueue is an SQS queue with visibility timeouts on an injected clock:
// a received message is hidden until its timeout, then delivered again
// with a new receipt handle; only the latest handle deletes it (an older
// one is ReceiptHandleIsInvalid, as SQS may answer).
type fakeQueue struct {
	mu      sync.Mutex
	now     func() time.Time
	seq     int
	msgs    []*fakeMsg
	deleted []string
}

type fakeMsg struct {
	id, body, handle string
	visibleAt        time.Time
	deliveries       int
}

func (q *fakeQueue) send(body string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	id := fmt.Sprintf("m%d", q.seq)
	q.msgs = append(q.msgs, &fakeMsg{id: id, body: body})
	return id
}

func (q *fakeQueue) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.ReceiveMessageOutput{}
	now := q.now()
	for _, m := range q.msgs {
		if len(out.Messages) == int(in.MaxNumberOfMessages) || now.Before(m.visibleAt) {
			continue
		}
		m.deliveries++
		m.handle = fmt.Sprintf("%s-receipt-%d", m.id, m.deliveries)
		m.visibleAt = now.Add(time.Duration(in.VisibilityTimeout) * time.Second)
		out.Messages = append(out.Messages, sqstypes.Message{MessageId: aws.String(m.id), Body: aws.String(m.body), ReceiptHandle: aws.String(m.handle)})
	}
	return out, nil
}

func (q *fakeQueue) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := aws.ToString(in.ReceiptHandle)
	for i, m := range q.msgs {
		if m.handle == h {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			q.deleted = append(q.deleted, m.id)
			return &sqs.DeleteMessageOutput{}, nil
		}
		if strings.HasPrefix(h, m.id+"-receipt-") {
			return nil, &smithy.GenericAPIError{Code: "ReceiptHandleIsInvalid", Message: "The input receipt handle is invalid."}
		}
	}
	return &sqs.DeleteMessageOutput{}, nil // already deleted: SQS answers success
}

func (q *fakeQueue) left() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for _, m := range q.msgs {
		ids = append(ids, m.id)
	}
	return ids
}

// queueProvider is a provider over the recorded Auto Scaling and EC2
// responses (group bosun-c1-spot with instance i-0aaa) and a fake queue.
func queueProvider(t *testing.T, clk *clocktesting.FakeClock) (*bosunaws.Provider, *fakeQueue) {
	t.Helper()
	r := &recorded{t: t, now: clk.Now, calls: map[string]int{}, forms: map[string]url.Values{}, prices: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	cfg := awstest.Config()
	q := &fakeQueue{now: clk.Now}
	c := bosunaws.Clients{
		ASG: autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
		EC2: ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
		SQS: q,
	}
	return bosunaws.NewWithClients(c, bosunaws.Options{Cluster: "c1", Region: "us-east-1", QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/bosun-c1", Clock: clk, SnapshotMaxAge: time.Nanosecond}, nil), q
}

func spotWarning(instance string, at time.Time) string {
	return fmt.Sprintf(`{"version":"0","id":"e-%s","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":%q,"detail":{"instance-id":%q,"instance-action":"terminate"}}`,
		instance, at.UTC().Format(time.RFC3339), instance)
}

// L19: an interruption message stays in the queue until the notice is
// acknowledged; unacknowledged it is delivered again after the visibility
// timeout (one notice still, with the new handle); acknowledged, its
// redeliveries and duplicates are deleted as they are read.
func TestInterruptionMessagesDeletedOnceAcknowledged(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
	p, q := queueProvider(t, clk)
	ctx := context.Background()
	issued := clk.Now().Add(-5 * time.Second)
	warn := q.send(spotWarning("i-0aaa", issued))
	rebalance := q.send(fmt.Sprintf(`{"id":"e2","detail-type":"EC2 Instance Rebalance Recommendation","time":%q,"detail":{"instance-id":"i-0aaa"}}`, issued.Add(time.Second).Format(time.RFC3339)))
	q.send(spotWarning("i-notours", issued))
	q.send(`not an event`)
	q.send(fmt.Sprintf(`{"id":"e5","detail-type":"EC2 Instance State-change Notification","time":%q,"detail":{"instance-id":"i-0aaa","state":"running"}}`, issued.Format(time.RFC3339)))

	notices, err := p.Interruptions(ctx, issued.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 || notices[0].InstanceID != "i-0aaa" || notices[0].Group != "c1/spot" || notices[0].Handle == "" {
		t.Fatalf("notices = %+v, want one for i-0aaa with a handle", notices)
	}
	if left := strings.Join(q.left(), ","); left != warn+","+rebalance {
		t.Fatalf("messages left = %s, want the two about i-0aaa (%s, %s) kept until acknowledged", left, warn, rebalance)
	}
	first := notices[0].Handle

	// Not acknowledged (the handler crashed): delivered again.
	clk.Step(bosunaws.DefaultVisibilityTimeout + time.Second)
	again, err := p.Interruptions(ctx, issued.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].Handle == first {
		t.Fatalf("after redelivery: notices = %+v, want the same one notice with the new receipt handle (was %s)", again, first)
	}
	if err := p.AckInterruption(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	if left := q.left(); len(left) != 0 {
		t.Fatalf("messages left after the acknowledgement: %v", left)
	}
	// A duplicate delivery (SQS is at least once) of an acknowledged
	// notice is deleted when read.
	dup := q.send(spotWarning("i-0aaa", issued))
	if _, err := p.Interruptions(ctx, issued.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if left := q.left(); len(left) != 0 {
		t.Errorf("duplicate %s of an acknowledged notice left in the queue: %v", dup, left)
	}
	if err := p.AckInterruption(ctx, again[0]); err != nil {
		t.Errorf("acknowledging twice: %v", err)
	}
	if err := p.AckInterruption(ctx, provider.InterruptionNotice{InstanceID: "i-unknown"}); err != nil {
		t.Errorf("acknowledging an unknown notice: %v", err)
	}
}

// An acknowledgement whose receipt handle expired (the message became
// visible again but was not read yet) is not an error: the redelivery is
// deleted when it is read.
func TestAckWithExpiredHandle(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
	p, q := queueProvider(t, clk)
	ctx := context.Background()
	q.send(spotWarning("i-0aaa", clk.Now()))
	notices, err := p.Interruptions(ctx, time.Time{})
	if err != nil || len(notices) != 1 {
		t.Fatalf("notices = %+v, %v", notices, err)
	}
	// Visible again, and someone else's read gave it a new handle.
	clk.Step(bosunaws.DefaultVisibilityTimeout + time.Second)
	if _, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10, VisibilityTimeout: 1}); err != nil {
		t.Fatal(err)
	}
	if err := p.AckInterruption(ctx, notices[0]); err != nil {
		t.Fatalf("acknowledging with an expired handle: %v", err)
	}
	if len(q.left()) != 1 {
		t.Fatalf("messages left = %v, want the redelivered one still there", q.left())
	}
	clk.Step(2 * time.Second)
	if _, err := p.Interruptions(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if left := q.left(); len(left) != 0 {
		t.Errorf("the redelivery of an acknowledged notice was not deleted: %v", left)
	}
}
