//go:build integration

package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// startConsole starts a console over one cluster of the test's control
// plane and waits for it to sync.
func startConsole(t *testing.T, opts console.Options) *console.Console {
	t.Helper()
	opts.UsageInterval = -1 // no metrics API here
	c, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	wctx, done := context.WithTimeout(ctx, 2*time.Minute)
	defer done()
	if err := c.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// Issue 18, item 5: detail pages must not queue behind the client limit
// the watch is given. The cluster's config allows 10 requests a second
// (a kubeconfig's gets 50); 100 detail pages opened at once all read the
// pod live within the detail page's 5 s deadline. Before, live reads went
// through a client with the config's limit, so the reads past the first
// ~60 could not get a turn within 5 s and showed the cached summary
// ("Could not read the live object").
func TestIntegrationDetailNotQueuedBehindWatchLimit(t *testing.T) {
	env := testenv.Get(t)
	f := fixture{client: env.Client, ns: env.Namespace(t)}
	ensureNamespace(t, env.Client, f.ns, false)
	f.pod(t, "limited", "", map[string]string{"app": "limited"})
	cfg := rest.CopyConfig(env.RESTConfig())
	cfg.QPS, cfg.Burst = 10, 10
	c := startConsole(t, console.Options{Clusters: []console.ClusterSource{{Name: "alpha", Config: cfg}}, ProbeInterval: time.Hour})
	q, _ := console.ParseQuery("limited ns:" + f.ns)
	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		return len(c.Search(q, 0, "").Items()) == 1, nil
	}, "the pod in the cache")

	const pages = 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	notLive := map[string]int{}
	for i := 0; i < pages; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := c.Detail(context.Background(), "alpha", "pods", f.ns, "limited")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				notLive[err.Error()]++
			case !d.Live:
				notLive[d.YAMLNote]++
			}
		}()
	}
	wg.Wait()
	if len(notLive) > 0 {
		t.Errorf("of %d detail pages opened at once, these were not read live: %v", pages, notLive)
	}
}

// renderLive is the YAML a detail page showed when it read every object
// live (what detail.go's renderYAML makes of the API server's answer),
// less the fields the watch cache does not keep.
func renderLive(t *testing.T, env *testenv.Env, gvr schema.GroupVersionResource, kind, name string, drop ...[]string) string {
	t.Helper()
	u, err := env.Dynamic.Resource(gvr).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := u.UnstructuredContent()
	m["apiVersion"], m["kind"] = gvr.GroupVersion().String(), kind
	md := m["metadata"].(map[string]any)
	delete(md, "managedFields")
	if a, ok := md["annotations"].(map[string]any); ok {
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
	}
	for _, path := range drop {
		parent := m
		for _, p := range path[:len(path)-1] {
			parent = parent[p].(map[string]any)
		}
		delete(parent, path[len(path)-1])
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Issue 18, item 5: a Node's and a Namespace's detail are served from the
// watch cache, and show what the live read showed, field for field, but
// the node's image list (which the note says), against a real API server.
func TestIntegrationDetailFromCacheMatchesLive(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	nodeName := "cached-" + ns
	n, err := controlplane.NewNode(controlplane.NodeSpec{Name: nodeName, CPU: "8", Memory: "32Gi", Labels: map[string]string{"pool": "spot"},
		Taints: []corev1.Taint{{Key: "dedicated", Value: "cache", Effect: corev1.TaintEffectNoSchedule}}})
	if err != nil {
		t.Fatal(err)
	}
	n.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = `{"LASTAPPLIED":1}`
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"ghcr.io/acme/big-image:1"}, SizeBytes: 1 << 30}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := env.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{}) })
	nsObj, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj.Labels["team"], nsObj.Annotations = "shop", map[string]string{"owner": "shop-team"}
	if _, err := env.Client.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	c := startConsole(t, console.Options{Clusters: []console.ClusterSource{{Name: "alpha", Config: env.RESTConfig()}}})
	for _, tt := range []struct {
		kind, name string
		gvr        schema.GroupVersionResource
		drop       [][]string
		note       string
	}{
		{"Node", nodeName, schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, [][]string{{"status", "images"}}, "status.images"},
		{"Namespace", ns, schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, nil, "watch cache"},
	} {
		want := renderLive(t, env, tt.gvr, tt.kind, tt.name, tt.drop...)
		var d *console.Detail
		// The console sees the namespace's update through its watch.
		testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
			var err error
			d, err = c.Detail(ctx, "alpha", tt.kind, "", tt.name)
			return err == nil && d.YAML == want, nil
		}, "the %s detail from the cache to be the live object", tt.kind)
		if d.Live || !d.Cached || !strings.Contains(d.YAMLNote, tt.note) {
			t.Errorf("%s: live=%v cached=%v note %q, want from the cache, the note mentioning %q", tt.kind, d.Live, d.Cached, d.YAMLNote, tt.note)
		}
		for _, s := range []string{"LASTAPPLIED", "managedFields", "big-image"} {
			if strings.Contains(d.YAML, s) {
				t.Errorf("%s YAML shows %s:\n%s", tt.kind, s, d.YAML)
			}
		}
	}
}

// With impersonation on, a detail served from the watch cache is still the
// cluster's decision: the console asks it (SubjectAccessReview) whether
// the user may list the kind, and list gives every field a get would. A
// user granted nothing, or only get on the one node, is refused; a user
// who may list nodes sees the node.
func TestIntegrationCachedDetailAuthorisedAsUser(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	nodeName := "authz-" + ns
	env.CreateNode(t, controlplane.NodeSpec{Name: nodeName})
	role := func(name string, rule rbacv1.PolicyRule, user string) []any {
		return []any{&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{rule}},
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
				Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}}
	}
	createRBAC(t, env, role("nodes-list-"+ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list"}}, "lister-"+ns)...)
	createRBAC(t, env, role("nodes-get-"+ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, ResourceNames: []string{nodeName}, Verbs: []string{"get"}}, "getter-"+ns)...)

	// The authorizer may see a binding a moment after it is created, and
	// the console keeps a denial for a minute: wait until it sees it.
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		r, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "lister-" + ns, ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Version: "v1", Resource: "nodes"}}}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed, err
	}, "the authorizer to let lister-%s list nodes", ns)
	c := startConsole(t, console.Options{Clusters: []console.ClusterSource{{Name: "alpha", Config: env.RESTConfig()}}, Impersonate: true})
	h, err := c.Handler(console.Auth{TrustedHeader: "X-Forwarded-User"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	status := func(user string) int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/clusters/alpha/nodes/"+nodeName, nil)
		req.Header.Set("X-Forwarded-User", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("lister-" + ns); got != http.StatusOK {
		t.Errorf("a user who may list nodes: node detail = %d, want 200", got)
	}
	for user, want := range map[string]int{"nobody-" + ns: http.StatusForbidden, "getter-" + ns: http.StatusForbidden} {
		if got := status(user); got != want {
			t.Errorf("%s: node detail = %d, want %d", user, got, want)
		}
	}
}
