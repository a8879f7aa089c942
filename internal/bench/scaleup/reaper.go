package scaleup

import (
	"context"
	"fmt"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/reaper"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

// reaperMinAge replaces the reaper's 2-hour minimum age of on-demand
// nodes: that policy knob would only add a constant to the figure, which
// is how long the reaper takes once it may act.
const reaperMinAge = time.Second

// reaper runs the workload on on-demand (spot out of capacity from the
// start), restores spot, runs the reaper every second and measures the
// time until no on-demand node is left, and how often the workload's
// available replicas fell below its PodDisruptionBudget.
func (r *runner) reaper(ctx context.Context, autoscaler string) ([]Result, error) {
	const name = "spot-restored-to-on-demand-share-zero"
	t, err := r.startTrial(ctx, autoscaler, "", nil)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	w := r.sc.Workload
	minAvailable := max(w.Pods-1, 0)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: benchNamespace},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptrTo(intstr.FromInt32(int32(minAvailable))), //nolint:gosec // G115: the scenario's own count
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": appName}},
		},
	}
	if _, err := t.cs.PolicyV1().PodDisruptionBudgets(benchNamespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the PodDisruptionBudget, %w", err)
	}
	if _, err := t.cs.AppsV1().Deployments(benchNamespace).Create(ctx, deployment(w, appName, w.Pods), metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the workload, %w", err)
	}
	timeout := r.sc.Timeout.Std(5 * time.Minute)
	if err := waitFor(ctx, timeout, 200*time.Millisecond, func() (bool, error) {
		n, err := t.runningPods(ctx, "app="+appName)
		return n == w.Pods, err
	}); err != nil {
		return nil, fmt.Errorf("waiting for the workload on on-demand, %w", err)
	}
	reaper, err := t.startReaper(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, 0, true); err != nil {
		return nil, fmt.Errorf("restoring spot capacity, %w", err)
	}
	restored := time.Now()
	t.progress("spot restored; running the reaper")
	violations, lastPass := 0, time.Time{}
	err = waitFor(ctx, timeout, 200*time.Millisecond, func() (bool, error) {
		if time.Since(lastPass) >= time.Second {
			lastPass = time.Now()
			if _, err := reaper.Pass(ctx); err != nil {
				t.progress("reaper pass: %v", err)
			}
		}
		n, err := t.runningPods(ctx, "app="+appName)
		if err != nil {
			return false, err
		}
		if n < minAvailable {
			violations++
		}
		share, err := t.onDemandShare(ctx)
		return share == 0, err
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the on-demand share to reach 0 (%s), %w", t.describe(ctx), err)
	}
	took := time.Since(restored)
	return []Result{
		seconds(name, autoscaler, took.Seconds()).note(fmt.Sprintf("reaper pass every second, on-demand nodes older than %s; %d pods, PDB minAvailable %d", reaperMinAge, w.Pods, minAvailable)),
		{Name: "samples-below-pdb-min-available", Autoscaler: autoscaler, Count: ptrTo(violations), Target: "0", Met: ptrTo(violations == 0),
			Note: "running replicas counted every 200 ms while the reaper worked"},
	}, nil
}

// startReaper builds the on-demand reaper over the trial's cluster with
// its own informers, started for the rest of the trial.
func (t *trial) startReaper(ctx context.Context) (*reaper.Controller, error) {
	factory := informers.NewSharedInformerFactory(t.cs, 0)
	opts := reaper.DefaultOptions()
	opts.MinAge, opts.Templates = reaperMinAge, localcloud.ZoneTemplates("local")
	reaper, err := reaper.New(controller.Deps{
		Provider: t.rec, Cluster: clusterID, Client: t.cs, Factory: factory, Clock: clock.RealClock{}, Logger: quietLogger(),
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("building the reaper, %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.stops = append(t.stops, func() { cancel(); reaper.Wait() })
	factory.Start(runCtx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("reaper: syncing the %v informer", typ)
		}
	}
	return reaper, nil
}

// onDemandShare is the fraction of the cluster's live instances that are
// on-demand.
func (t *trial) onDemandShare(ctx context.Context) (float64, error) {
	groups, err := t.cloud.NodeGroups(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing node groups, %w", err)
	}
	all, od := 0, 0
	for _, g := range groups {
		ins, err := t.cloud.Instances(ctx, g.ID)
		if err != nil {
			return 0, fmt.Errorf("listing instances of %s, %w", g.ID, err)
		}
		for _, in := range ins {
			if in.State != provider.Running && in.State != provider.Pending {
				continue
			}
			all++
			if g.Lifecycle == provider.OnDemand {
				od++
			}
		}
	}
	if all == 0 {
		return 0, nil
	}
	return float64(od) / float64(all), nil
}
