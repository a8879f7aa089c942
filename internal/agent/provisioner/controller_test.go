package provisioner

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
	"github.com/bosun-platform/bosun/internal/agent/controller"
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
			if got := len(c.own); got != map[bool]int{true: 0, false: 1}[sharedPods] {
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
