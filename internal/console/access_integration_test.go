//go:build integration

package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// createRBAC creates RBAC objects with the admin client and deletes them
// when the test ends.
func createRBAC(t *testing.T, env *testenv.Env, objs ...any) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch v := o.(type) {
		case *rbacv1.ClusterRole:
			_, err = env.Client.RbacV1().ClusterRoles().Create(ctx, v, metav1.CreateOptions{})
			t.Cleanup(func() { _ = env.Client.RbacV1().ClusterRoles().Delete(ctx, v.Name, metav1.DeleteOptions{}) })
		case *rbacv1.ClusterRoleBinding:
			_, err = env.Client.RbacV1().ClusterRoleBindings().Create(ctx, v, metav1.CreateOptions{})
			t.Cleanup(func() { _ = env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, v.Name, metav1.DeleteOptions{}) })
		case *rbacv1.Role:
			_, err = env.Client.RbacV1().Roles(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = env.Client.RbacV1().RoleBindings(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		default:
			t.Fatalf("createRBAC: unexpected %T", o)
		}
		if err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}
}

// The console runs as a ServiceAccount whose role leaves out ConfigMaps:
// the cluster becomes ready, ConfigMap is shown as forbidden on the fleet
// page and in the JSON API, and once the role is extended mid-test the
// console's retry (on its injected clock) starts the watch and the
// ConfigMap is found, without a restart.
func TestIntegrationForbiddenKindAppearsWhenGranted(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	sa := "system:serviceaccount:" + ns + ":console"
	var rules []rbacv1.PolicyRule
	for _, k := range console.Kinds {
		if k.Name != "ConfigMap" {
			rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{k.GVR.Group}, Resources: []string{k.GVR.Resource}, Verbs: []string{"get", "list", "watch"}})
		}
	}
	bind := func(name string) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "console", Namespace: ns}}}
	}
	base := "console-retry-" + ns
	createRBAC(t, env, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: base}, Rules: rules}, bind(base))
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "granted-later", Namespace: ns}, Data: map[string]string{"k": "v"}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := rest.CopyConfig(env.RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: sa}
	clk := clocktesting.NewFakeClock(time.Now())
	c, err := console.New(console.Options{Clusters: []console.ClusterSource{{Name: "alpha", Config: cfg}}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	c.Start(cctx)
	wctx, done := context.WithTimeout(cctx, time.Minute)
	defer done()
	if err := c.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	h, err := c.Handler(console.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	var rows []console.FleetRow
	get(t, srv.URL+"/api/fleet", &rows)
	if len(rows) != 1 || rows[0].State != console.StateReady {
		t.Fatalf("fleet = %+v, want alpha ready", rows)
	}
	if u := rows[0].Unavailable; len(u) != 1 || u[0].Kind != "ConfigMap" || u[0].Reason != console.ReasonForbidden {
		t.Fatalf("unavailable kinds = %+v, want ConfigMap forbidden", u)
	}
	if page := get(t, srv.URL+"/fleet", nil); !strings.Contains(page, "cannot list ConfigMap (forbidden)") {
		t.Errorf("fleet page does not show the forbidden kind:\n%s", page)
	}
	q, _ := console.ParseQuery("kind:cm granted-later")
	if n := len(c.Search(q, 0, "").Items()); n != 0 {
		t.Fatalf("found %d ConfigMaps while forbidden", n)
	}

	createRBAC(t, env, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: base + "-cm"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list", "watch"}}}}, bind(base+"-cm"))
	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		// The API server's authorizer may see the binding a moment after
		// it is created; each step lets the next retry run.
		clk.Step(console.DefaultKindRetryMax)
		st := c.Clusters()[0]
		return len(st.Unavailable) == 0 && len(c.Search(q, 0, "").Items()) == 1, nil
	}, "the ConfigMap to appear once granted")
	var after []console.FleetRow // a fresh slice: decoding into rows would keep its old fields
	get(t, srv.URL+"/api/fleet", &after)
	if len(after) != 1 || len(after[0].Unavailable) != 0 {
		t.Errorf("fleet after the grant = %+v, want no unavailable kinds", after)
	}
}

// With impersonation on, the user's groups go with the user: a user in a
// group bound to a Role in one namespace reads that namespace's pods (detail
// and search); the same user without the group is refused and finds
// nothing. Groups come from the proxy's groups header and from the token
// file.
func TestIntegrationImpersonationGroups(t *testing.T) {
	env := testenv.Get(t)
	f := fixture{client: env.Client, ns: env.Namespace(t)}
	ensureNamespace(t, env.Client, f.ns, false)
	f.pod(t, "grp", "", map[string]string{"app": "grp"})
	createRBAC(t, env,
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "shop-devs-read", Namespace: f.ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "shop-devs-read", Namespace: f.ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "shop-devs-read"},
			Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "shop-devs"}}})

	c, err := console.New(console.Options{Clusters: []console.ClusterSource{{Name: "alpha", Config: env.RESTConfig()}}, Impersonate: true})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(cctx)
	wctx, done := context.WithTimeout(cctx, time.Minute)
	defer done()
	if err := c.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	// One console behind a proxy, one with a token file: the two methods
	// exclude each other (issue 18 item 3).
	byHeader, err := c.Handler(console.Auth{TrustedHeader: "X-Forwarded-User", TrustedGroupsHeader: "X-Forwarded-Groups"})
	if err != nil {
		t.Fatal(err)
	}
	byToken, err := c.Handler(console.Auth{Tokens: map[string]console.User{"dana-token": {Name: "dana", Groups: []string{"shop-devs"}}}})
	if err != nil {
		t.Fatal(err)
	}
	headerSrv, tokenSrv := httptest.NewServer(byHeader), httptest.NewServer(byToken)
	t.Cleanup(headerSrv.Close)
	t.Cleanup(tokenSrv.Close)
	srvFor := func(h http.Header) *httptest.Server {
		if h.Get("Authorization") != "" {
			return tokenSrv
		}
		return headerSrv
	}
	do := func(u string, header http.Header) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	detail := "/api/clusters/alpha/namespaces/" + f.ns + "/pods/grp"
	search := "/api/search?q=" + urlq("grp ns:"+f.ns)
	found := func(header http.Header) bool {
		code, body := do(srvFor(header).URL+search, header)
		if code != http.StatusOK {
			t.Fatalf("search: %d %s", code, body)
		}
		var r console.Result
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		return itemNames(r)["alpha/grp"]
	}
	for _, tt := range []struct {
		name   string
		header http.Header
		allow  bool
	}{
		{"in the group, from the proxy", http.Header{"X-Forwarded-User": {"dana"}, "X-Forwarded-Groups": {"staff,shop-devs"}}, true},
		{"in the group, from the token file", http.Header{"Authorization": {"Bearer dana-token"}}, true},
		{"without the group", http.Header{"X-Forwarded-User": {"dana"}}, false},
		{"in another group", http.Header{"X-Forwarded-User": {"dana"}, "X-Forwarded-Groups": {"staff"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := http.StatusForbidden
			if tt.allow {
				want = http.StatusOK
			}
			if code, body := do(srvFor(tt.header).URL+detail, tt.header); code != want {
				t.Errorf("detail = %d, want %d: %s", code, want, body)
			}
			if got := found(tt.header); got != tt.allow {
				t.Errorf("search finds the pod = %v, want %v", got, tt.allow)
			}
		})
	}
}
