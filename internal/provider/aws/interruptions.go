package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bosun-platform/bosun/internal/provider"
)

// EventBridge detail types Bosun's rules forward to the queue.
const (
	DetailSpotInterruption = "EC2 Spot Instance Interruption Warning"
	DetailRebalance        = "EC2 Instance Rebalance Recommendation"
	DetailLifecycleAction  = "EC2 Instance-terminate Lifecycle Action"
	DetailStateChange      = "EC2 Instance State-change Notification"
)

// maxReceives bounds the SQS reads of one Interruptions call (10 messages
// each).
const maxReceives = 10

// Event is the part of an EventBridge event read here.
type Event struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       time.Time       `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

type eventDetail struct {
	InstanceID    string `json:"instance-id"`
	Action        string `json:"instance-action"`
	State         string `json:"state"`
	EC2InstanceID string `json:"EC2InstanceId"`
	Transition    string `json:"LifecycleTransition"`
}

// ParseEvent maps an EventBridge event (an SQS message body) to the
// instance it concerns and a notice without group or node name. ok is
// false for events that announce no termination (e.g. an instance that
// starts running); err for a body that is not an event.
func ParseEvent(body string) (n provider.InterruptionNotice, ok bool, err error) {
	var e Event
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return n, false, fmt.Errorf("message is not an EventBridge event, %w", err)
	}
	var d eventDetail
	if len(e.Detail) > 0 {
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			return n, false, fmt.Errorf("event %s (%s): detail is not an object, %w", e.ID, e.DetailType, err)
		}
	}
	n.Issued = e.Time
	switch e.DetailType {
	case DetailSpotInterruption:
		n.InstanceID, n.Reason = d.InstanceID, "spot interruption ("+d.Action+")"
		n.TerminationTime = e.Time.Add(spotInterruptionWarning)
	case DetailRebalance:
		// A warning that interruption risk is high: drain now, while
		// there is time, as if the two-minute notice had come.
		n.InstanceID, n.Reason = d.InstanceID, "rebalance recommendation"
		n.TerminationTime = e.Time.Add(spotInterruptionWarning)
	case DetailLifecycleAction:
		if d.Transition != "" && d.Transition != "autoscaling:EC2_INSTANCE_TERMINATING" {
			return n, false, nil
		}
		n.InstanceID, n.Reason = d.EC2InstanceID, "auto scaling termination"
		n.TerminationTime = e.Time.Add(spotInterruptionWarning)
	case DetailStateChange:
		switch d.State {
		case "stopping", "stopped", "shutting-down", "terminated":
		default:
			return n, false, nil
		}
		n.InstanceID, n.Reason = d.InstanceID, "instance "+d.State
		n.TerminationTime = e.Time
	default:
		return n, false, nil
	}
	if n.InstanceID == "" {
		return n, false, fmt.Errorf("event %s (%s): no instance ID in detail", e.ID, e.DetailType)
	}
	return n, true, nil
}

// Interruptions implements provider.Provider: it reads the queue, keeps a
// notice for every event about an instance of the cluster's groups,
// deletes every message it read (events of other clusters' instances are
// not this agent's business: the queue is per cluster) and returns the
// kept notices issued at or after since. A message that is not an event
// is deleted with a warning, so it cannot block the queue.
func (p *Provider) Interruptions(ctx context.Context, since time.Time) ([]provider.InterruptionNotice, error) {
	if p.opts.QueueURL != "" {
		if err := p.receive(ctx); err != nil {
			return nil, err
		}
	}
	p.noticeMu.Lock()
	defer p.noticeMu.Unlock()
	var out []provider.InterruptionNotice
	for _, n := range p.notices {
		if !n.Issued.Before(since) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (p *Provider) receive(ctx context.Context) error {
	var s *snapshot
	for range maxReceives {
		cctx, cancel := p.call(ctx)
		resp, err := p.c.SQS.ReceiveMessage(cctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(p.opts.QueueURL), MaxNumberOfMessages: 10, VisibilityTimeout: 30,
		})
		cancel()
		if err != nil {
			return fmt.Errorf("reading interruption queue %s, %w", p.opts.QueueURL, err)
		}
		if len(resp.Messages) == 0 {
			return nil
		}
		if s == nil {
			if s, err = p.current(ctx); err != nil {
				return err
			}
		}
		for _, m := range resp.Messages {
			n, ok, err := ParseEvent(aws.ToString(m.Body))
			if err != nil {
				p.opts.Logger.Warn("deleting an unreadable interruption message", "queue", p.opts.QueueURL, "message", aws.ToString(m.MessageId), "error", err)
			}
			if ok {
				p.keep(s, n)
			}
			cctx, cancel := p.call(ctx)
			_, err = p.c.SQS.DeleteMessage(cctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(p.opts.QueueURL), ReceiptHandle: m.ReceiptHandle})
			cancel()
			if err != nil {
				return fmt.Errorf("deleting handled message %s from %s, %w", aws.ToString(m.MessageId), p.opts.QueueURL, err)
			}
		}
	}
	return nil
}

// keep records a notice for an instance of the cluster; one per instance
// (the first), pruned after DefaultNoticeRetention.
func (p *Provider) keep(s *snapshot, n provider.InterruptionNotice) {
	gid, ok := s.owner[n.InstanceID]
	if !ok {
		return
	}
	for _, in := range s.byID[gid].instances {
		if in.ID == n.InstanceID {
			n.NodeName = in.NodeName
		}
	}
	n.Group = gid
	now := p.opts.Clock.Now()
	p.noticeMu.Lock()
	defer p.noticeMu.Unlock()
	for _, old := range p.notices {
		if old.InstanceID == n.InstanceID {
			return
		}
	}
	kept := p.notices[:0]
	for _, old := range p.notices {
		if now.Sub(old.Issued) < DefaultNoticeRetention {
			kept = append(kept, old)
		}
	}
	p.notices = append(kept, n)
}

// attachNotices marks the snapshot's instances that have a notice.
func (p *Provider) attachNotices(s *snapshot) {
	p.noticeMu.Lock()
	defer p.noticeMu.Unlock()
	for i := range p.notices {
		n := p.notices[i]
		gid, ok := s.owner[n.InstanceID]
		if !ok {
			continue
		}
		gs := s.byID[gid]
		for j := range gs.instances {
			if gs.instances[j].ID == n.InstanceID {
				gs.instances[j].Interruption = &n
			}
		}
	}
}
