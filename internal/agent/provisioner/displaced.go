package provisioner

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// displacedTTL is how long a displaced pause pod keeps its replacement
// counted as demand: long enough for the controller-manager to re-create
// a burst's worth of pause pods at its API rate (200 took 6 s) and for the
// gate to be lifted, short enough that a later scale-up of the headroom,
// which may fit on the nodes there are, is the scheduler's to judge.
const displacedTTL = 30 * time.Second

// Displaced reports a pause pod whose deletion took its room for another
// pod: a bound pause pod deleted by a burst release (a plain delete) or
// preempted by the scheduler (DisruptionTarget PreemptionByScheduler).
// One evicted by a drain, deleted by the taint manager or garbage-collected
// with its node (other DisruptionTarget reasons) is not: its node is
// going, and the scheduler may well place its replacement on another
// node's free room, so asking for capacity before it tried would buy a
// node the scale-down removes again.
func Displaced(pod *corev1.Pod) bool {
	if !isPause(pod) || pod.Spec.NodeName == "" {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return c.Reason == corev1.PodReasonPreemptionByScheduler
		}
	}
	return true
}

// displacedHeadroom remembers, per pause ReplicaSet, when its pause pods
// were displaced (Displaced), for displacedTTL: their replacements need
// new capacity whether or not a burst's pod still waits when the
// provisioner next looks (L12, issue 17). It lives in memory only: an
// agent restarted within the TTL leaves the replacements to the
// scheduler's verdict, as before the release, which costs time, not
// capacity.
type displacedHeadroom struct {
	mu sync.Mutex
	// pods maps a displaced pod's UID to its ReplicaSet and when it was
	// seen going (a graceful deletion is seen twice: marked, then gone).
	pods map[types.UID]displacement
}

type displacement struct {
	set types.UID
	at  time.Time
}

func newDisplacedHeadroom() *displacedHeadroom {
	return &displacedHeadroom{pods: map[types.UID]displacement{}}
}

// record notes pod as displaced at now, if it is (Displaced) and a
// ReplicaSet owns it, and forgets displacements older than displacedTTL
// (so the record stays small even if no pass asks for the counts).
func (d *displacedHeadroom) record(pod *corev1.Pod, now time.Time) {
	o := metav1.GetControllerOf(pod)
	if o == nil || o.Kind != "ReplicaSet" || !Displaced(pod) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prune(now)
	if _, ok := d.pods[pod.UID]; !ok {
		d.pods[pod.UID] = displacement{set: o.UID, at: now}
	}
}

// counts returns, per ReplicaSet UID, how many of its pause pods were
// displaced within displacedTTL of now.
func (d *displacedHeadroom) counts(now time.Time) map[types.UID]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prune(now)
	out := map[types.UID]int{}
	for _, x := range d.pods {
		out[x.set]++
	}
	return out
}

// prune forgets displacements older than displacedTTL; d.mu is held.
func (d *displacedHeadroom) prune(now time.Time) {
	for uid, x := range d.pods {
		if now.Sub(x.at) >= displacedTTL {
			delete(d.pods, uid)
		}
	}
}
