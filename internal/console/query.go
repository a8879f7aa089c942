package console

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// All is the wildcard for clusters and namespaces in URLs and queries.
const All = "_all"

// Query is a parsed search. Every field narrows the result; an empty Query
// matches everything. Filters with several values (comma separated) match
// any of them.
type Query struct {
	// Text holds free-text terms; every term must occur (case-insensitive)
	// in the object's name, namespace, label keys or values, or images.
	Text []string
	// Clusters, Namespaces, Kinds, Statuses, Nodes and Owners are filters.
	Clusters   []string
	Namespaces []string
	Kinds      []string
	Statuses   []string
	Nodes      []string
	Owners     []string
	// Not holds negated filters ("-status:Running"), keyed like the filters.
	Not map[string][]string
	// Selector is a Kubernetes label selector (nil: everything).
	Selector labels.Selector
	// Raw is the query as typed.
	Raw string
}

// filterKeys maps the prefixes a user may type to a canonical filter name.
var filterKeys = map[string]string{
	"cluster": "cluster", "c": "cluster",
	"namespace": "namespace", "ns": "namespace", "n": "namespace",
	"kind": "kind", "k": "kind",
	"status": "status", "s": "status",
	"node":  "node",
	"owner": "owner",
	"label": "label", "l": "label",
}

// ParseQuery parses a search such as
//
//	web kind:pod status:Pending,CrashLoopBackOff app=shop -ns:kube-system
//
// Free-text terms and filters combine with AND; comma-separated filter
// values with OR. A bare term containing "=", "!=" or "in (" is a label
// selector, as is the value of "label:" / "l:". "_all" as a cluster or
// namespace value means no filter. Double quotes keep spaces in a term.
func ParseQuery(s string) (Query, error) {
	q := Query{Raw: s, Not: map[string][]string{}}
	var selectors []string
	for _, tok := range tokenize(s) {
		neg := false
		body := tok
		if strings.HasPrefix(body, "-") && len(body) > 1 {
			neg, body = true, body[1:]
		}
		if key, val, ok := strings.Cut(body, ":"); ok {
			if name, known := filterKeys[strings.ToLower(key)]; known {
				if val == "" {
					return Query{}, fmt.Errorf("filter %q has no value", tok)
				}
				if name == "label" {
					if neg {
						return Query{}, fmt.Errorf("negate a label with != or notin, not with %q", tok)
					}
					selectors = append(selectors, val)
					continue
				}
				vals := splitValues(val)
				if neg {
					q.Not[name] = append(q.Not[name], vals...)
					continue
				}
				q.addFilter(name, vals)
				continue
			}
		}
		if isSelector(tok) {
			selectors = append(selectors, tok)
			continue
		}
		q.Text = append(q.Text, strings.ToLower(tok))
	}
	if len(selectors) > 0 {
		sel, err := labels.Parse(strings.Join(selectors, ","))
		if err != nil {
			return Query{}, fmt.Errorf("parsing label selector, %w", err)
		}
		q.Selector = sel
	}
	return q, nil
}

func (q *Query) addFilter(name string, vals []string) {
	switch name {
	case "cluster":
		q.Clusters = append(q.Clusters, dropAll(vals)...)
	case "namespace":
		q.Namespaces = append(q.Namespaces, dropAll(vals)...)
	case "kind":
		for _, v := range vals {
			q.Kinds = append(q.Kinds, CanonicalKind(v))
		}
	case "status":
		q.Statuses = append(q.Statuses, vals...)
	case "node":
		q.Nodes = append(q.Nodes, vals...)
	case "owner":
		q.Owners = append(q.Owners, vals...)
	}
}

// dropAll removes the "_all" wildcard: a filter of only _all is no filter.
func dropAll(vals []string) []string {
	out := vals[:0:0]
	for _, v := range vals {
		if v != All {
			out = append(out, v)
		}
	}
	return out
}

func splitValues(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// isSelector reports whether a bare term is a label selector expression.
func isSelector(tok string) bool {
	return strings.Contains(tok, "=") || strings.Contains(tok, " in (") || strings.Contains(tok, " notin (")
}

// tokenize splits on spaces, keeping double-quoted runs together and
// keeping set-based selectors such as `tier in (web,api)` in one token.
func tokenize(s string) []string {
	var out []string
	var b strings.Builder
	inQuote, paren := false, 0
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	fields := strings.Fields(s)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		// Join "key in (a,b)" / "key notin (a,b)" into one token.
		if !inQuote && paren == 0 && i+2 < len(fields) && (fields[i+1] == "in" || fields[i+1] == "notin") && strings.HasPrefix(fields[i+2], "(") {
			tok := f + " " + fields[i+1]
			j := i + 2
			for ; j < len(fields); j++ {
				tok += " " + fields[j]
				if strings.Contains(fields[j], ")") {
					break
				}
			}
			out = append(out, tok)
			i = j
			continue
		}
		for _, r := range f {
			if r == '"' {
				inQuote = !inQuote
				continue
			}
			b.WriteRune(r)
		}
		if inQuote {
			b.WriteByte(' ')
			continue
		}
		flush()
	}
	flush()
	return out
}

// Empty reports whether the query has no terms or filters at all.
func (q Query) Empty() bool {
	return len(q.Text) == 0 && len(q.Clusters) == 0 && len(q.Namespaces) == 0 && len(q.Kinds) == 0 &&
		len(q.Statuses) == 0 && len(q.Nodes) == 0 && len(q.Owners) == 0 && len(q.Not) == 0 && q.Selector == nil
}
