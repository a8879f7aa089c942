package console

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// Live is true when YAML is the object as the API server has it now.
	Live bool `json:"live"`
	// Cached is true when YAML is the whole object from the watch cache
	// (Nodes and Namespaces), as of the last watch event; YAMLNote says
	// what the cache leaves out. When neither is true, YAML is the cached
	// summary and YAMLNote says why.
	Cached   bool   `json:"cached,omitempty"`
	YAMLNote string `json:"yamlNote,omitempty"`
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

// Detail returns an object's detail: relations and events from the cache;
// YAML from the cache for Nodes and Namespaces (kept whole), fetched live
// from the API server for the other kinds (the cache keeps summaries
// only). When the cluster is down, or for ConfigMaps and Secrets (never
// read), the YAML is the cached summary instead. With impersonation on,
// the user must be allowed to list the kind in the namespace
// (SubjectAccessReview) for any detail, and live reads are made as the
// user.
func (c *Console) Detail(ctx context.Context, clusterName, kind, namespace, name string) (*Detail, error) {
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
	cd, ok := cl.object(k, namespace, name)
	if !ok {
		return nil, fmt.Errorf("%s %s/%s in %s: %w", k.Name, namespace, name, clusterName, ErrNotFound)
	}
	it := cd.Item
	if len(c.visible(ctx, cl, []*Item{it})) == 0 {
		return nil, fmt.Errorf("%s %s/%s: the user may not list %s here: %w", k.Name, namespace, name, k.Plural, errForbidden)
	}
	d := &Detail{Item: it, Stale: cl.status().State == StateDown}
	if err := cl.fillYAML(ctx, k, cd, d); err != nil {
		return nil, err
	}
	d.Events = cl.events(it)
	// Every cached item but events is a candidate relation: a scan of
	// the display-ordered lists, allocating nothing per item.
	for other := range cl.relationCandidates() {
		if other.Kind == it.Kind && other.Namespace == it.Namespace && other.Name == it.Name {
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
	d.Owners, d.Owned, d.NodePods = c.visible(ctx, cl, d.Owners), c.visible(ctx, cl, d.Owned), c.visible(ctx, cl, d.NodePods)
	if d.Node != nil && len(c.visible(ctx, cl, []*Item{d.Node})) == 0 {
		d.Node = nil
	}
	sortItems(d.Owners)
	sortItems(d.Owned)
	sortItems(d.NodePods)
	return d, nil
}

// relationCandidates yields every cached item but events, in Kinds order.
func (c *cluster) relationCandidates() iter.Seq[*Item] {
	return func(yield func(*Item) bool) {
		for _, k := range Kinds {
			if k.Name == "Event" {
				continue
			}
			for _, it := range c.ordered(k.Name) {
				if !yield(it) {
					return
				}
			}
		}
	}
}

// events returns the events about it, newest first.
func (c *cluster) events(it *Item) []EventSummary {
	var found []*eventFacts
	for _, cd := range c.list(Kinds[kindOrder["Event"]]) {
		ev := cd.Event
		if ev == nil || ev.Subject.Name != it.Name || ev.Subject.Kind != it.Kind || ev.Subject.Namespace != it.Namespace {
			continue
		}
		found = append(found, ev)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[j].At.Before(&found[i].At) })
	out := make([]EventSummary, len(found))
	for i, f := range found {
		out[i] = f.Summary
	}
	return out
}

// fillYAML sets d.YAML: the object from the watch cache when the cache
// keeps it whole, else the live object when it can be read, else the
// cached summary with a note saying why.
func (c *cluster) fillYAML(ctx context.Context, k Kind, cd *cached, d *Detail) error {
	it := d.Item
	if obj := cd.whole(); obj != nil {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("converting %s %s, %w", k.Name, it.Name, err)
		}
		y, err := renderYAML(k, m)
		if err != nil {
			return err
		}
		d.YAML, d.Cached, d.YAMLNote = y, true, cachedNote(k, d.Stale)
		return nil
	}
	if !k.MetadataOnly && c.liveDyn != nil && !d.Stale {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		dyn, err := c.live(ctx)
		if err != nil {
			return err
		}
		u, err := dyn.Resource(k.GVR).Namespace(it.Namespace).Get(ctx, it.Name, metav1.GetOptions{})
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("reading %s %s/%s, %w", k.Name, it.Namespace, it.Name, err)
		}
		if err == nil {
			y, err := renderYAML(k, u.UnstructuredContent())
			if err != nil {
				return err
			}
			d.YAML, d.Live = y, true
			return nil
		}
		d.YAMLNote = fmt.Sprintf("Could not read the live object (%v); showing the cached summary.", err)
	}
	if d.Stale {
		d.YAMLNote = "The cluster is down; showing the cached summary."
	}
	y, err := renderYAML(k, summaryObject(k, it))
	if err != nil {
		return err
	}
	d.YAML = y
	return nil
}

// cachedNote says where a whole object from the watch cache comes from
// and what the cache leaves out of it (see trim).
func cachedNote(k Kind, stale bool) string {
	note := "From the console's watch cache, as of the last watch event (not read from the API server now)."
	if stale {
		note = "The cluster is down; this is the last known object, from the console's watch cache."
	}
	if k.Name == "Node" {
		note += " status.images, the node's image list, is not kept."
	}
	return note
}

// summaryObject is an object's cached summary in the shape of an object.
func summaryObject(k Kind, it *Item) map[string]any {
	md := map[string]any{"name": it.Name, "uid": string(it.UID), "creationTimestamp": it.Created.UTC().Format(time.RFC3339)}
	if it.Namespace != "" {
		md["namespace"] = it.Namespace
	}
	if len(it.Labels) > 0 {
		md["labels"] = it.Labels
	}
	if it.Owner != "" {
		md["controller"] = it.Owner
	}
	summary := map[string]any{}
	for key, v := range map[string]string{"status": it.Status, "ready": it.Ready, "node": it.Node} {
		if v != "" {
			summary[key] = v
		}
	}
	if len(it.Images) > 0 {
		summary["images"] = it.Images
	}
	obj := map[string]any{"metadata": md}
	if len(summary) > 0 {
		obj["summary"] = summary
	}
	return obj
}

// renderYAML renders an object after redact (no managed fields, no
// last-applied-configuration, no data of any Secret or ConfigMap, judged by
// the object's own kind, then by k), with its apiVersion and kind set from
// k where it has none, as a cached summary has not.
func renderYAML(k Kind, m map[string]any) (string, error) {
	redact(m)
	if _, ok := m["kind"]; !ok {
		m["apiVersion"], m["kind"] = k.APIVersion(), k.Name
	}
	if holdsData(k.Name) {
		dropData(m)
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
