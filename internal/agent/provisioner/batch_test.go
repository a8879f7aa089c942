package provisioner

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// A burst of kicks makes one pass: the batch ends when kicks pause for
// BatchIdle, or at BatchMax however long the burst lasts.
func TestBatch(t *testing.T) {
	// run kicks every kicksEvery, kicks times, then lets time pass; it
	// returns how long batch waited on the fake clock.
	run := func(kicksEvery time.Duration, kicks int) time.Duration {
		t.Helper()
		clk := clocktesting.NewFakeClock(time.Unix(0, 0))
		kick := make(chan struct{}, 1)
		done := make(chan bool, 1)
		go func() { done <- WaitBatch(context.Background(), clk, kick) }()
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
				kick <- struct{}{}
			} else {
				clk.Step(BatchIdle)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatal("batch did not return")
		return 0
	}
	if got := run(0, 0); got != BatchIdle {
		t.Errorf("no further kick: waited %s, want %s", got, BatchIdle)
	}
	if got := run(50*time.Millisecond, 3); got != 150*time.Millisecond+BatchIdle {
		t.Errorf("three quick kicks: waited %s, want 150ms of kicks + %s idle", got, BatchIdle)
	}
	if got := run(50*time.Millisecond, 100); got != BatchMax {
		t.Errorf("an endless burst: waited %s, want BatchMax %s", got, BatchMax)
	}
}
