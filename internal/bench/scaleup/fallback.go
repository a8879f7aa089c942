package scaleup

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/provider"
)

// seedsProvisionTimeout is cluster-autoscaler's --max-node-provision-time
// the seeds ran with: each spot group that could not launch was given up
// only after it (L11).
const seedsProvisionTimeout = 5 * time.Minute

// fallback creates the workload's pods at once and measures the time to
// the first capacity request of each lifecycle and to all pods Running;
// under ICE also the time from the first capacity error to the on-demand
// request (L11: target under 5 s whatever the number of failing groups).
func (r *runner) fallback(ctx context.Context, autoscaler string) ([]Result, error) {
	t, err := r.startTrial(ctx, autoscaler, "", nil)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	w := r.sc.Workload
	t.progress("creating %d pods", w.Pods)
	created := time.Now()
	if _, err := t.cs.AppsV1().Deployments(benchNamespace).Create(ctx, deployment(w, appName, w.Pods), metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the workload, %w", err)
	}
	var firstErr time.Time
	timeout := r.sc.Timeout.Std(5 * time.Minute)
	err = waitFor(ctx, timeout, 50*time.Millisecond, func() (bool, error) {
		if at, ok := t.firstCapacityError(ctx); ok && (firstErr.IsZero() || at.Before(firstErr)) {
			firstErr = at
		}
		n, err := t.runningPods(ctx, "app="+appName)
		return n == w.Pods, err
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %d pods to run (%s), %w", w.Pods, t.describe(ctx), err)
	}
	running := time.Since(created)
	t.progress("%d pods Running after %s", w.Pods, running.Round(time.Millisecond))

	var out []Result
	spotAt, spotOK := t.rec.requested(provider.Spot)
	odAt, odOK := t.rec.requested(provider.OnDemand)
	if spotOK {
		out = append(out, seconds("pods-created-to-spot-requested", autoscaler, spotAt.Sub(created).Seconds()))
	}
	if odOK {
		od := seconds("pods-created-to-on-demand-requested", autoscaler, odAt.Sub(created).Seconds())
		if !firstErr.IsZero() {
			// The seeds' cluster-autoscaler tried the spot groups one after
			// another and gave each up after the provision timeout.
			n := r.sc.spotGroups()
			base := float64(n) * seedsProvisionTimeout.Seconds()
			od = od.against(fmt.Sprintf("seeds-sequential-fallback (%d spot groups x %s, arithmetic)", n, seedsProvisionTimeout), base)
		}
		out = append(out, od)
	}
	if !firstErr.IsZero() && odOK {
		d := odAt.Sub(firstErr).Seconds()
		out = append(out, seconds("first-capacity-error-to-on-demand-requested", autoscaler, d).
			target("< 5 s", d < 5).
			note(fmt.Sprintf("through %d spot groups that all failed for capacity", r.sc.spotGroups())))
	}
	out = append(out, seconds("pods-created-to-running", autoscaler, running.Seconds()).
		note(fmt.Sprintf("%d pods; instances boot for %s", w.Pods, r.sc.Cloud.BootDelay.Std(45*time.Second))))
	return out, nil
}

// firstCapacityError is the earliest launch that failed for capacity or
// quota in the benchmark cluster's groups (the cloud stamps a failed
// attempt with its time).
func (t *trial) firstCapacityError(ctx context.Context) (time.Time, bool) {
	groups, err := t.cloud.NodeGroups(ctx)
	if err != nil {
		return time.Time{}, false
	}
	var first time.Time
	for _, g := range groups {
		ins, err := t.cloud.Instances(ctx, g.ID)
		if err != nil {
			continue
		}
		for _, in := range ins {
			if in.State == provider.Failed && (in.ErrorClass == provider.InsufficientCapacity || in.ErrorClass == provider.QuotaExceeded) &&
				(first.IsZero() || in.LaunchTime.Before(first)) {
				first = in.LaunchTime
			}
		}
	}
	return first, !first.IsZero()
}
