package console

import (
	"container/heap"
	"slices"
	"strings"
)

// orderedKey identifies an item within one kind of one cluster.
type orderedKey struct{ namespace, name string }

// orderedItems keeps one kind's items of one cluster in display order
// (namespace, then name), so that a search scanning the kind finds its
// matches already in the default order and needs no sort. Changes from
// the informer are recorded in pending and merged on the next read: a sync
// of thousands of objects costs one sort, and steady churn one linear
// merge per search. The merged slice is never modified afterwards, so a
// reader may scan it without holding the cluster's lock.
// The cluster's mu guards both fields.
type orderedItems struct {
	items []*Item
	// pending holds the changes since items was built: the new item, or
	// nil for a deleted one.
	pending map[orderedKey]*Item
}

// maxPending bounds pending when nobody searches: past it (and past the
// size of items) the changes are merged at once.
const maxPending = 4096

func (o *orderedItems) put(it *Item) { o.note(orderedKey{it.Namespace, it.Name}, it) }

func (o *orderedItems) remove(it *Item) { o.note(orderedKey{it.Namespace, it.Name}, nil) }

func (o *orderedItems) note(k orderedKey, it *Item) {
	if o.pending == nil {
		o.pending = map[orderedKey]*Item{}
	}
	o.pending[k] = it
	if len(o.pending) > maxPending && len(o.pending) > len(o.items) {
		o.merged()
	}
}

// merged applies the pending changes and returns the items in order.
func (o *orderedItems) merged() []*Item {
	if len(o.pending) == 0 {
		return o.items
	}
	var added []*Item
	for _, it := range o.pending {
		if it != nil {
			added = append(added, it)
		}
	}
	slices.SortFunc(added, compareInKind)
	out := make([]*Item, 0, len(o.items)+len(added))
	i := 0
	for _, it := range o.items {
		if _, changed := o.pending[orderedKey{it.Namespace, it.Name}]; changed {
			continue // deleted, or replaced by its entry in added
		}
		for i < len(added) && compareInKind(added[i], it) < 0 {
			out = append(out, added[i])
			i++
		}
		out = append(out, it)
	}
	out = append(out, added[i:]...)
	o.items, o.pending = out, nil
	return out
}

// compareInKind orders items of one kind of one cluster by namespace,
// then name: the default order within a kind.
func compareInKind(a, b *Item) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// defaultLess is the default order of results: cluster, kind (in Kinds
// order), namespace and name.
func defaultLess(a, b *Item) bool {
	if a.Cluster != b.Cluster {
		return a.Cluster < b.Cluster
	}
	if a.Kind != b.Kind {
		return kindOrder[a.Kind] < kindOrder[b.Kind]
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// orderLess returns the primary order of a sort option (see SortItems),
// or nil for the default order.
func orderLess(order string) func(a, b *Item) bool {
	switch order {
	case "name":
		return func(a, b *Item) bool { return a.Name < b.Name }
	case "namespace":
		return func(a, b *Item) bool { return a.Namespace < b.Namespace }
	case "kind":
		return func(a, b *Item) bool { return kindOrder[a.Kind] < kindOrder[b.Kind] }
	case "status":
		return func(a, b *Item) bool { return a.Status < b.Status }
	case "node":
		return func(a, b *Item) bool { return a.Node < b.Node }
	case "restarts":
		return func(a, b *Item) bool { return a.Restarts > b.Restarts }
	case "age":
		return func(a, b *Item) bool { return a.Created.Before(b.Created) }
	case "-age":
		return func(a, b *Item) bool { return a.Created.After(b.Created) }
	}
	return nil
}

// thenDefault orders by less, ties by the default order: what sorting by
// the default order and then stably by less gives, as one total order.
func thenDefault(less func(a, b *Item) bool) func(a, b *Item) bool {
	if less == nil {
		return defaultLess
	}
	return func(a, b *Item) bool {
		if less(a, b) {
			return true
		}
		if less(b, a) {
			return false
		}
		return defaultLess(a, b)
	}
}

// firstItems returns the first limit items (all for limit 0) of items,
// which are in the default order, in the order less then default: the
// same items, in the same order, as sorting all of them and cutting, but
// with a bounded heap instead of a sort of every match. items may be
// reordered.
func firstItems(items []*Item, less func(a, b *Item) bool, limit int) []*Item {
	if less == nil {
		if limit > 0 && len(items) > limit {
			return items[:limit]
		}
		return items
	}
	before := thenDefault(less)
	if limit <= 0 || len(items) <= limit {
		slices.SortFunc(items, func(a, b *Item) int { return lessToCompare(before, a, b) })
		return items
	}
	h := &worstFirst{before: before, items: make([]*Item, 0, limit)}
	for _, it := range items {
		switch {
		case len(h.items) < limit:
			heap.Push(h, it)
		case before(it, h.items[0]):
			h.items[0] = it
			heap.Fix(h, 0)
		}
	}
	out := h.items
	slices.SortFunc(out, func(a, b *Item) int { return lessToCompare(before, a, b) })
	return out
}

func lessToCompare(less func(a, b *Item) bool, a, b *Item) int {
	switch {
	case less(a, b):
		return -1
	case less(b, a):
		return 1
	}
	return 0
}

// worstFirst is a heap of the best items seen so far with the worst on
// top, so that it is the one a better item replaces.
type worstFirst struct {
	before func(a, b *Item) bool
	items  []*Item
}

func (h *worstFirst) Len() int           { return len(h.items) }
func (h *worstFirst) Less(i, j int) bool { return h.before(h.items[j], h.items[i]) }
func (h *worstFirst) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *worstFirst) Push(x any)         { h.items = append(h.items, x.(*Item)) }
func (h *worstFirst) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}
