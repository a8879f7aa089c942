package scaleup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

// clusterID is the benchmark cluster's ID in the local cloud.
const clusterID = "bench"

// benchNamespace holds the scenario's workload.
const benchNamespace = "bench"

// recorder wraps the cloud and notes every capacity increase, so the
// time capacity was requested is observed the same way whichever
// autoscaler (Bosun's provisioner or cluster-autoscaler through casgrpc)
// asked for it.
type recorder struct {
	provider.Provider
	mu    sync.Mutex
	first map[provider.Lifecycle]time.Time
	// ups holds the time of every increase.
	ups []time.Time
}

// upsAfter returns how long after start the first and the last increase
// at or after it came, and how many there were.
func (r *recorder) upsAfter(start time.Time) (first, last time.Duration, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, at := range r.ups {
		if at.Before(start) {
			continue
		}
		if n == 0 {
			first = at.Sub(start)
		}
		last = at.Sub(start)
		n++
	}
	return first, last, n
}

// SetTargetSize records the first increase per lifecycle, then passes the
// call on.
func (r *recorder) SetTargetSize(ctx context.Context, id string, size int) error {
	g, err := r.NodeGroup(ctx, id)
	at := time.Now()
	if err == nil && size > g.TargetSize {
		r.mu.Lock()
		if _, ok := r.first[g.Lifecycle]; !ok {
			r.first[g.Lifecycle] = at
		}
		r.ups = append(r.ups, at)
		r.mu.Unlock()
	}
	return r.Provider.SetTargetSize(ctx, id, size)
}

func (r *recorder) requested(l provider.Lifecycle) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.first[l]
	return t, ok
}

// trial is one throwaway cluster: a control plane, the local cloud over
// it, and one autoscaler. Stop tears everything down.
type trial struct {
	sc         *Scenario
	autoscaler string
	cp         *controlplane.ControlPlane
	cs         kubernetes.Interface
	cloud      *localcloud.Cloud
	rec        *recorder
	prov       *provisioner.Provisioner
	// runCtx lives as long as the trial; cancel ends it.
	runCtx   context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stops    []func()
	progress func(format string, args ...any)
}

// startTrial starts a cluster for sc with the given autoscaler. beforeRun,
// if set, sees the provisioner before it starts (to swap its histogram).
func (r *runner) startTrial(ctx context.Context, autoscaler, label string, beforeRun func(*provisioner.Provisioner)) (_ *trial, err error) {
	sc := r.sc
	prefix := "[" + autoscaler + "] "
	if label != "" {
		prefix = "[" + autoscaler + " " + label + "] "
	}
	t := &trial{sc: sc, autoscaler: autoscaler, progress: func(format string, args ...any) {
		r.progressf(prefix+format, args...)
	}}
	defer func() {
		if err != nil {
			t.stop()
		}
	}()
	t.progress("starting a control plane")
	t.cp, err = controlplane.Start(ctx, controlplane.Options{
		Name: "bench", Binaries: r.opts.Binaries, Scheduler: true, ControllerManager: true, Kwok: true,
		UnsafeNoFsync: true, StartTimeout: 3 * time.Minute, SchedulerQPS: 1000,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the benchmark's control plane, %w", err)
	}
	// Protobuf, as the agent and Kubernetes' own components talk: the
	// benchmark's watchers should cost the API server no more than theirs.
	cfg := controller.ProtobufConfig(t.cp.RESTConfig())
	cfg.QPS, cfg.Burst = 2000, 4000
	if t.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("client for the benchmark cluster, %w", err)
	}
	reg := localcloud.NewClientRegistry()
	reg.Add(clusterID, t.cs)
	t.cloud = localcloud.New(localcloud.Config{BootDelay: sc.Cloud.BootDelay.Std(45 * time.Second)}, clock.RealClock{}, reg)
	if err := t.cloud.AddCluster(sc.cluster(clusterID)); err != nil {
		return nil, fmt.Errorf("adding the benchmark cluster to the local cloud, %w", err)
	}
	t.rec = &recorder{Provider: t.cloud, first: map[provider.Lifecycle]time.Time{}}
	if err := t.setUpCluster(ctx); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.runCtx, t.cancel = runCtx, cancel
	quiet := quietLogger()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.cloud.Run(runCtx, clock.RealClock{}, sc.Cloud.Interval.Std(250*time.Millisecond), quiet)
	}()
	if sc.Cloud.SpotCapacity != nil {
		if err := t.cloud.SetCapacity(localcloud.OfferingKey{Lifecycle: provider.Spot}, *sc.Cloud.SpotCapacity, false); err != nil {
			return nil, fmt.Errorf("limiting spot capacity, %w", err)
		}
	}
	switch autoscaler {
	case AutoscalerBosun:
		t.prov, err = provisioner.NewProvisioner(controller.Deps{Provider: t.rec, Cluster: clusterID, Logger: quiet}, provisioner.Options{Templates: localcloud.ZoneTemplates("local"), ProvisionTimeout: sc.Provisioner.ProvisionTimeout.Std(5 * time.Minute)})
		if err != nil {
			return nil, err
		}
		if beforeRun != nil {
			beforeRun(t.prov)
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			_ = t.prov.Run(runCtx, t.cs, sc.Provisioner.Interval.Std(time.Second))
		}()
	case AutoscalerCA:
		stop, err := startClusterAutoscaler(runCtx, r.opts.ClusterAutoscaler, t)
		if err != nil {
			return nil, err
		}
		t.stops = append(t.stops, stop)
	}
	return t, nil
}

// setUpCluster registers the pools' minimum nodes, waits for them to be
// Ready, and creates the namespace and the workload's PriorityClass.
func (t *trial) setUpCluster(ctx context.Context) error {
	want := 0
	for _, p := range t.sc.cluster(clusterID).NodePools {
		want += p.MinSize
	}
	if want > 0 {
		t.progress("registering %d nodes", want)
	}
	if err := t.cloud.Bootstrap(ctx); err != nil {
		return fmt.Errorf("registering the pools' minimum nodes, %w", err)
	}
	if err := waitFor(ctx, 3*time.Minute, 250*time.Millisecond, func() (bool, error) {
		nodes, err := t.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err
		}
		ready := 0
		for i := range nodes.Items {
			if controlplane.NodeReady(&nodes.Items[i]) {
				ready++
			}
		}
		return ready >= want, nil
	}); err != nil {
		return fmt.Errorf("waiting for %d nodes to be Ready, %w", want, err)
	}
	if _, err := t.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s, %w", benchNamespace, err)
	}
	if err := waitFor(ctx, time.Minute, 100*time.Millisecond, func() (bool, error) {
		_, err := t.cs.CoreV1().ServiceAccounts(benchNamespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("waiting for the default ServiceAccount, %w", err)
	}
	if p := t.sc.Workload.Priority; p != 0 {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: priorityClassName}, Value: p}
		if _, err := t.cs.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating PriorityClass %s, %w", priorityClassName, err)
		}
	}
	return nil
}

// stop ends the autoscaler and the cloud, then the control plane.
func (t *trial) stop() {
	if t.cancel != nil {
		t.cancel()
	}
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
	t.wg.Wait()
	if t.cp != nil {
		if err := t.cp.Stop(); err != nil {
			t.progress("stopping the control plane: %v", err)
		}
	}
}

// priorityClassName is the workload's PriorityClass when it has one.
const priorityClassName = "bench-app"

// appName is the workload's Deployment and app label.
const appName = "app"

// deployment is the workload's Deployment: pause pods with the given
// requests, at the workload's priority.
func deployment(w WorkloadSpec, name string, replicas int) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(replicas)), //nolint:gosec // G115: the scenario's own replica counts, at most thousands
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(w)},
		},
	}
}

func podSpec(w WorkloadSpec) corev1.PodSpec {
	req := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(w.CPU),
		corev1.ResourceMemory: resource.MustParse(w.Memory),
	}
	spec := corev1.PodSpec{
		NodeSelector:                  w.NodeSelector,
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: req, Limits: req},
		}},
	}
	if w.Priority != 0 {
		spec.PriorityClassName = priorityClassName
	}
	return spec
}

// runningPods counts the Running pods of the namespace with the label
// selector.
func (t *trial) runningPods(ctx context.Context, selector string) (int, error) {
	pods, err := t.cs.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: "0"})
	if err != nil {
		return 0, fmt.Errorf("listing pods, %w", err)
	}
	n := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n, nil
}

// waitFor polls cond every interval until it is true, it fails, or the
// timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// quietLogger discards the controllers' logs: the benchmark reports what
// it measures, and logging would cost the machine it measures.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// describe summarises the cloud's groups and the workload's pods, for an
// error that says where a run got stuck.
func (t *trial) describe(ctx context.Context) string {
	var b strings.Builder
	for _, g := range t.cloud.Status(ctx).Groups {
		if g.TargetSize == 0 && g.Failures == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s target %d running %d pending %d failures %d; ", g.ID, g.TargetSize, g.Running, g.Pending, g.Failures)
	}
	pods, err := t.cs.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		phases := map[corev1.PodPhase]int{}
		for _, p := range pods.Items {
			phases[p.Status.Phase]++
		}
		fmt.Fprintf(&b, "pods by phase %v", phases)
	}
	return b.String()
}
