package console

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kfake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// sortOrders are every order a search takes, with an unknown one (the
// default).
var sortOrders = []string{"", "name", "namespace", "kind", "status", "node", "restarts", "age", "-age", "bogus"}

// oldSortItems is SortItems as it was before results were selected with a
// heap: a full sort in the default order, then a stable sort by the order.
func oldSortItems(items []*Item, order string) {
	sortItems(items)
	less := orderLess(order)
	if less == nil {
		return
	}
	sort.SliceStable(items, func(i, j int) bool { return less(items[i], items[j]) })
}

// referenceSearch is SearchFor as it was: every item of the informers'
// stores (or the label index's candidates) matched, all matches sorted,
// then cut to limit.
func referenceSearch(c *Console, q Query, limit int, order string) Result {
	res := Result{Query: q.Raw}
	for _, cl := range c.clusters {
		if !anyEqual(q.Clusters, cl.src.Name, false) {
			continue
		}
		st := cl.status()
		var items []*Item
		if cands, ok := cl.candidates(q); ok {
			for _, it := range cands {
				if oldMatches(q, it) {
					items = append(items, it)
				}
			}
		} else {
			for _, k := range Kinds {
				if !anyEqual(q.Kinds, k.Name, true) || (len(q.Not["kind"]) > 0 && matchesFilter("kind", q.Not["kind"], &Item{Kind: k.Name})) {
					continue
				}
				for _, o := range cl.informers[k.Name].GetStore().List() {
					if cd, ok := o.(*cached); ok && oldMatches(q, cd.Item) {
						items = append(items, cd.Item)
					}
				}
			}
		}
		if len(items) == 0 && st.State == StateReady {
			continue
		}
		oldSortItems(items, order)
		g := ClusterGroup{Cluster: st, Stale: st.State == StateDown, Total: len(items)}
		if limit > 0 && len(items) > limit {
			items = items[:limit]
		}
		g.Items = items
		res.Total += g.Total
		res.Shown += len(items)
		res.Groups = append(res.Groups, g)
	}
	return res
}

// randomItems are items with few distinct values per field, so every
// order has many ties for the default order to break.
func randomItems(r *rand.Rand, n int) []*Item {
	kinds := []string{"Pod", "Node", "Deployment", "Service", "Event"}
	var out []*Item
	seen := map[string]bool{}
	for len(out) < n {
		it := &Item{
			Cluster: fmt.Sprintf("c%d", r.Intn(3)), Kind: kinds[r.Intn(len(kinds))],
			Namespace: fmt.Sprintf("ns-%d", r.Intn(4)), Name: fmt.Sprintf("n-%d", r.Intn(n)),
			Status: []string{"Running", "Pending", "Ready"}[r.Intn(3)], Node: fmt.Sprintf("node-%d", r.Intn(3)),
			Restarts: int32(r.Intn(3)), Created: t0.Add(time.Duration(r.Intn(5)) * time.Minute),
		}
		if it.Kind == "Node" {
			it.Namespace = ""
		}
		if k := it.Cluster + "/" + it.Kind + "/" + it.Namespace + "/" + it.Name; !seen[k] {
			seen[k] = true
			out = append(out, it)
		}
	}
	return out
}

// firstItems picks the same items in the same order as sorting everything
// the old way and cutting, for every order and limit.
func TestFirstItemsMatchesFullSort(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for round := 0; round < 20; round++ {
		all := randomItems(r, 1+r.Intn(300))
		for _, order := range sortOrders {
			for _, limit := range []int{0, 1, 5, 50, 299, 1000} {
				want := slices.Clone(all)
				oldSortItems(want, order)
				if limit > 0 && len(want) > limit {
					want = want[:limit]
				}
				in := slices.Clone(all)
				sortItems(in) // firstItems is given matches in the default order
				got := firstItems(in, orderLess(order), limit)
				if !slices.Equal(got, want) {
					t.Fatalf("round %d, order %q, limit %d: got %v, want %v", round, order, limit, names(got), names(want))
				}
				sorted := slices.Clone(all)
				SortItems(sorted, order, t0)
				full := slices.Clone(all)
				oldSortItems(full, order)
				if !slices.Equal(sorted, full) {
					t.Fatalf("SortItems, order %q: got %v, want %v", order, names(sorted), names(full))
				}
			}
		}
	}
}

// orderedItems merges adds, updates and deletes into the same sorted list
// as sorting the live set, whenever it is read.
func TestOrderedItemsMerge(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	var o orderedItems
	live := map[orderedKey]*Item{}
	for step := 0; step < 20000; step++ {
		k := orderedKey{fmt.Sprintf("ns-%d", r.Intn(5)), fmt.Sprintf("n-%d", r.Intn(400))}
		it := &Item{Kind: "Pod", Namespace: k.namespace, Name: k.name, Restarts: int32(step)}
		if r.Intn(3) == 0 {
			if old, ok := live[k]; ok {
				o.remove(old)
				delete(live, k)
			}
		} else {
			o.put(it)
			live[k] = it
		}
		if r.Intn(50) == 0 || step == 19999 {
			var want []*Item
			for _, it := range live {
				want = append(want, it)
			}
			slices.SortFunc(want, compareInKind)
			if got := o.merged(); !slices.Equal(got, want) {
				t.Fatalf("step %d: %d items merged, want %d", step, len(got), len(want))
			}
		}
	}
}

// Search returns the same result as the old full sort, for random
// clusters, queries, orders and limits, and again after objects change.
func TestSearchMatchesReference(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	var srcs []ClusterSource
	var clients []*kfake.Clientset
	for ci := 0; ci < 3; ci++ {
		var objs []runtime.Object
		for i := 0; i < 6; i++ {
			objs = append(objs, readyNode(fmt.Sprintf("node-%d", i), map[string]string{"pool": fmt.Sprintf("p%d", i%2)}, i%3 != 0))
		}
		for i := 0; i < 400; i++ {
			objs = append(objs, randomPod(r, i))
		}
		for i := 0; i < 30; i++ {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", r.Intn(4)), Name: fmt.Sprintf("web-%d", i),
				Labels: map[string]string{"app": fmt.Sprintf("web-%d", i%5)}, CreationTimestamp: metav1.NewTime(t0.Add(-time.Duration(r.Intn(5)) * time.Hour))}}
			objs = append(objs, d)
		}
		src := fakeCluster(t, fmt.Sprintf("c%d", ci), objs...)
		clients = append(clients, src.Client.(*kfake.Clientset))
		srcs = append(srcs, src)
	}
	con, _ := startFake(t, clocktesting.NewFakeClock(t0), srcs...)
	queries := []string{"", "kind:pod", "app=web-3", "app in (web-1,web-2) kind:pod", "web", "pod-1", "-status:Pending kind:pod",
		"status:Running,CrashLoopBackOff", "ns:ns-2 team=t1", "node:node-1", "-kind:pod", "cluster:c1 kind:deploy", "nothing-matches"}
	compare := func(when string) {
		t.Helper()
		for _, qs := range queries {
			q, err := ParseQuery(qs)
			if err != nil {
				t.Fatal(err)
			}
			for _, order := range sortOrders {
				for _, limit := range []int{0, 1, 7, 500} {
					var got, want Result
					// The ordered lists follow the informers' event
					// handlers, which may lag the stores for a moment.
					for deadline := time.Now().Add(10 * time.Second); ; {
						got, want = con.Search(q, limit, order), referenceSearch(con, q, limit, order)
						got.TookMS = 0
						if reflect.DeepEqual(got, want) || time.Now().After(deadline) {
							break
						}
						time.Sleep(10 * time.Millisecond)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s: query %q, order %q, limit %d: total %d, shown %d %v; want total %d, shown %d %v",
							when, qs, order, limit, got.Total, got.Shown, names(got.Items()), want.Total, want.Shown, names(want.Items()))
					}
					if b, ok := appendResultJSON(nil, got); !ok || !bytes.Equal(b, encodingJSON(t, want)) {
						t.Fatalf("%s: query %q, order %q, limit %d: JSON differs from encoding/json's", when, qs, order, limit)
					}
				}
			}
		}
	}
	compare("after sync")
	ctx := context.Background()
	for ci, cs := range clients {
		for i := 0; i < 40; i++ {
			p := randomPod(r, r.Intn(400))
			if _, err := cs.CoreV1().Pods(p.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
				// The random pod may live in another namespace: create it.
				if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					t.Fatalf("cluster %d: %v", ci, err)
				}
			}
		}
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items[:50] {
			if err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare("after changes")
}

func randomPod(r *rand.Rand, i int) *corev1.Pod {
	p := pod(fmt.Sprintf("ns-%d", r.Intn(4)), fmt.Sprintf("pod-%d", i), fmt.Sprintf("node-%d", r.Intn(6)), "100m", "64Mi",
		map[string]string{"app": fmt.Sprintf("web-%d", r.Intn(5)), "team": fmt.Sprintf("t%d", r.Intn(3))})
	p.Spec.Containers[0].Image = []string{"ghcr.io/acme/web:1.0", "ghcr.io/acme/api:2.1"}[r.Intn(2)]
	p.Status.Phase = []corev1.PodPhase{corev1.PodRunning, corev1.PodPending, corev1.PodSucceeded}[r.Intn(3)]
	if r.Intn(4) == 0 {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", RestartCount: int32(r.Intn(3)),
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	}
	p.CreationTimestamp = metav1.NewTime(t0.Add(-time.Duration(r.Intn(4)) * time.Minute))
	return p
}

// oldMatches is Query.Matches as it was before queries were prepared
// once per search.
func oldMatches(q Query, it *Item) bool {
	if !anyEqual(q.Clusters, it.Cluster, false) || !anyEqual(q.Namespaces, it.Namespace, false) ||
		!anyEqual(q.Kinds, it.Kind, true) || !anyEqual(q.Statuses, it.Status, true) ||
		!anyEqual(q.Nodes, it.Node, false) || !ownerMatches(q.Owners, it.Owner) {
		return false
	}
	for name, vals := range q.Not {
		if len(vals) > 0 && matchesFilter(name, vals, it) {
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

// The prepared matcher agrees with the old Matches on every filter and
// negation.
func TestMatcherMatchesOldMatches(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	queries := []string{"", "web", "WEB shop", "kind:pod", "k:po,deploy", "-kind:pods", "-kind:Pod,svc", "-k:nonsense", "status:running",
		"-status:Pending,Ready", "s:SchedulingDisabled", "-s:schedulingdisabled", "ns:shop,_all", "-ns:kube-system", "cluster:a", "-cluster:b,c",
		"node:n1", "-node:n2", "owner:ReplicaSet/web-1", "owner:web-1", "-owner:rs/web-1", "-owner:web-2", "app=web", "app!=web team in (a,b)",
		"label:app", "-status:Pending kind:pod web", "tier notin (db)"}
	for _, qs := range queries {
		q, err := ParseQuery(qs)
		if err != nil {
			t.Fatalf("%q: %v", qs, err)
		}
		m := q.matcher()
		for i := 0; i < 500; i++ {
			it := &Item{Cluster: []string{"a", "b", "c"}[r.Intn(3)], Kind: []string{"Pod", "Deployment", "Service", "Node"}[r.Intn(4)],
				Namespace: []string{"shop", "kube-system", ""}[r.Intn(3)], Name: []string{"web-1", "web-2", "db"}[r.Intn(3)],
				Status: []string{"Running", "Pending", "Ready", "Ready,SchedulingDisabled"}[r.Intn(4)], Node: []string{"", "n1", "n2"}[r.Intn(3)],
				Owner:  []string{"", "ReplicaSet/web-1", "Deployment/web-2"}[r.Intn(3)],
				Labels: map[string]string{"app": []string{"web", "db"}[r.Intn(2)], "team": []string{"a", "b", "c"}[r.Intn(3)]}}
			if r.Intn(2) == 0 {
				it.Labels["tier"] = "db"
			}
			it.text = haystack(it)
			if got, want := m.matches(it), oldMatches(q, it); got != want {
				t.Fatalf("query %q, item %+v: matches %v, old Matches %v", qs, it, got, want)
			}
		}
	}
}
