package console

import (
	"context"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default backoff for kinds a cluster refuses: ask again after a minute,
// doubling up to five.
const (
	DefaultKindRetry    = time.Minute
	DefaultKindRetryMax = 5 * time.Minute
)

// kindState is the watch state of one kind in one cluster (guarded by the
// cluster's mu).
type kindState struct {
	// started is true once the kind's informer runs.
	started bool
	// retrying is true while a watchKind goroutine owns the kind.
	retrying bool
	// reason is ReasonForbidden or ReasonNotServed while the cluster
	// refuses the kind, "" otherwise; err is the server's answer.
	reason, err string
	nextRetry   time.Time
}

// refused reports whether err is the API server refusing a kind (RBAC
// forbids it, or the server does not serve it), as opposed to not
// answering.
func refused(err error) bool { return apierrors.IsForbidden(err) || apierrors.IsNotFound(err) }

// watchKind starts k's informer once the cluster lets the console list it.
// While the cluster refuses, it asks again after c.retry, doubling up to
// c.retryMax, on the injected clock, so RBAC granted later makes the kind
// appear without a restart. Any other error (the cluster is down) starts
// the informer anyway: its reflector retries, and the probe reports the
// cluster down. err, when not nil, is a refusal already seen (a failing
// watch), so the first question waits a full delay.
func (c *cluster) watchKind(ctx context.Context, k Kind, err error) {
	delay := c.retry
	for {
		if err == nil {
			err = c.canList(ctx, k)
		}
		if err == nil || !refused(err) {
			c.allow(ctx, k)
			return
		}
		// The timer exists before the refusal is shown, so whoever sees
		// the next retry time can rely on it.
		timer := c.clock.NewTimer(delay)
		c.markRefused(k.Name, err, c.clock.Now().Add(delay))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		delay = min(2*delay, c.retryMax)
		err = nil
	}
}

// canList lists at most one object of k as metadata: the cheapest request
// the API server authorizes exactly as the informer's list.
func (c *cluster) canList(ctx context.Context, k Kind) error {
	if c.meta == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.meta.Resource(k.GVR).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("listing %s, %w", k.Plural, err)
	}
	return nil
}

// allow clears k's refusal and starts its informer if it is not running.
func (c *cluster) allow(ctx context.Context, k Kind) {
	c.mu.Lock()
	ks := c.kinds[k.Name]
	start := !ks.started
	ks.started, ks.retrying, ks.reason, ks.err, ks.nextRetry = true, false, "", "", time.Time{}
	c.mu.Unlock()
	if start {
		go c.informers[k.Name].Run(ctx.Done())
	}
}

// markRefused records why the cluster refused kind and when the console
// asks again.
func (c *cluster) markRefused(kind string, err error, next time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ks := c.kinds[kind]
	ks.reason, ks.err, ks.nextRetry = refusalReason(err), err.Error(), next
}

// refuse handles a refusal seen by a running informer's watch (RBAC
// revoked, say): the kind is marked and asked about again with backoff,
// unless a retry is already under way.
func (c *cluster) refuse(kind string, err error) {
	k, ok := LookupKind(kind)
	if !ok {
		return
	}
	c.mu.Lock()
	ks := c.kinds[kind]
	ks.reason, ks.err = refusalReason(err), err.Error()
	// The retry sets nextRetry once its timer runs, so whoever sees it
	// can rely on the timer.
	spawn := !ks.retrying && c.ctx != nil
	if spawn {
		ks.retrying = true
	}
	ctx := c.ctx
	c.mu.Unlock()
	if spawn {
		go c.watchKind(ctx, k, err)
	}
}

func refusalReason(err error) string {
	if apierrors.IsNotFound(err) {
		return ReasonNotServed
	}
	return ReasonForbidden
}

// unavailableKinds lists the refused kinds, sorted; the caller holds mu.
func (c *cluster) unavailableKinds() []UnavailableKind {
	var out []UnavailableKind
	for name, ks := range c.kinds {
		if ks.reason != "" {
			out = append(out, UnavailableKind{Kind: name, Reason: ks.reason, Error: ks.err, NextRetry: ks.nextRetry})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}
