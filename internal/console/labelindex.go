package console

import (
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/tools/cache"
)

// labelIndex maps "key=value" to the items carrying that label, so a
// label query (the commonest narrow query, and what kubectl -l does on
// the server) touches only its candidates instead of scanning every item.
// Items are keyed by kind, namespace and name, not by pointer: a delete
// event carries a freshly transformed copy, not the Item that was added.
type labelIndex map[string]map[string]*Item

func (ix labelIndex) add(it *Item) {
	id := itemKey(it.Kind, it.Namespace, it.Name)
	for k, v := range it.Labels {
		key := k + "=" + v
		set, ok := ix[key]
		if !ok {
			set = map[string]*Item{}
			ix[key] = set
		}
		set[id] = it
	}
}

func (ix labelIndex) remove(it *Item) {
	id := itemKey(it.Kind, it.Namespace, it.Name)
	for k, v := range it.Labels {
		key := k + "=" + v
		if set, ok := ix[key]; ok {
			delete(set, id)
			if len(set) == 0 {
				delete(ix, key)
			}
		}
	}
}

// indexHandler keeps the cluster's label index, ordered items and object
// count in step with an informer.
func (c *cluster) indexHandler() cache.ResourceEventHandlerFuncs {
	item := func(obj any) *Item {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if cd, ok := obj.(*cached); ok {
			return cd.Item
		}
		return nil
	}
	update := func(old, cur *Item) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if old != nil {
			c.labels.remove(old)
			c.order[old.Kind].remove(old)
			c.objects--
		}
		if cur != nil {
			c.labels.add(cur)
			c.order[cur.Kind].put(cur)
			c.objects++
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { update(nil, item(obj)) },
		UpdateFunc: func(old, cur any) { update(item(old), item(cur)) },
		DeleteFunc: func(obj any) { update(item(obj), nil) },
	}
}

// candidates returns the items that can match q's equality or set-based
// label requirements (the smallest such set), or ok=false when q has none
// and every item must be scanned.
func (c *cluster) candidates(q Query) (out []*Item, ok bool) {
	if q.Selector == nil {
		return nil, false
	}
	reqs, _ := q.Selector.Requirements()
	c.mu.RLock()
	defer c.mu.RUnlock()
	best := -1
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		n := 0
		for _, v := range r.Values().UnsortedList() {
			n += len(c.labels[r.Key()+"="+v])
		}
		if best >= 0 && n >= best {
			continue
		}
		best = n
		out = out[:0]
		for _, v := range r.Values().UnsortedList() {
			for _, it := range c.labels[r.Key()+"="+v] {
				out = append(out, it)
			}
		}
	}
	return out, best >= 0
}
