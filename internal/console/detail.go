package console

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// EventSummary is one event about an object.
type EventSummary struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Count   int32  `json:"count"`
	Last    string `json:"last"`
}

// Detail is everything the detail page shows about one object.
type Detail struct {
	Item *Item `json:"item"`
	// Stale is true when the cluster is down and this is the last known
	// state.
	Stale bool `json:"stale,omitempty"`
	// YAML is the trimmed object: no managed fields, no
	// last-applied-configuration, and for Secrets no data at all.
	YAML     string         `json:"yaml"`
	Events   []EventSummary `json:"events"`
	Owners   []*Item        `json:"owners"`
	Owned    []*Item        `json:"owned"`
	Node     *Item          `json:"node,omitempty"`
	NodePods []*Item        `json:"nodePods,omitempty"`
}

// ErrNotFound is returned for unknown clusters, kinds and objects.
var ErrNotFound = fmt.Errorf("not found")

// Detail returns an object's detail from the cache.
func (c *Console) Detail(clusterName, kind, namespace, name string) (*Detail, error) {
	cl, ok := c.cluster(clusterName)
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w", clusterName, ErrNotFound)
	}
	k, ok := LookupKind(kind)
	if !ok {
		return nil, fmt.Errorf("kind %q: %w", kind, ErrNotFound)
	}
	if !k.Namespaced {
		namespace = ""
	}
	obj, ok := cl.object(k, namespace, name)
	if !ok {
		return nil, fmt.Errorf("%s %s/%s in %s: %w", k.Name, namespace, name, clusterName, ErrNotFound)
	}
	it, ok := summarize(clusterName, k, obj)
	if !ok {
		return nil, fmt.Errorf("%s %s/%s: %w", k.Name, namespace, name, ErrNotFound)
	}
	y, err := renderYAML(k, obj)
	if err != nil {
		return nil, err
	}
	d := &Detail{Item: it, YAML: y, Stale: cl.status().State == StateDown}
	d.Events = cl.events(it)
	self := itemKey(it.Kind, it.Namespace, it.Name)
	for _, other := range cl.match(Query{}, nil) {
		if other.Kind == "Event" || itemKey(other.Kind, other.Namespace, other.Name) == self {
			continue
		}
		switch {
		case it.OwnerUID != "" && other.UID == it.OwnerUID:
			d.Owners = append(d.Owners, other)
		case it.UID != "" && other.OwnerUID == it.UID:
			d.Owned = append(d.Owned, other)
		}
		if it.Kind == "Pod" && it.Node != "" && other.Kind == "Node" && other.Name == it.Node {
			d.Node = other
		}
		if other.Kind == "Pod" && ((it.Kind == "Pod" && it.Node != "" && other.Node == it.Node) || (it.Kind == "Node" && other.Node == it.Name)) {
			d.NodePods = append(d.NodePods, other)
		}
	}
	sortItems(d.Owners)
	sortItems(d.Owned)
	sortItems(d.NodePods)
	return d, nil
}

// events returns the events about it, newest first.
func (c *cluster) events(it *Item) []EventSummary {
	type timed struct {
		at time.Time
		ev EventSummary
	}
	var found []timed
	for _, o := range c.list(Kinds[kindOrder["Event"]]) {
		ev, ok := o.(*corev1.Event)
		if !ok || ev.InvolvedObject.Name != it.Name || ev.InvolvedObject.Kind != it.Kind || ev.InvolvedObject.Namespace != it.Namespace {
			continue
		}
		last := ev.LastTimestamp.Time
		if last.IsZero() {
			last = ev.EventTime.Time
		}
		found = append(found, timed{last, EventSummary{Type: ev.Type, Reason: ev.Reason, Message: ev.Message, Count: ev.Count, Last: last.UTC().Format("2006-01-02 15:04:05")}})
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].at.After(found[j].at) })
	out := make([]EventSummary, len(found))
	for i, f := range found {
		out[i] = f.ev
	}
	return out
}

// renderYAML renders the trimmed object with its apiVersion and kind. A
// Secret is rendered from metadata only: its data is never in the cache,
// and any data or stringData field is dropped here as well.
func renderYAML(k Kind, obj runtime.Object) (string, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return "", fmt.Errorf("converting %s, %w", k.Name, err)
	}
	m["apiVersion"], m["kind"] = k.APIVersion(), k.Name
	if k.Name == "Secret" {
		delete(m, "data")
		delete(m, "stringData")
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
		if a, ok := md["annotations"].(map[string]any); ok {
			delete(a, lastApplied)
		}
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("rendering %s as YAML, %w", k.Name, err)
	}
	out := string(b)
	if k.MetadataOnly {
		out += fmt.Sprintf("# %s data is not shown: the console watches %s as metadata only.\n", k.Name, k.Plural)
	}
	return strings.TrimPrefix(out, "\n"), nil
}
