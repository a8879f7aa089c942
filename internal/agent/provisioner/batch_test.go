package provisioner

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// A burst of kicks makes one pass: the batch ends when kicks pause for
// BatchIdle, or at BatchMax after the batch's first kick however long the
// burst lasts, counting time the loop spent before it started waiting (a
// pass that was running when the first kick came).
func TestBatch(t *testing.T) {
	// run kicks once, lets late pass (the loop busy), then kicks every
	// kicksEvery, kicks times, then lets time pass; it returns how long
	// the batch waited on the fake clock.
	run := func(late, kicksEvery time.Duration, kicks int) time.Duration {
		t.Helper()
		clk := clocktesting.NewFakeClock(time.Unix(0, 0))
		k := NewKicks(clk)
		k.Kick()
		clk.Step(late)
		<-k.C()
		kick := k.c
		done := make(chan bool, 1)
		go func() { done <- k.Batch(context.Background(), clk) }()
		start := clk.Now()
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			// Let batch reach its select (timers armed, kick drained).
			for !clk.HasWaiters() || len(kick) > 0 {
				select {
				case ok := <-done:
					if !ok {
						t.Fatal("batch ended as if cancelled")
					}
					return clk.Since(start)
				default:
					time.Sleep(time.Millisecond)
				}
			}
			time.Sleep(2 * time.Millisecond) // both timers armed
			if i < kicks {
				clk.Step(kicksEvery)
				k.Kick()
			} else {
				clk.Step(BatchIdle)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatal("batch did not return")
		return 0
	}
	if got := run(0, 0, 0); got != BatchIdle {
		t.Errorf("no further kick: waited %s, want %s", got, BatchIdle)
	}
	if got := run(0, 50*time.Millisecond, 3); got != 150*time.Millisecond+BatchIdle {
		t.Errorf("three quick kicks: waited %s, want 150ms of kicks + %s idle", got, BatchIdle)
	}
	if got := run(0, 50*time.Millisecond, 100); got != BatchMax {
		t.Errorf("an endless burst: waited %s, want BatchMax %s", got, BatchMax)
	}
	if got := run(200*time.Millisecond, 50*time.Millisecond, 100); got != BatchMax-200*time.Millisecond {
		t.Errorf("an endless burst whose first kick came 200ms before: waited %s, want %s", got, BatchMax-200*time.Millisecond)
	}
	// The next batch counts from its own first kick.
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	k := NewKicks(clk)
	k.Kick()
	clk.Step(time.Hour)
	<-k.C()
	go k.Batch(context.Background(), clk)
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(BatchIdle)
	for clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	k.mu.Lock()
	first := k.first
	k.mu.Unlock()
	if !first.IsZero() {
		t.Errorf("after the batch the first kick is still %s", first)
	}
	var nilKicks *Kicks
	if nilKicks.C() != nil {
		t.Error("a nil Kicks has a channel")
	}
}
