package cache

import (
	"hash/maphash"
	"math/bits"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// interned holds one copy of the values cached pods and nodes repeat, for
// CacheTransform: the API decodes every string, map and slice of every
// object on its own, so 30,000 pods of a few workloads otherwise hold
// 30,000 copies of the same namespace, labels, requests and tolerations.
//
// Tables are bounded: a full one starts afresh (the objects keep what they
// hold), so values only long-gone objects used cannot pile up. Lookups
// are by a hash; on the rare collision of two different values the second
// is simply not shared.
var interned = newInterner()

// Bounds of the tables: enough for the distinct namespaces, node names,
// label sets and workloads of a large cluster.
const (
	maxInternedStrings = 1 << 16
	maxInternedValues  = 1 << 14
)

type interner struct {
	mu             sync.Mutex
	strs           map[string]string
	int32s         map[int32]*int32
	stringMaps     pool[map[string]string]
	resourceLists  pool[corev1.ResourceList]
	tolerationSets pool[[]corev1.Toleration]
	ownerSets      pool[[]metav1.OwnerReference]
	containerSets  pool[[]corev1.Container]
}

func newInterner() *interner {
	return &interner{strs: map[string]string{}, int32s: map[int32]*int32{}}
}

// pool holds one value per hash.
type pool[V any] struct{ m map[uint64]V }

// share returns the pooled value with hash h if same says it is equal to
// the one being looked up, else the one make builds (pooled unless another
// value holds the hash).
func (p *pool[V]) share(h uint64, same func(V) bool, build func() V) V {
	if v, ok := p.m[h]; ok {
		if same(v) {
			return v
		}
		return build()
	}
	if p.m == nil || len(p.m) >= maxInternedValues {
		p.m = map[uint64]V{}
	}
	v := build()
	p.m[h] = v
	return v
}

var seed = maphash.MakeSeed()

// mix folds x into the hash h.
func mix(h, x uint64) uint64 { return bits.RotateLeft64(h, 27)*0x9e3779b97f4a7c15 ^ x }

func hashString(s string) uint64 { return maphash.String(seed, s) }

// The methods below are called with mu held.

// str returns the shared copy of s.
func (in *interner) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in.strs[s]; ok {
		return v
	}
	if len(in.strs) >= maxInternedStrings {
		in.strs = map[string]string{}
	}
	in.strs[s] = s
	return s
}

// int32 returns a shared pointer to *p's value.
func (in *interner) int32(p *int32) *int32 {
	if p == nil {
		return nil
	}
	if v, ok := in.int32s[*p]; ok {
		return v
	}
	if len(in.int32s) >= maxInternedValues {
		in.int32s = map[int32]*int32{}
	}
	v := *p
	in.int32s[v] = &v
	return &v
}

// labels returns the shared copy of a label set or node selector.
func (in *interner) labels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return in.stringMap(m, func() map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[in.str(k)] = in.str(v)
		}
		return out
	})
}

// annotations returns the shared copy of m's keep keys (nil if it has
// none).
func (in *interner) annotations(m map[string]string, keep []string) map[string]string {
	var kept map[string]string
	for _, k := range keep {
		if v, ok := m[k]; ok {
			if kept == nil {
				kept = make(map[string]string, len(keep))
			}
			kept[k] = v
		}
	}
	if kept == nil {
		return nil
	}
	return in.stringMap(kept, func() map[string]string { return kept })
}

func (in *interner) stringMap(m map[string]string, build func() map[string]string) map[string]string {
	var h uint64
	for k, v := range m { // order-independent: a sum of the entries' hashes
		h += mix(hashString(k), hashString(v))
	}
	h = mix(h, uint64(len(m)))
	return in.stringMaps.share(h, func(c map[string]string) bool { return stringMapsEqual(c, m) }, build)
}

func stringMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// resources returns the shared copy of a resource list.
func (in *interner) resources(rl corev1.ResourceList) corev1.ResourceList {
	if len(rl) == 0 {
		return nil
	}
	h := hashResources(rl)
	return in.resourceLists.share(h, func(c corev1.ResourceList) bool { return resourcesEqual(c, rl) }, func() corev1.ResourceList { return rl })
}

func hashResources(rl corev1.ResourceList) uint64 {
	var h uint64
	for name, q := range rl {
		h += mix(hashString(string(name)), uint64(q.MilliValue())) ^ hashString(string(q.Format)) //nolint:gosec // G115: a hash reinterprets the bits; no arithmetic meaning
	}
	return mix(h, uint64(len(rl)))
}

// resourcesEqual: the same quantities in the same formats (so that even
// their String is the same).
func resourcesEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		r, ok := b[name]
		if !ok || q.Cmp(r) != 0 || q.Format != r.Format {
			return false
		}
	}
	return true
}

// tolerations returns the shared copy of a toleration list.
func (in *interner) tolerations(ts []corev1.Toleration) []corev1.Toleration {
	if len(ts) == 0 {
		return nil
	}
	var h uint64
	for i := range ts {
		t := &ts[i]
		h = mix(mix(mix(mix(h, hashString(t.Key)), hashString(string(t.Operator))), hashString(t.Value)), hashString(string(t.Effect)))
		if t.TolerationSeconds != nil {
			h = mix(h, uint64(*t.TolerationSeconds)) //nolint:gosec // G115: a hash reinterprets the bits
		}
	}
	same := func(c []corev1.Toleration) bool {
		if len(c) != len(ts) {
			return false
		}
		for i := range c {
			if !c[i].MatchToleration(&ts[i]) || !equalPtr(c[i].TolerationSeconds, ts[i].TolerationSeconds) {
				return false
			}
		}
		return true
	}
	return in.tolerationSets.share(h, same, func() []corev1.Toleration {
		out := make([]corev1.Toleration, len(ts))
		for i, t := range ts {
			out[i] = corev1.Toleration{Key: in.str(t.Key), Operator: corev1.TolerationOperator(in.str(string(t.Operator))),
				Value: in.str(t.Value), Effect: corev1.TaintEffect(in.str(string(t.Effect))), TolerationSeconds: t.TolerationSeconds}
		}
		return out
	})
}

// owners returns the shared copy of an owner reference list (every pod of
// a ReplicaSet has the same).
func (in *interner) owners(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return nil
	}
	var h uint64
	for i := range refs {
		r := &refs[i]
		h = mix(mix(mix(mix(h, hashString(r.APIVersion)), hashString(r.Kind)), hashString(r.Name)), hashString(string(r.UID)))
	}
	same := func(c []metav1.OwnerReference) bool {
		if len(c) != len(refs) {
			return false
		}
		for i := range c {
			a, b := &c[i], &refs[i]
			if a.APIVersion != b.APIVersion || a.Kind != b.Kind || a.Name != b.Name || a.UID != b.UID ||
				!equalPtr(a.Controller, b.Controller) || !equalPtr(a.BlockOwnerDeletion, b.BlockOwnerDeletion) {
				return false
			}
		}
		return true
	}
	return in.ownerSets.share(h, same, func() []metav1.OwnerReference {
		out := make([]metav1.OwnerReference, len(refs))
		for i, r := range refs {
			out[i] = metav1.OwnerReference{APIVersion: in.str(r.APIVersion), Kind: in.str(r.Kind), Name: in.str(r.Name), UID: r.UID,
				Controller: r.Controller, BlockOwnerDeletion: r.BlockOwnerDeletion}
		}
		return out
	})
}

// containers returns the shared copy of the containers as the caches keep
// them: name, requests and (for sidecars) restart policy.
func (in *interner) containers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	var h uint64
	for i := range cs {
		c := &cs[i]
		h = mix(mix(h, hashString(c.Name)), hashResources(c.Resources.Requests))
		if c.RestartPolicy != nil {
			h = mix(h, hashString(string(*c.RestartPolicy)))
		}
	}
	same := func(k []corev1.Container) bool {
		if len(k) != len(cs) {
			return false
		}
		for i := range k {
			if k[i].Name != cs[i].Name || !equalPtr(k[i].RestartPolicy, cs[i].RestartPolicy) ||
				!resourcesEqual(k[i].Resources.Requests, cs[i].Resources.Requests) {
				return false
			}
		}
		return true
	}
	return in.containerSets.share(h, same, func() []corev1.Container {
		out := make([]corev1.Container, len(cs))
		for i := range cs {
			c := &cs[i]
			out[i] = corev1.Container{Name: in.str(c.Name), RestartPolicy: c.RestartPolicy,
				Resources: corev1.ResourceRequirements{Requests: in.resources(c.Resources.Requests)}}
		}
		return out
	})
}

// conditions keeps the pod's PodScheduled condition while it has no node
// (the provisioner's "unschedulable" and its latency start), and its
// DisruptionTarget condition, which only a pod about to be evicted,
// preempted or garbage-collected has (the provisioner's displaced
// headroom), without messages.
func (in *interner) conditions(p *corev1.Pod) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && p.Spec.NodeName == "" || c.Type == corev1.DisruptionTarget {
			out = append(out, corev1.PodCondition{Type: corev1.PodConditionType(in.str(string(c.Type))), Status: corev1.ConditionStatus(in.str(string(c.Status))),
				Reason: in.str(c.Reason), LastTransitionTime: c.LastTransitionTime})
		}
	}
	return out
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
