package capacity

import "sync"

// Drains runs node drains in the background, at most one per node, so a
// pass never blocks on a PodDisruptionBudget while other controllers wait.
type Drains struct {
	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
}

// NewDrains returns an empty tracker.
func NewDrains() *Drains { return &Drains{running: map[string]bool{}} }

// Start runs f for the node in the background unless one already runs.
func (d *Drains) Start(node string, f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running[node] {
		return false
	}
	d.running[node] = true
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			delete(d.running, node)
			d.mu.Unlock()
		}()
		f()
	}()
	return true
}

// Active reports whether a drain of the node runs in this process.
func (d *Drains) Active(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running[node]
}

// Count is the number of drains running.
func (d *Drains) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.running)
}

// Wait blocks until every drain started so far has ended.
func (d *Drains) Wait() { d.wg.Wait() }
