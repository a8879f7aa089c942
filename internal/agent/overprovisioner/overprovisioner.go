// Package overprovisioner keeps headroom in the cluster with pause pods at
// priority -10 (L12): any real pod preempts them at once and runs without
// waiting for a node, while the evicted pause pods turn pending and make
// the provisioner add capacity. Replicas follow cluster-proportional-
// autoscaler's linear or ladder rules over the cores and nodes of each
// target: the cluster's general capacity, and every dedicated (tainted)
// pool on its own, with matching tolerations and node selector (L06). The
// "auto" pod size keeps each pause pod larger than the largest real pod of
// its target, so one preemption always frees enough room.
package overprovisioner

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/fleet"
)

// Names and labels the controller owns.
const (
	PriorityClassName = agentapi.PriorityClassName
	Priority          = agentapi.Priority
	LabelManaged      = agentapi.LabelManaged
	// DefaultConfigMap is the rules ConfigMap's name when
	// --overprovisioner-configmap is not given (in the agent's namespace).
	DefaultConfigMap = agentcmd.DefaultOverprovisionerConfigMap
	clusterTarget    = agentapi.ClusterTarget
	pauseImage       = "registry.k8s.io/pause:3.10"
	// SchedulingGate holds re-created pause pods back while a burst
	// release's pods wait for the room their predecessors left (with burst
	// release on): the overprovisioner removes it once no pending pod
	// waits for room on existing nodes, so the pause pods then ask the
	// provisioner for new capacity instead of taking the burst's room.
	// The provisioner asks for their capacity while they are held.
	SchedulingGate = provisioner.HeadroomGate
	// pauseUser runs the pause container as a non-root user (restricted
	// Pod Security Standard); the pause image needs no other.
	pauseUser = int64(65535)
)

// Options configure the controller. Clients, the shared informer factory
// (cluster-wide, for nodes, pods and priority classes; nil: the
// controller makes its own), events, metrics, clock, logger and dry-run
// come with controller.Deps; Deps.ReleaseClient deletes pause pods and
// nominates pending pods in a burst release: a burst is hundreds of
// requests at once, which the agent's steady budget (50 a second) would
// spread over seconds, so the agent gives the release a client of its own
// with the same rate and a burst of ReleaseBurst (ReleaseConfig).
type Options struct {
	// Namespace holds the ConfigMap and the pause Deployments.
	Namespace string
	// ConfigMap names the ConfigMap with the linear or ladder rules.
	ConfigMap string
	// SyncTimeout bounds the cache sync when Reconcile starts the caches
	// itself (default 30s).
	SyncTimeout time.Duration
	// LeaveToPreemption turns the burst release off: pods of higher
	// priority wait for the scheduler's preemption, one victim set per
	// scheduling cycle, as before (kept for comparison). By default, the
	// pause pods that pending pods need are deleted at once (SelectRelease).
	LeaveToPreemption bool
}

// config is what the controller runs with: its options and its deps.
type config struct {
	Options
	controller.Deps
}

// Controller reconciles the pause Deployments. It reads everything from
// informer caches (an unchanged cluster costs no API request) and writes
// only when a Deployment or the PriorityClass differs from what it wants.
type Controller struct {
	opts    config
	actions []string

	// own are the factories the controller made and starts itself.
	own         []informers.SharedInformerFactory
	started     bool
	nodes       corelisters.NodeLister
	pods        corelisters.PodLister
	configMaps  corelisters.ConfigMapLister
	deployments appslisters.DeploymentLister
	// replicaSets are every ReplicaSet (burst release: Expected).
	replicaSets     appslisters.ReplicaSetLister
	priorityClasses schedulinglisters.PriorityClassLister
	configInformer  cache.SharedIndexInformer
	metrics         *Metrics
	// releaser is the burst release (nil with LeaveToPreemption).
	releaser *releaser
	// synced report the shared node and pod caches synced: the release
	// never decides from a partial list (a restarted agent would see the
	// pending pods and not yet the pods that fill the nodes).
	synced []cache.InformerSynced
}

func (c *Controller) did(format string, args ...any) {
	c.actions = append(c.actions, fmt.Sprintf(format, args...))
}

// Name is the overprovisioner's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerOverprovisioner

// New returns a controller (Deps.Client is required). Call Start before
// the first pass (Reconcile starts the caches itself when nobody did).
//
// RBAC: nodes, pods and replicasets list/watch, priorityclasses
// list/watch/create; in
// its namespace configmaps list/watch, deployments
// list/watch/create/update/delete and pods delete (burst release);
// deployments get and events create cluster-wide (its Events).
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldClient); err != nil {
		return nil, err
	}
	if opts.Namespace == "" || opts.ConfigMap == "" {
		return nil, fmt.Errorf("%s: Options.Namespace and Options.ConfigMap name the rules ConfigMap; got %q/%q", Name, opts.Namespace, opts.ConfigMap)
	}
	deps = deps.WithDefaults()
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 30 * time.Second
	}
	c := &Controller{opts: config{Options: opts, Deps: deps}, metrics: NewMetrics(deps.Registry)}
	shared := deps.Factory
	if shared == nil {
		shared = informers.NewSharedInformerFactory(deps.Client, 0)
		c.own = append(c.own, shared)
	}
	c.nodes = shared.Core().V1().Nodes().Lister()
	c.synced = []cache.InformerSynced{shared.Core().V1().Nodes().Informer().HasSynced, shared.Core().V1().Pods().Informer().HasSynced}
	c.priorityClasses = shared.Scheduling().V1().PriorityClasses().Lister()
	// The pods come from the same cache as every other controller's (the
	// agent trims it); sizing reads the running ones.
	c.pods = shared.Core().V1().Pods().Lister()
	own := informers.NewSharedInformerFactoryWithOptions(deps.Client, 0, informers.WithNamespace(opts.Namespace))
	c.configMaps = own.Core().V1().ConfigMaps().Lister()
	c.configInformer = own.Core().V1().ConfigMaps().Informer()
	c.deployments = own.Apps().V1().Deployments().Lister()
	c.own = append(c.own, own)
	if !opts.LeaveToPreemption {
		c.releaser = newReleaser(c)
		rss := shared.Apps().V1().ReplicaSets()
		c.replicaSets = rss.Lister()
		c.synced = append(c.synced, rss.Informer().HasSynced)
		for _, err := range []error{c.releaser.watch(shared.Core().V1().Pods().Informer()), c.releaser.watchReplicaSets(rss.Informer())} {
			if err != nil {
				// Only a stopped informer refuses: every pass still releases.
				deps.Logger.Error("burst release only at passes", "err", err)
			}
		}
	}
	return c, nil
}

// Start starts the informers the controller made until run ends and
// reports whether they synced before sync ended. A shared factory passed
// in Options is started by its owner.
func (c *Controller) Start(run, sync context.Context) bool {
	c.started = true
	for _, f := range c.own {
		f.Start(run.Done())
		for _, ok := range f.WaitForCacheSync(sync.Done()) {
			if !ok {
				return false
			}
		}
	}
	if c.releaser != nil {
		go c.releaser.run(run)
	}
	return true
}

// Release makes one burst release now (it also runs on its own whenever
// a pod of higher priority than the pause pods turns unschedulable, and
// at every pass) and returns what it did; nothing with
// LeaveToPreemption. Start the caches first.
func (c *Controller) Release(ctx context.Context) ([]string, error) {
	if c.releaser == nil {
		return nil, nil
	}
	return c.releaser.release(ctx)
}

// Wait returns once the deletions, nominations and Events of every burst
// release so far are done (controller.Waiter).
func (c *Controller) Wait() {
	if c.releaser != nil {
		c.releaser.Wait()
	}
}

// OnChange calls f when the rules ConfigMap changes, so new
// rules apply at once rather than at the next interval.
func (c *Controller) OnChange(f func()) error {
	_, err := c.configInformer.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			cm, ok := obj.(*corev1.ConfigMap)
			return ok && cm.Name == c.opts.ConfigMap
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { f() },
			UpdateFunc: func(any, any) { f() },
			DeleteFunc: func(any) { f() },
		},
	})
	if err != nil {
		return fmt.Errorf("watching the overprovisioner's ConfigMap, %w", err)
	}
	return nil
}

// target is a set of nodes that gets its own pause pods.
type target struct {
	name     string
	selector map[string]string
	taints   []corev1.Taint
	nodes    []*corev1.Node
}

// Name is the controller's name in --controllers.
func (c *Controller) Name() string { return Name }

// Pass makes one pass and returns what it changed (or, in dry-run, would
// change). A ConfigMap that does not parse changes nothing: the error says
// what is wrong and the Deployments stay as they are.
func (c *Controller) Pass(ctx context.Context) ([]string, error) {
	c.actions = nil
	err := c.Reconcile(ctx)
	return c.actions, err
}

// Reconcile makes one pass; see Pass.
func (c *Controller) Reconcile(ctx context.Context) error {
	if !c.started {
		sync, cancel := context.WithTimeout(ctx, c.opts.SyncTimeout)
		ok := c.Start(ctx, sync)
		cancel()
		if !ok {
			return fmt.Errorf("overprovisioner: informer caches did not sync within %s (check its RBAC)", c.opts.SyncTimeout)
		}
	}
	where := c.opts.Options.Namespace + "/" + c.opts.ConfigMap
	cm, err := c.configMaps.ConfigMaps(c.opts.Options.Namespace).Get(c.opts.ConfigMap)
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s, %w", where, err)
	}
	params, err := agentapi.ParseParams("ConfigMap "+where, cm.Data)
	if err != nil {
		return err
	}
	if err := c.ensurePriorityClass(ctx); err != nil {
		return err
	}
	released, err := c.Release(ctx)
	c.actions = append(c.actions, released...)
	if err != nil {
		return err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes, %w", err)
	}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing pods, %w", err)
	}
	targets := targetsOf(nodes, params.IncludeUnschedulable())
	keep := map[string]bool{}
	for _, t := range targets {
		keep[agentapi.DeploymentName(t.name)] = true
		cores := 0.0
		for _, n := range t.nodes {
			cores += float64(n.Status.Allocatable.Cpu().MilliValue()) / 1000
		}
		replicas := params.Replicas(cores, len(t.nodes))
		cpu, mem := podSize(t, pods)
		if err := c.apply(ctx, t, int32(min(max(replicas, 0), math.MaxInt32)), cpu, mem); err != nil { // rules from a ConfigMap: clamp, never wrap
			return err
		}
	}
	return c.prune(ctx, keep)
}

// targetsOf groups nodes by TargetFor: dedicated pools each on their own,
// every other untainted node in the cluster target.
func targetsOf(nodes []*corev1.Node, includeUnschedulable bool) []*target {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	byName := map[string]*target{}
	for _, n := range nodes {
		if n.Spec.Unschedulable && !includeUnschedulable {
			continue
		}
		name := agentapi.TargetFor(n.Labels, n.Spec.Taints)
		if name == "" {
			continue // system or otherwise reserved nodes get no headroom
		}
		t := byName[name]
		if t == nil {
			t = &target{name: name}
			if name != clusterTarget {
				t.selector = map[string]string{fleet.LabelPool: n.Labels[fleet.LabelPool]}
				t.taints = n.Spec.Taints
			}
			byName[name] = t
		}
		t.nodes = append(t.nodes, n)
	}
	out := make([]*target, 0, len(byName))
	for _, t := range byName {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// podSize is the "auto" size (L12): 10% above the largest CPU and memory
// request of a real pod on the target's nodes, at least 100m and 128Mi.
func podSize(t *target, pods []*corev1.Pod) (resource.Quantity, resource.Quantity) {
	on := map[string]bool{}
	for _, n := range t.nodes {
		on[n.Name] = true
	}
	var cpu, mem int64 = 100, 128 << 20
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || !on[p.Spec.NodeName] || p.Labels[LabelManaged] != "" || ownedByDaemonSet(p) {
			continue
		}
		var pc, pm int64
		for _, c := range p.Spec.Containers {
			pc += c.Resources.Requests.Cpu().MilliValue()
			pm += c.Resources.Requests.Memory().Value()
		}
		cpu, mem = max(cpu, pc*11/10), max(mem, pm*11/10)
	}
	return *resource.NewMilliQuantity(cpu, resource.DecimalSI), *resource.NewQuantity(mem, resource.BinarySI)
}

func ownedByDaemonSet(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

func (c *Controller) ensurePriorityClass(ctx context.Context) error {
	_, err := c.priorityClasses.Get(PriorityClassName)
	if err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	c.opts.Logger.Info("creating priority class", "name", PriorityClassName, "value", Priority, "dryRun", c.opts.DryRun)
	c.did("create PriorityClass %s (%d)", PriorityClassName, Priority)
	if c.opts.DryRun {
		return nil
	}
	_, err = c.opts.Client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta:  metav1.ObjectMeta{Name: PriorityClassName},
		Value:       Priority,
		Description: "Pause pods that reserve headroom; every real pod preempts them (L12).",
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (c *Controller) apply(ctx context.Context, t *target, replicas int32, cpu, mem resource.Quantity) error {
	want := deployment(c.opts.Options.Namespace, t, replicas, cpu, mem, !c.opts.LeaveToPreemption)
	deps := c.opts.Client.AppsV1().Deployments(c.opts.Options.Namespace)
	cur, err := c.deployments.Deployments(c.opts.Options.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		c.opts.Logger.Info("creating pause deployment", "name", want.Name, "replicas", replicas, "cpu", cpu.String(), "memory", mem.String(), "dryRun", c.opts.DryRun)
		c.did("create Deployment %s/%s: %d x (%s CPU, %s memory)", c.opts.Options.Namespace, want.Name, replicas, cpu.String(), mem.String())
		if c.opts.DryRun {
			return nil
		}
		_, err = deps.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // created by the previous pass; the cache has not seen it yet
		}
		return err
	}
	if err != nil {
		return err
	}
	cc := cur.Spec.Template.Spec.Containers
	if cur.Spec.Replicas != nil && *cur.Spec.Replicas == replicas && len(cc) == 1 &&
		cc[0].Resources.Requests.Cpu().Cmp(cpu) == 0 && cc[0].Resources.Requests.Memory().Cmp(mem) == 0 &&
		len(cur.Spec.Template.Spec.SchedulingGates) == len(want.Spec.Template.Spec.SchedulingGates) &&
		maps.Equal(cur.Spec.Template.Labels, want.Spec.Template.Labels) {
		return nil
	}
	c.opts.Logger.Info("updating pause deployment", "name", want.Name, "replicas", replicas, "cpu", cpu.String(), "memory", mem.String(), "dryRun", c.opts.DryRun)
	c.did("update Deployment %s/%s: %d x (%s CPU, %s memory)", c.opts.Options.Namespace, want.Name, replicas, cpu.String(), mem.String())
	if c.opts.DryRun {
		return nil
	}
	cur = cur.DeepCopy() // never modify the cache
	cur.Spec.Replicas = want.Spec.Replicas
	cur.Spec.Template = want.Spec.Template
	_, err = deps.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// deployment is a target's pause Deployment; gated, its pods start with
// SchedulingGate (burst release).
func deployment(ns string, t *target, replicas int32, cpu, mem resource.Quantity, gated bool) *appsv1.Deployment {
	labels := map[string]string{LabelManaged: t.name}
	podLabels := map[string]string{LabelManaged: t.name}
	for k, v := range agentapi.PauseOwnership {
		podLabels[k] = v
	}
	res := corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
	var tolerations []corev1.Toleration
	for _, taint := range t.taints {
		tolerations = append(tolerations, corev1.Toleration{Key: taint.Key, Operator: corev1.TolerationOpEqual, Value: taint.Value, Effect: taint.Effect})
	}
	var gates []corev1.PodSchedulingGate
	if gated {
		gates = []corev1.PodSchedulingGate{{Name: SchedulingGate}}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: agentapi.DeploymentName(t.name), Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					PriorityClassName:             PriorityClassName,
					SchedulingGates:               gates,
					NodeSelector:                  t.selector,
					Tolerations:                   tolerations,
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					AutomountServiceAccountToken:  ptr.To(false),
					// The restricted Pod Security Standard, so the pause pods
					// are admitted in namespaces that enforce it (L37).
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To(pauseUser),
						RunAsGroup:     ptr.To(pauseUser),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name: "pause", Image: pauseImage,
						Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

// prune deletes pause Deployments of targets that no longer exist.
func (c *Controller) prune(ctx context.Context, keep map[string]bool) error {
	deps := c.opts.Client.AppsV1().Deployments(c.opts.Options.Namespace)
	managed, err := labels.Parse(LabelManaged)
	if err != nil {
		return err
	}
	list, err := c.deployments.Deployments(c.opts.Options.Namespace).List(managed)
	if err != nil {
		return fmt.Errorf("listing pause deployments, %w", err)
	}
	for _, d := range list {
		if keep[d.Name] {
			continue
		}
		c.opts.Logger.Info("deleting pause deployment of a gone target", "name", d.Name, "dryRun", c.opts.DryRun)
		c.did("delete Deployment %s/%s (its target is gone)", c.opts.Options.Namespace, d.Name)
		if c.opts.DryRun {
			continue
		}
		if err := deps.Delete(ctx, d.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
