package provisioner

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Kicks asks a pass loop for an early pass and remembers when the oldest
// kick no pass has taken yet arrived, so a batch's maximum wait counts
// from that kick, not from when the loop got round to it: a pod that
// turns unschedulable while a pass runs is decided within BatchMax of
// that, plus a pass. A nil *Kicks never kicks.
type Kicks struct {
	clk   clock.PassiveClock
	c     chan struct{}
	mu    sync.Mutex
	first time.Time
}

// NewKicks returns an empty kick channel.
func NewKicks(clk clock.PassiveClock) *Kicks {
	return &Kicks{clk: clk, c: make(chan struct{}, 1)}
}

// Kick asks for an early pass; it never blocks.
func (k *Kicks) Kick() {
	k.mu.Lock()
	if k.first.IsZero() {
		k.first = k.clk.Now()
	}
	k.mu.Unlock()
	select {
	case k.c <- struct{}{}:
	default:
	}
}

// C receives when a kick is waiting (nil for a nil Kicks: never).
func (k *Kicks) C() <-chan struct{} {
	if k == nil {
		return nil
	}
	return k.c
}

// Batch waits, called after receiving from C, until kicks pause for
// BatchIdle or BatchMax has passed since the batch's first kick,
// whichever comes first; kicks after it returns open the next batch.
// False when ctx ended.
func (k *Kicks) Batch(ctx context.Context, clk clock.Clock) bool {
	k.mu.Lock()
	first := k.first
	k.mu.Unlock()
	limit := BatchMax
	if !first.IsZero() {
		limit = max(0, BatchMax-clk.Since(first))
	}
	ok := waitBatch(ctx, clk, k.c, limit)
	k.mu.Lock()
	k.first = time.Time{}
	k.mu.Unlock()
	return ok
}
