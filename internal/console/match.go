package console

import (
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Matches reports whether the item satisfies every part of the query.
// Matching many items, prepare the query once with matcher.
func (q Query) Matches(it *Item) bool { return q.matcher().matches(it) }

// matchesFilter reports whether one named filter with vals matches it; it
// is used for negation.
func matchesFilter(name string, vals []string, it *Item) bool {
	switch name {
	case "cluster":
		return anyEqual(vals, it.Cluster, false)
	case "namespace":
		return anyEqual(vals, it.Namespace, false)
	case "kind":
		canon := make([]string, len(vals))
		for i, v := range vals {
			canon[i] = CanonicalKind(v)
		}
		return anyEqual(canon, it.Kind, true)
	case "status":
		return anyEqual(vals, it.Status, true)
	case "node":
		return anyEqual(vals, it.Node, false)
	case "owner":
		return ownerMatches(vals, it.Owner)
	}
	return false
}

// anyEqual is true when vals is empty or one of them equals s. A status
// such as "Ready,SchedulingDisabled" matches each of its parts.
func anyEqual(vals []string, s string, fold bool) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if v == s || (fold && strings.EqualFold(v, s)) {
			return true
		}
		if strings.Contains(s, ",") {
			for _, part := range strings.Split(s, ",") {
				if v == part || (fold && strings.EqualFold(v, part)) {
					return true
				}
			}
		}
	}
	return false
}

// ownerMatches accepts "Kind/name" or just "name" (any kind).
func ownerMatches(vals []string, owner string) bool {
	if len(vals) == 0 {
		return true
	}
	if owner == "" {
		return false
	}
	_, name, _ := strings.Cut(owner, "/")
	for _, v := range vals {
		if strings.Contains(v, "/") {
			k, n, _ := strings.Cut(v, "/")
			if strings.EqualFold(CanonicalKind(k), strings.SplitN(owner, "/", 2)[0]) && n == name {
				return true
			}
			continue
		}
		if v == name {
			return true
		}
	}
	return false
}

// matcher is a Query prepared for matching many items: Matches, without
// walking the map of negated filters or canonicalizing negated kinds for
// every item.
type matcher struct {
	q   Query
	not []negated
}

// negated is one negated filter with values.
type negated struct {
	name string
	vals []string
}

func (q Query) matcher() *matcher {
	m := &matcher{q: q}
	for name, vals := range q.Not {
		if len(vals) == 0 {
			continue
		}
		if name == "kind" {
			canon := make([]string, len(vals))
			for i, v := range vals {
				canon[i] = CanonicalKind(v)
			}
			vals = canon
		}
		m.not = append(m.not, negated{name: name, vals: vals})
	}
	return m
}

// matches is q.Matches(it).
func (m *matcher) matches(it *Item) bool {
	q := &m.q
	if !anyEqual(q.Clusters, it.Cluster, false) || !anyEqual(q.Namespaces, it.Namespace, false) ||
		!anyEqual(q.Kinds, it.Kind, true) || !anyEqual(q.Statuses, it.Status, true) ||
		!anyEqual(q.Nodes, it.Node, false) || !ownerMatches(q.Owners, it.Owner) {
		return false
	}
	for _, n := range m.not {
		if n.name == "kind" { // values already canonical
			if anyEqual(n.vals, it.Kind, true) {
				return false
			}
			continue
		}
		if matchesFilter(n.name, n.vals, it) {
			return false
		}
	}
	if q.Selector != nil && !q.Selector.Matches(labels.Set(it.Labels)) {
		return false
	}
	for _, t := range q.Text {
		if !strings.Contains(it.text, t) {
			return false
		}
	}
	return true
}
