package console

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  Query
		sel   string
		isErr bool
	}{
		{name: "empty query matches everything", in: "", want: Query{}},
		{name: "free text is lower-cased", in: "Web  API", want: Query{Text: []string{"web", "api"}}},
		{name: "filters with aliases and comma values", in: "kind:po,deploy ns:shop status:Pending,CrashLoopBackOff c:prod-1 node:n1 owner:ReplicaSet/web-1",
			want: Query{Kinds: []string{"Pod", "Deployment"}, Namespaces: []string{"shop"}, Statuses: []string{"Pending", "CrashLoopBackOff"},
				Clusters: []string{"prod-1"}, Nodes: []string{"n1"}, Owners: []string{"ReplicaSet/web-1"}}},
		{name: "_all is no filter", in: "cluster:_all namespace:_all kind:pods", want: Query{Kinds: []string{"Pod"}}},
		{name: "bare selector terms", in: "app=web tier!=db", sel: "app=web,tier!=db"},
		{name: "label filter", in: "l:app=web,team=shop", sel: "app=web,team=shop"},
		{name: "set-based selector keeps its spaces", in: "tier in (web, api) nginx", want: Query{Text: []string{"nginx"}}, sel: "tier in (api,web)"},
		{name: "negated filter", in: "-status:Running -ns:kube-system", want: Query{Not: map[string][]string{"status": {"Running"}, "namespace": {"kube-system"}}}},
		{name: "quoted phrase is one term", in: `"hello world" x`, want: Query{Text: []string{"hello world", "x"}}},
		{name: "unknown prefix is free text", in: "image:nginx", want: Query{Text: []string{"image:nginx"}}},
		{name: "filter without value is an error", in: "kind:", isErr: true},
		{name: "bad selector is an error", in: "=web", isErr: true},
		{name: "negated label is an error", in: "-l:app=web", isErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQuery(tt.in)
			if tt.isErr {
				if err == nil {
					t.Fatalf("ParseQuery(%q) = %+v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tt.in, err)
			}
			gotSel := ""
			if got.Selector != nil {
				gotSel = got.Selector.String()
			}
			if gotSel != tt.sel {
				t.Errorf("selector = %q, want %q", gotSel, tt.sel)
			}
			opts := []cmp.Option{cmpopts.IgnoreFields(Query{}, "Raw", "Selector"), cmpopts.EquateEmpty()}
			if diff := cmp.Diff(tt.want, got, opts...); diff != "" {
				t.Errorf("ParseQuery(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func item(cluster, kind, ns, name, status string, labels map[string]string) *Item {
	it := &Item{Cluster: cluster, Kind: kind, Namespace: ns, Name: name, Status: status, Labels: labels}
	it.text = haystack(it)
	return it
}

// L48: one search over every cluster's objects.
func TestQueryMatches(t *testing.T) {
	web := item("prod", "Pod", "shop", "web-7d9f-abc", "Running", map[string]string{"app": "web", "team": "shop"})
	web.Node, web.Owner, web.Images = "node-1", "ReplicaSet/web-7d9f", []string{"ghcr.io/acme/web:1.4"}
	web.text = haystack(web)
	pending := item("staging", "Pod", "shop", "worker-1", "Pending", map[string]string{"app": "worker"})
	cordoned := item("prod", "Node", "", "node-2", "Ready,SchedulingDisabled", nil)
	deploy := item("prod", "Deployment", "shop", "web", "Ready", map[string]string{"app": "web"})

	tests := []struct {
		query string
		want  []*Item
	}{
		{"", []*Item{web, pending, cordoned, deploy}},
		{"web", []*Item{web, deploy}},
		{"acme/web:1.4", []*Item{web}},
		{"team=shop", []*Item{web}},
		{"app in (web,worker) kind:pod", []*Item{web, pending}},
		{"status:pending", []*Item{pending}},
		{"cluster:staging", []*Item{pending}},
		{"cluster:prod,staging kind:po -status:Running", []*Item{pending}},
		{"status:SchedulingDisabled", []*Item{cordoned}},
		{"node:node-1", []*Item{web}},
		{"owner:web-7d9f", []*Item{web}},
		{"owner:rs/web-7d9f", []*Item{web}},
		{"owner:Deployment/web-7d9f", nil},
		{"ns:_all kind:deployments", []*Item{deploy}},
		{"web shop", []*Item{web, deploy}},
		{"nomatch", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			var got []*Item
			for _, it := range []*Item{web, pending, cordoned, deploy} {
				if q.Matches(it) {
					got = append(got, it)
				}
			}
			if diff := cmp.Diff(names(tt.want), names(got)); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
		})
	}
}

func names(items []*Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Cluster+"/"+it.Kind+"/"+it.Name)
	}
	return out
}

func TestSortItems(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	a := item("b", "Pod", "x", "a", "Running", nil)
	a.Created = now.Add(-time.Hour)
	b := item("a", "Deployment", "x", "b", "Ready", nil)
	b.Created = now.Add(-2 * time.Hour)
	c := item("a", "Pod", "x", "c", "Pending", nil)
	c.Created = now.Add(-time.Minute)
	for _, tt := range []struct {
		order string
		want  []string
	}{
		{"", []string{"a/Pod/c", "a/Deployment/b", "b/Pod/a"}},
		{"name", []string{"b/Pod/a", "a/Deployment/b", "a/Pod/c"}},
		{"age", []string{"a/Deployment/b", "b/Pod/a", "a/Pod/c"}},
		{"-age", []string{"a/Pod/c", "b/Pod/a", "a/Deployment/b"}},
		{"status", []string{"a/Pod/c", "a/Deployment/b", "b/Pod/a"}},
	} {
		items := []*Item{a, b, c}
		SortItems(items, tt.order, now)
		if diff := cmp.Diff(tt.want, names(items)); diff != "" {
			t.Errorf("order %q (-want +got):\n%s", tt.order, diff)
		}
	}
}
