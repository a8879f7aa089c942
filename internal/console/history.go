package console

import (
	"math"
	"sort"
	"sync"
)

// L38: usage is tracked over time to right-size requests. A history keeps,
// per container, a ring of usage samples covering a window (default 24 h
// at one sample a minute: 1,440 samples). A sample is two uint32 (CPU in
// millicores, memory in KiB): 8 bytes, so a container costs 8 x slots
// bytes at most (11,520 B at the defaults) plus about 200 B of key,
// workload name and bookkeeping; docs/cost.md gives the figures.

// sample is one usage reading: CPU in millicores, memory in KiB.
type sample struct{ milliCPU, memKiB uint32 }

// noSample marks a slot where the container had no reading (it was not
// running, or the metrics API left it out).
var noSample = sample{math.MaxUint32, math.MaxUint32}

func toSample(u Usage) sample {
	return sample{clampU32(math.Ceil(u.CPU * 1000)), clampU32(math.Ceil(u.MemGiB * (1 << 20)))}
}

func clampU32(v float64) uint32 {
	switch {
	case v <= 0 || math.IsNaN(v):
		return 0
	case v >= math.MaxUint32-1:
		return math.MaxUint32 - 1
	}
	return uint32(v)
}

// ContainerSample is one container's reading, with what the history needs
// to group it: its workload and its current requests.
type ContainerSample struct {
	// Key is "namespace/pod/container".
	Key string
	// Workload is "namespace/Kind/name" of the pod's top owner (the pod
	// itself when it has none); Container is the container's name.
	Workload, Container string
	Usage               Usage
	// Request is the container's request; it is remembered with the
	// latest sample, so a right-sizing row shows the current request.
	Request Usage
}

// series is one container's ring of samples. vals grows to the history's
// slots and then wraps; vals[(seq-first) % slots] holds sample seq.
type series struct {
	workload, container string
	request             sample
	first, last         uint64
	vals                []sample
}

// history is a bounded usage history of one cluster's containers.
type history struct {
	mu    sync.Mutex
	slots uint64
	// seq counts the readings taken; the window is the last slots of them.
	seq    uint64
	series map[string]*series
}

func newHistory(slots int) *history {
	return &history{slots: uint64(max(slots, 1)), series: map[string]*series{}}
}

// record stores one reading of the metrics API: every container in it
// gets a sample, every other container a gap. Containers with no sample
// left in the window are forgotten, which bounds memory by the containers
// seen in one window.
func (h *history) record(samples []ContainerSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	for _, cs := range samples {
		s, ok := h.series[cs.Key]
		if !ok || h.seq-s.last >= h.slots {
			// New, or every sample it had is out of the window.
			s = &series{first: h.seq, last: h.seq - 1}
			h.series[cs.Key] = s
		}
		s.workload, s.container, s.request = cs.Workload, cs.Container, toSample(cs.Request)
		for q := s.last + 1; q < h.seq; q++ {
			h.put(s, q, noSample)
		}
		h.put(s, h.seq, toSample(cs.Usage))
		s.last = h.seq
	}
	for key, s := range h.series {
		if h.seq-s.last >= h.slots {
			delete(h.series, key)
		}
	}
}

func (h *history) put(s *series, seq uint64, v sample) {
	i := seq - s.first
	if i < uint64(len(s.vals)) || uint64(len(s.vals)) == h.slots {
		s.vals[i%h.slots] = v
		return
	}
	if len(s.vals) == cap(s.vals) {
		// Grow as append would, but never past slots: the bound is exact.
		grown := make([]sample, len(s.vals), min(max(2*uint64(cap(s.vals)), 16), h.slots))
		copy(grown, s.vals)
		s.vals = grown
	}
	s.vals = append(s.vals, v)
}

// each calls fn with every sample of s still in the window.
func (h *history) each(s *series, fn func(sample)) {
	from := s.first
	if h.seq >= h.slots && h.seq-h.slots+1 > from {
		from = h.seq - h.slots + 1
	}
	for q := from; q <= s.last; q++ {
		if v := s.vals[(q-s.first)%h.slots]; v != noSample {
			fn(v)
		}
	}
}

// workloadUsage is the pooled window of one container of one workload.
type workloadUsage struct {
	Workload, Container string
	// Pods is how many pods (series) contributed; Samples how many
	// readings in all.
	Pods, Samples int
	// Request is the request of the most recently seen pod.
	Request Usage
	// CPU and Mem are every sample, sorted ascending (cores, GiB).
	CPU, Mem []float64
}

// byWorkload pools every container's window by workload and container
// name: the samples of all its pods, old and new, count together.
func (h *history) byWorkload() []workloadUsage {
	h.mu.Lock()
	defer h.mu.Unlock()
	type key struct{ w, c string }
	pooled := map[key]*workloadUsage{}
	latest := map[key]uint64{}
	for _, s := range h.series {
		k := key{s.workload, s.container}
		wu, ok := pooled[k]
		if !ok {
			wu = &workloadUsage{Workload: s.workload, Container: s.container}
			pooled[k] = wu
		}
		wu.Pods++
		if s.last >= latest[k] {
			latest[k] = s.last
			wu.Request = Usage{CPU: float64(s.request.milliCPU) / 1000, MemGiB: float64(s.request.memKiB) / (1 << 20)}
		}
		h.each(s, func(v sample) {
			wu.CPU = append(wu.CPU, float64(v.milliCPU)/1000)
			wu.Mem = append(wu.Mem, float64(v.memKiB)/(1<<20))
		})
	}
	out := make([]workloadUsage, 0, len(pooled))
	for _, wu := range pooled {
		wu.Samples = len(wu.CPU)
		if wu.Samples == 0 {
			continue
		}
		sort.Float64s(wu.CPU)
		sort.Float64s(wu.Mem)
		out = append(out, *wu)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Workload != out[j].Workload {
			return out[i].Workload < out[j].Workload
		}
		return out[i].Container < out[j].Container
	})
	return out
}

// size returns how many containers are tracked and how many sample slots
// they hold (for memory accounting and tests).
func (h *history) size() (containers, slots int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.series {
		containers++
		slots += cap(s.vals)
	}
	return containers, slots
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted values: the smallest value with at least p% of them at or below
// it. Of 1..20, the 95th percentile is 19 (rank ceil(0.95 x 20) = 19).
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted)) / 100)) // p x n first: 95 x 20 / 100 is exactly 19
	return sorted[min(max(rank, 1), len(sorted))-1]
}
