package provisioner

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
)

// Only pods the scheduler gave up on trigger a scale-up; a pod it is
// making room for by preemption (nominated node) does not.
func TestUnschedulable(t *testing.T) {
	cond := func(reason string) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: reason}}
	}
	now := metav1.Now()
	pods := map[string]*corev1.Pod{
		"waiting":   {Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable)}},
		"nominated": {Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable), NominatedNodeName: "n1"}},
		"bound":     {Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable)}},
		"deleting":  {ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonUnschedulable)}},
		"untried":   {},
		"gated":     {Status: corev1.PodStatus{Conditions: cond(corev1.PodReasonSchedulingGated)}},
	}
	var in []*corev1.Pod
	for name, p := range pods {
		p.Name = name
		in = append(in, p)
	}
	got := UnschedulablePods(in)
	if len(got) != 1 || got[0].Name != "waiting" {
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
		}
		t.Errorf("unschedulable = %v, want [waiting]", names)
	}
}

// The latency's start is the condition's transition time (stored to the
// second), refined by when the controller saw the change in that second.
func TestPendingSince(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0.Add(400 * time.Millisecond))
	p, err := NewProvisioner(controller.Deps{Provider: fake.New(nil, nil, clk.Now), Clock: clk}, Options{Templates: template})
	if err != nil {
		t.Fatal(err)
	}
	p.Seen("a")
	if got := p.pendingSince("a", t0); !got.Equal(t0.Add(400 * time.Millisecond)) {
		t.Errorf("seen 400ms into the second: start %s, want the seen time", got.Sub(t0))
	}
	p.Seen("b")
	if got := p.pendingSince("b", t0.Add(-2*time.Second)); !got.Equal(t0.Add(-2 * time.Second)) {
		t.Errorf("seen long after the transition (a restart): start %s, want the transition time", got.Sub(t0))
	}
	if got := p.pendingSince("never-seen", t0); !got.Equal(t0) {
		t.Errorf("never seen: start %s, want the transition time", got.Sub(t0))
	}
}

// The controller finds the pods waiting for a node, and is kicked when one
// turns unschedulable, whether it reads them from the agent's shared pod
// cache (indexed) or watches them apart.
func TestControllerPendingPods(t *testing.T) {
	for _, sharedPods := range []bool{true, false} {
		t.Run(fmt.Sprint("sharedPods=", sharedPods), func(t *testing.T) {
			p, fp, _ := newTest(t, group("spot", provider.Spot, 10))
			waiting := pendingPod("1", "1Gi")
			bound := pendingPod("1", "1Gi", func(p *corev1.Pod) { p.Spec.NodeName, p.Status.Conditions = "n1", nil })
			cs := k8sfake.NewClientset(waiting, bound)
			factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(agentcache.CacheTransform))
			c, err := newController(p, cs, factory, sharedPods)
			if err != nil {
				t.Fatal(err)
			}
			var kicks atomic.Int32
			if err := c.OnChange(func() { kicks.Add(1) }); err != nil {
				t.Fatal(err)
			}
			if got := len(c.own); got != map[bool]int{true: 1, false: 2}[sharedPods] {
				t.Errorf("the controller made %d informer factories of its own", got)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if !c.Start(ctx, ctx) {
				t.Fatal("not synced")
			}
			factory.Start(ctx.Done())
			factory.WaitForCacheSync(ctx.Done())
			// The handler runs apart from the cache: wait for the kick.
			for i := 0; kicks.Load() == 0 && i < 500; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if kicks.Load() != 1 {
				t.Errorf("%d kicks, want 1 (the waiting pod)", kicks.Load())
			}
			p.seenMu.Lock()
			_, seen := p.seen[waiting.UID]
			p.seenMu.Unlock()
			if !seen {
				t.Error("the waiting pod was not Seen")
			}
			decisions, err := c.Pass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(decisions) != 1 || target(t, fp, "spot") != 1 {
				t.Errorf("decisions %v, spot target %d: want one node for the one waiting pod", decisions, target(t, fp, "spot"))
			}
		})
	}
}

// held makes a pause pod that HeadroomGate holds back.
func held(p *corev1.Pod) {
	p.Spec.Priority = ptr.To[int32](-10)
	p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: HeadroomGate}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}
}

// nominated makes a burst pod of higher priority nominated to n1.
func nominated(p *corev1.Pod) {
	p.Spec.Priority = ptr.To[int32](1000)
	p.Status.NominatedNodeName = "n1"
}

// created makes a pod of priority 1000 created at t that the scheduler
// has not tried yet.
func created(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Priority = ptr.To[int32](1000)
		p.CreationTimestamp = metav1.NewTime(t)
		p.Status.Conditions = nil
	}
}

// unschedulable marks a pod as the scheduler reports one it cannot place.
func unschedulable(p *corev1.Pod) {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.NewTime(t0)}}
}

// Issue 17 (L12): while a burst's pod waits, nominated, for the room a
// burst release made, the re-created pause pods held back by HeadroomGate
// get their capacity asked for at once, before the gate is lifted; the
// same held pods without a nominated pod of higher priority waiting ask
// for nothing (the gate is about to go and the scheduler places them).
func TestControllerAsksForHeldHeadroomDuringABurst(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		want int
	}{
		{"burst waiting", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("3", "1Gi", held), pendingPod("1", "1Gi", nominated)}, 2},
		{"no burst", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("3", "1Gi", held)}, 0},
		{"nominated pod of lower priority", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("1", "1Gi", nominated, func(p *corev1.Pod) { p.Spec.Priority = ptr.To[int32](-20) })}, 0},
		// A release made room without nominating (no pod of lower priority
		// could take it): the burst's pods are just created.
		{"burst waiting, not nominated", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("3", "1Gi", held), pendingPod("1", "1Gi", created(t0.Add(-time.Second)))}, 2},
		// The old pod gets its own node; the held pause pod asks for none.
		{"pod of higher priority pending for longer than a burst", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("1", "1Gi", created(t0.Add(-2*burstWindow)), unschedulable)}, 1},
		{"burst bound, not running yet", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("1", "1Gi", created(t0), func(p *corev1.Pod) {
			p.Spec.NodeName, p.Status.Phase = "n1", corev1.PodPending
		})}, 1},
		{"burst running", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("1", "1Gi", created(t0), func(p *corev1.Pod) {
			p.Spec.NodeName, p.Status.Phase = "n1", corev1.PodRunning
		})}, 0},
		{"pod of higher priority behind its own scheduling gate", []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("1", "1Gi", created(t0), func(p *corev1.Pod) {
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
		})}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, fp, _ := newTest(t, group("spot", provider.Spot, 10))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, _, _ := syncedController(ctx, t, p, tc.pods...)
			if _, err := c.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			// Two 3-CPU pause pods need two m5.xlarge nodes (4 CPUs each).
			if got := target(t, fp, "spot"); got != tc.want {
				t.Errorf("spot target %d, want %d", got, tc.want)
			}
		})
	}
}

// Capacity asked for held pause pods during a burst stays asked for after
// the burst's pods are bound and the gate is lifted: the pause pods, now
// reported unschedulable, wait for it instead of asking twice.
func TestControllerKeepsHeldHeadroomRequestAfterTheBurst(t *testing.T) {
	burst := pendingPod("1", "1Gi", nominated)
	pause := []*corev1.Pod{pendingPod("3", "1Gi", held), pendingPod("3", "1Gi", held)}
	p, fp, _ := newTest(t, group("spot", provider.Spot, 10))
	// A pod below the priority cutoff keeps every pass going to the
	// provisioner, as other pending pods of a busy cluster do.
	other := pendingPod("1", "1Gi", func(p *corev1.Pod) { p.Spec.Priority = ptr.To[int32](-100) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, cs, factory := syncedController(ctx, t, p, burst, pause[0], pause[1], other)
	pods := factory.Core().V1().Pods().Informer().GetStore()
	update := func(pod *corev1.Pod) {
		t.Helper()
		if _, err := cs.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			if obj, ok, _ := pods.GetByKey(pod.Namespace + "/" + pod.Name); ok &&
				obj.(*corev1.Pod).Spec.NodeName == pod.Spec.NodeName && len(obj.(*corev1.Pod).Spec.SchedulingGates) == len(pod.Spec.SchedulingGates) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the cache never saw the update of %s", pod.Name)
	}
	pass := func(want int, when string) {
		t.Helper()
		if _, err := c.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if got := target(t, fp, "spot"); got != want {
			t.Errorf("%s: spot target %d, want %d", when, got, want)
		}
	}
	pass(2, "during the burst")
	bound := burst.DeepCopy()
	bound.Spec.NodeName, bound.Status.NominatedNodeName = "n1", ""
	update(bound)
	pass(2, "burst bound, pause pods still gated")
	for _, pod := range pause {
		if _, ok := p.requested[pod.UID]; !ok {
			t.Errorf("the request for held pause pod %s was dropped while it was still gated", pod.Name)
		}
	}
	for _, pod := range pause {
		ungated := pod.DeepCopy()
		ungated.Spec.SchedulingGates = nil
		ungated.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.NewTime(t0)}}
		update(ungated)
	}
	pass(2, "gate lifted, pause pods unschedulable")
}

// syncedController returns a controller over a fake clientset holding
// pods, reading them from a started, synced shared factory; ctx stops it.
func syncedController(ctx context.Context, t *testing.T, p *Provisioner, pods ...*corev1.Pod) (*Controller, *k8sfake.Clientset, informers.SharedInformerFactory) {
	t.Helper()
	return syncedControllerOf(ctx, t, p, true, pods...)
}

// syncedControllerOf is syncedController with the pods read from the
// shared factory (sharedPods) or from the controller's own informers.
func syncedControllerOf(ctx context.Context, t *testing.T, p *Provisioner, sharedPods bool, pods ...*corev1.Pod) (*Controller, *k8sfake.Clientset, informers.SharedInformerFactory) {
	t.Helper()
	objs := make([]runtime.Object, len(pods))
	for i, pod := range pods {
		objs[i] = pod
	}
	cs := k8sfake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(agentcache.CacheTransform))
	c, err := newController(p, cs, factory, sharedPods)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Start(ctx, ctx) {
		t.Fatal("the controller's own caches did not sync")
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return c, cs, factory
}

// pauseSet is a pause ReplicaSet of the overprovisioner with replicas
// 3-CPU pause pods; gated: its pods start held by HeadroomGate (burst
// release on).
func pauseSet(replicas int32, gated bool) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "overprovisioning-cluster-1", Namespace: "bosun-system", UID: "uid-pause-rs",
			Labels: map[string]string{agentapi.LabelManaged: "cluster"}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{agentapi.LabelManaged: "cluster"}},
				Spec: corev1.PodSpec{PriorityClassName: agentapi.PriorityClassName, Containers: []corev1.Container{{Name: "pause",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}},
			},
		},
	}
	if gated {
		rs.Spec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: HeadroomGate}}
	}
	return rs
}

// pauseOf makes a pod of the pause ReplicaSet rs.
func pauseOf(rs *appsv1.ReplicaSet) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Namespace, p.Labels = rs.Namespace, rs.Spec.Template.Labels
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
		p.Spec.PriorityClassName, p.Spec.Priority = agentapi.PriorityClassName, ptr.To(agentapi.Priority)
	}
}

// Issue 17 (L12): the pause pods a burst release deleted ask for their
// capacity the moment they are gone, before the controller-manager
// re-creates them (at its own API rate, beside the burst's pods): the
// pause ReplicaSet's missing pods count as held headroom while the burst
// waits. Once re-created, the pause pods wait for the capacity asked for
// their predecessors instead of asking again; without a burst, or with
// burst release off (pause pods not gated), missing pause pods ask for
// nothing (the scheduler reports the re-created ones as usual).
func TestControllerAsksForMissingHeadroomDuringABurst(t *testing.T) {
	bound := func(p *corev1.Pod) {
		p.Spec.NodeName, p.Status.Conditions, p.Status.Phase = "n1", nil, corev1.PodRunning
	}
	for _, tc := range []struct {
		name  string
		gated bool
		burst bool
		want  int
	}{
		{"burst waiting", true, true, 2},
		{"no burst", true, false, 0},
		{"burst release off", false, true, 0},
	} {
		for _, sharedPods := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/shared pods %v", tc.name, sharedPods), func(t *testing.T) {
				p, fp, _ := newTest(t, group("spot", provider.Spot, 10))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				rs := pauseSet(3, tc.gated)
				pods := []*corev1.Pod{pendingPod("3", "1Gi", pauseOf(rs), bound)} // 1 of 3 left after the release
				if tc.burst {
					pods = append(pods, pendingPod("1", "1Gi", nominated))
				}
				c, cs, _ := syncedControllerOf(ctx, t, p, sharedPods, pods...)
				if _, err := cs.AppsV1().ReplicaSets(rs.Namespace).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, func() bool { sets, _ := c.pauseSets.List(labels.Everything()); return len(sets) == 1 })
				if _, err := c.Pass(ctx); err != nil {
					t.Fatal(err)
				}
				// Two 3-CPU pause pods need two m5.xlarge nodes (4 CPUs each).
				if got := target(t, fp, "spot"); got != tc.want {
					t.Fatalf("spot target %d, want %d", got, tc.want)
				}
				if !tc.burst || !tc.gated {
					return
				}
				booting(t, fp, "spot") // nodes take longer to boot than pods to be re-created
				// The controller-manager re-creates the two, held by the gate.
				for range 2 {
					pod := pendingPod("3", "1Gi", pauseOf(rs), held)
					if _, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				waitUntil(t, func() bool { pods, _ := c.pausePods.GetIndexer().ByIndex(indexPause, ""); return len(pods) == 3 })
				waitUntil(t, func() bool { return len(c.missingHeadroom()) == 0 })
				if _, err := c.Pass(ctx); err != nil {
					t.Fatal(err)
				}
				if got := target(t, fp, "spot"); got != 2 {
					t.Errorf("after the pause pods were re-created: spot target %d, want still 2", got)
				}
			})
		}
	}
}

// Issue 17 (L12): a burst's pods may all run before the provisioner's
// next pass (a stalled pass; the burst landed at once), so no burst waits
// when it looks. The pause pods a release deleted, or the scheduler
// preempted, still gave their room away: as many of their replacements as
// were displaced within displacedTTL ask for capacity, missing or
// re-created and held, and once each. Pause pods evicted by a drain ask
// for nothing (the scheduler may place their replacements on free room),
// nor do those displaced longer ago than the TTL.
func TestControllerAsksForDisplacedHeadroomAfterTheBurstRan(t *testing.T) {
	bound := func(p *corev1.Pod) {
		p.Spec.NodeName, p.Status.Conditions, p.Status.Phase = "n1", nil, corev1.PodRunning
	}
	for _, tc := range []struct {
		name   string
		reason string // DisruptionTarget reason before the deletion, "" for none
		wait   time.Duration
		want   int
	}{
		{"released", "", 0, 2},
		{"preempted by the scheduler", corev1.PodReasonPreemptionByScheduler, 0, 2},
		{"evicted by a drain", "EvictionByEvictionAPI", 0, 0},
		{"released, past the TTL", "", displacedTTL, 0},
	} {
		for _, sharedPods := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/shared pods %v", tc.name, sharedPods), func(t *testing.T) {
				p, fp, clk := newTest(t, group("spot", provider.Spot, 10))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				rs := pauseSet(3, true)
				pods := []*corev1.Pod{pendingPod("3", "1Gi", pauseOf(rs), bound), pendingPod("3", "1Gi", pauseOf(rs), bound), pendingPod("3", "1Gi", pauseOf(rs), bound)}
				// The burst's pod runs already.
				pods = append(pods, pendingPod("1", "1Gi", created(t0), bound))
				c, cs, _ := syncedControllerOf(ctx, t, p, sharedPods, pods...)
				if _, err := cs.AppsV1().ReplicaSets(rs.Namespace).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, func() bool { sets, _ := c.pauseSets.List(labels.Everything()); return len(sets) == 1 })
				for _, pod := range pods[:2] {
					if tc.reason != "" {
						pod = pod.DeepCopy()
						pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: tc.reason}}
						if _, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
							t.Fatal(err)
						}
						waitUntil(t, func() bool {
							obj, ok, _ := c.pausePods.GetStore().Get(pod)
							return ok && len(obj.(*corev1.Pod).Status.Conditions) == 1
						})
					}
					if err := cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				waitUntil(t, func() bool { return len(c.missingHeadroom()) == 2 })
				clk.Step(tc.wait)
				if _, err := c.Pass(ctx); err != nil {
					t.Fatal(err)
				}
				// Two 3-CPU pause pods need two m5.xlarge nodes (4 CPUs each).
				if got := target(t, fp, "spot"); got != tc.want {
					t.Fatalf("spot target %d, want %d", got, tc.want)
				}
				if tc.want == 0 {
					return
				}
				booting(t, fp, "spot")
				// One is re-created, held by the gate: it waits for the
				// capacity asked for its predecessor.
				pod := pendingPod("3", "1Gi", pauseOf(rs), held)
				if _, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, func() bool { return len(c.missingHeadroom()) == 1 })
				clk.Step(time.Second)
				if _, err := c.Pass(ctx); err != nil {
					t.Fatal(err)
				}
				if got := target(t, fp, "spot"); got != 2 {
					t.Errorf("after one pause pod was re-created: spot target %d, want still 2", got)
				}
			})
		}
	}
}

// Deleting a pause pod kicks an early pass: it may leave headroom to
// re-create.
func TestControllerKickedWhenAPausePodGoes(t *testing.T) {
	p, _, _ := newTest(t, group("spot", provider.Spot, 10))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs := pauseSet(1, true)
	pause := pendingPod("3", "1Gi", pauseOf(rs), func(p *corev1.Pod) { p.Spec.NodeName, p.Status.Conditions = "n1", nil })
	c, cs, _ := syncedController(ctx, t, p, pause)
	var kicks atomic.Int32
	if err := c.OnChange(func() { kicks.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(pause.Namespace).Delete(ctx, pause.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return kicks.Load() > 0 })
}

// booting turns the group's instances back to Pending (the fake launches
// them Running).
func booting(t *testing.T, fp *fake.Provider, group string) {
	t.Helper()
	ins, err := fp.Instances(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		fp.SetState(group, in.ID, provider.Pending)
	}
}

// waitUntil polls cond for up to 5 s (informer handlers run apart from the
// test).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}
