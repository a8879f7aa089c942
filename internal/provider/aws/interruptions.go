package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

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

// heldNotice is a notice of one of the cluster's instances and the queue
// messages that announced it and are not deleted yet.
type heldNotice struct {
	n provider.InterruptionNotice
	// handles: message ID -> receipt handle of its latest delivery.
	handles map[string]string
	acked   bool
	seen    time.Time
}

// Interruptions implements provider.Provider: it reads the queue and keeps a
// notice for every event about an instance of the cluster's groups (one per
// instance), returning those issued at or after since. Such a message stays
// in the queue until the handler acknowledges the notice (AckInterruption):
// a handler that crashes before acting sees it again after the visibility
// timeout (L19). Messages that need no action are deleted as they are read:
// events of instances that are not the cluster's (the queue is per cluster),
// events that announce no termination, bodies that are not events (with a
// warning, so they cannot block the queue), and redeliveries or duplicates
// of a notice already acknowledged.
func (p *Provider) Interruptions(ctx context.Context, since time.Time) ([]provider.InterruptionNotice, error) {
	if p.opts.QueueURL != "" {
		if err := p.receive(ctx); err != nil {
			return nil, err
		}
	}
	p.noticeMu.Lock()
	defer p.noticeMu.Unlock()
	var out []provider.InterruptionNotice
	for _, h := range p.notices {
		if !h.n.Issued.Before(since) {
			out = append(out, h.n)
		}
	}
	return out, nil
}

func (p *Provider) receive(ctx context.Context) error {
	var s *snapshot
	// SQS takes 0 to 43200 seconds.
	vis := int32(min((p.opts.VisibilityTimeout+time.Second-1)/time.Second, 43200)) // #nosec G115 -- bounded above
	for range maxReceives {
		cctx, cancel := p.call(ctx)
		resp, err := p.c.SQS.ReceiveMessage(cctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(p.opts.QueueURL), MaxNumberOfMessages: 10, VisibilityTimeout: vis,
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
			id, handle := aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle)
			n, ok, err := ParseEvent(aws.ToString(m.Body))
			if err != nil {
				p.opts.Logger.Warn("deleting an unreadable interruption message", "queue", p.opts.QueueURL, "message", id, "error", err)
			}
			if ok && p.hold(s, n, id, handle) {
				continue
			}
			if err := p.deleteMessage(ctx, id, handle); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Provider) deleteMessage(ctx context.Context, id, handle string) error {
	cctx, cancel := p.call(ctx)
	defer cancel()
	if _, err := p.c.SQS.DeleteMessage(cctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(p.opts.QueueURL), ReceiptHandle: aws.String(handle)}); err != nil {
		return fmt.Errorf("deleting handled message %s from %s, %w", id, p.opts.QueueURL, err)
	}
	return nil
}

// hold records the message of a notice about an instance of the cluster
// and reports whether it must stay in the queue until acknowledged: false
// for an instance that is not the cluster's, and for a notice already
// acknowledged (a redelivery or a second event about the same instance).
// The first message of an instance makes its notice; later ones add their
// handles, so that the acknowledgement deletes them all.
func (p *Provider) hold(s *snapshot, n provider.InterruptionNotice, msgID, handle string) bool {
	gid, ok := s.owner[n.InstanceID]
	if !ok {
		return false
	}
	now := p.opts.Clock.Now()
	p.noticeMu.Lock()
	defer p.noticeMu.Unlock()
	for _, h := range p.notices {
		if h.n.InstanceID != n.InstanceID {
			continue
		}
		if h.acked {
			return false
		}
		h.handles[msgID] = handle
		h.n.Handle = handle
		return true
	}
	for _, in := range s.byID[gid].instances {
		if in.ID == n.InstanceID {
			n.NodeName = in.NodeName
		}
	}
	n.Group, n.Handle = gid, handle
	kept := p.notices[:0]
	for _, old := range p.notices {
		if now.Sub(old.seen) < DefaultNoticeRetention {
			kept = append(kept, old)
		}
	}
	p.notices = append(kept, &heldNotice{n: n, handles: map[string]string{msgID: handle}, seen: now})
	return true
}

// AckInterruption implements provider.InterruptionAcker: it deletes every
// queue message held for the notice's instance. A notice unknown or already
// acknowledged is not an error; a receipt handle that expired meanwhile
// (the message was delivered again and is not yet read) is not either: the
// redelivery is deleted when it is read.
func (p *Provider) AckInterruption(ctx context.Context, n provider.InterruptionNotice) error {
	p.noticeMu.Lock()
	var h *heldNotice
	for _, x := range p.notices {
		if x.n.InstanceID == n.InstanceID {
			h = x
		}
	}
	if h == nil || p.opts.QueueURL == "" {
		p.noticeMu.Unlock()
		return nil
	}
	h.acked = true
	handles := make(map[string]string, len(h.handles))
	maps.Copy(handles, h.handles)
	p.noticeMu.Unlock()
	for id, handle := range handles {
		err := p.deleteMessage(ctx, id, handle)
		var ae smithy.APIError
		if err != nil && (!errors.As(err, &ae) || ae.ErrorCode() != "ReceiptHandleIsInvalid") {
			p.noticeMu.Lock()
			h.acked = false
			p.noticeMu.Unlock()
			return fmt.Errorf("acknowledging the interruption notice of %s, %w", n.InstanceID, err)
		}
		p.noticeMu.Lock()
		if h.handles[id] == handle {
			delete(h.handles, id)
		}
		p.noticeMu.Unlock()
	}
	return nil
}

// attachNotices marks the snapshot's instances that have a notice.
func (p *Provider) attachNotices(s *snapshot) {
	p.noticeMu.Lock()
	defer p.noticeMu.Unlock()
	for _, h := range p.notices {
		n := h.n
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
