package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	kfake "k8s.io/client-go/kubernetes/fake"
	mfake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/fleet"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fakeCluster is a ClusterSource over fake clients holding objs; Secrets
// and ConfigMaps go to the metadata client as PartialObjectMetadata, as
// the API server would send them.
func fakeCluster(t testing.TB, name string, objs ...runtime.Object) ClusterSource {
	t.Helper()
	var typed, meta []runtime.Object
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Secret:
			meta = append(meta, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: v.ObjectMeta})
		default:
			typed = append(typed, o)
		}
	}
	scheme := mfake.NewTestScheme()
	for _, kind := range []string{"Secret", "ConfigMap"} {
		scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind(kind), &metav1.PartialObjectMetadata{})
		scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind(kind+"List"), &metav1.PartialObjectMetadataList{})
	}
	return ClusterSource{Name: name, Client: kfake.NewClientset(typed...), Metadata: mfake.NewSimpleMetadataClient(scheme, meta...)}
}

func startFake(t *testing.T, clk *clocktesting.FakeClock, srcs ...ClusterSource) (*Console, *httptest.Server) {
	t.Helper()
	return startFakeTB(t, clk, srcs...)
}

func startFakeTB(t testing.TB, clk *clocktesting.FakeClock, srcs ...ClusterSource) (*Console, *httptest.Server) {
	t.Helper()
	c, err := New(Options{Clusters: srcs, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	wctx, done := context.WithTimeout(ctx, 30*time.Second)
	defer done()
	if err := c.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	h, err := c.Handler(Auth{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return c, srv
}

func readyNode(name string, labels map[string]string, ready bool) *corev1.Node {
	n := node(name, "4", "16Gi", labels)
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}
	return n
}

func pendingPod(ns, name string, since time.Time) *corev1.Pod {
	p := pod(ns, name, "", "100m", "128Mi", map[string]string{"app": name})
	p.CreationTimestamp = metav1.NewTime(since)
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(since)}}}
	return p
}

func fetch(t *testing.T, u string, wantCode int) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s = %d, want %d: %s", u, resp.StatusCode, wantCode, b)
	}
	return string(b)
}

// The fleet page counts nodes by lifecycle and lists problems: not-ready
// nodes and pods pending for more than 5 minutes by the injected clock.
func TestFleetProblems(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	a := fakeCluster(t, "prod",
		readyNode("spot-1", map[string]string{"karpenter.sh/capacity-type": "spot"}, true),
		readyNode("od-1", nil, false),
		pendingPod("shop", "old", t0.Add(-6*time.Minute)),
		pendingPod("shop", "new", t0.Add(-time.Minute)),
	)
	b := fakeCluster(t, "staging", readyNode("n1", map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND"}, true))
	c, srv := startFake(t, clk, a, b)
	rows := c.Fleet()
	if len(rows) != 2 {
		t.Fatalf("rows = %d, want 2", len(rows))
	}
	p := rows[0]
	if p.Nodes != 2 || p.SpotNodes != 1 || p.OnDemandNodes != 1 || p.NotReadyNodes != 1 || p.PendingPods != 2 || p.LongPending != 1 {
		t.Errorf("prod row = %+v", p)
	}
	want := []string{"1 node not ready", "1 pod pending for more than 5 min"}
	if strings.Join(p.Problems, "|") != strings.Join(want, "|") {
		t.Errorf("problems = %q, want %q", p.Problems, want)
	}
	if len(rows[1].Problems) != 0 || rows[1].OnDemandNodes != 1 {
		t.Errorf("staging row = %+v, want one on-demand node and no problems", rows[1])
	}
	// Ten minutes later the second pod has waited too long as well.
	clk.Step(10 * time.Minute)
	if got := c.Fleet()[0].LongPending; got != 2 {
		t.Errorf("long pending after 10 min = %d, want 2", got)
	}
	page := fetch(t, srv.URL+"/fleet", 200)
	for _, s := range []string{"prod", "staging", "2 pods pending for more than 5 min", "1 node not ready"} {
		if !strings.Contains(page, s) {
			t.Errorf("fleet page lacks %q", s)
		}
	}
}

func TestServerPages(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	web := pod("shop", "web-1", "n1", "1", "1Gi", map[string]string{"app": "web", "team": "shop"})
	web.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", RestartCount: 7,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Labels: map[string]string{"app": "web"}},
		Data: map[string][]byte{"password": []byte("hunter2")}}
	_, srv := startFake(t, clk,
		fakeCluster(t, "a", readyNode("n1", map[string]string{corev1.LabelInstanceTypeStable: "m5.xlarge"}, true), web, secret),
		fakeCluster(t, "b", pod("shop", "web-2", "", "1", "1Gi", map[string]string{"app": "web", "team": "<script>"})))

	var res Result
	if err := json.Unmarshal([]byte(fetch(t, srv.URL+"/api/search?q="+url.QueryEscape("status:CrashLoopBackOff"), 200)), &res); err != nil {
		t.Fatal(err)
	}
	if items := res.Items(); len(items) != 1 || items[0].Name != "web-1" || items[0].Restarts != 7 {
		t.Errorf("CrashLoopBackOff search = %+v, want web-1 with 7 restarts", items)
	}
	page := fetch(t, srv.URL+"/search?q="+url.QueryEscape("app=web")+"&labelcols=team", 200)
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Error("a label value is not escaped on the search page")
	}
	for _, s := range []string{`href="/clusters/a/namespaces/shop/pods/web-1"`, `href="/clusters/b/namespaces/shop/pods/web-2"`, `href="/clusters/a/namespaces/shop/secrets/db"`} {
		if !strings.Contains(page, s) {
			t.Errorf("search page lacks %s", s)
		}
	}
	detail := fetch(t, srv.URL+"/clusters/a/namespaces/shop/secrets/db", 200)
	if strings.Contains(detail, "hunter2") || strings.Contains(detail, "aHVudGVyMg") || !strings.Contains(detail, "data is not shown") {
		t.Errorf("secret detail shows data or lacks the note:\n%s", detail)
	}
	nodePage := fetch(t, srv.URL+"/clusters/a/nodes/n1", 200)
	if !strings.Contains(nodePage, "Pods on this node") || !strings.Contains(nodePage, "shop/web-1") {
		t.Errorf("node page lacks its pods:\n%s", nodePage)
	}
	fetch(t, srv.URL+"/clusters/a/namespaces/shop/pods/nope", 404)
	fetch(t, srv.URL+"/api/clusters/zz/nodes/n1", 404)
	fetch(t, srv.URL+"/clusters/a/namespaces/shop/widgets", 404)
	fetch(t, srv.URL+"/api/search?q="+url.QueryEscape("=x"), 400)
	fetch(t, srv.URL+"/search?q="+url.QueryEscape("=x"), 200) // the page shows the error
	csv := fetch(t, srv.URL+"/clusters/_all/namespaces/shop/pods?format=csv&labelcols=team&sort=name", 200)
	want := "cluster,kind,namespace,name,ready,status,restarts,node,created,stale,label:team\n" +
		"a,Pod,shop,web-1,0/1,CrashLoopBackOff,7,n1,0001-01-01T00:00:00Z,false,shop\n" +
		"b,Pod,shop,web-2,0/1,Running,0,,0001-01-01T00:00:00Z,false,<script>\n"
	if csv != want {
		t.Errorf("CSV =\n%s\nwant\n%s", csv, want)
	}
	cost := fetch(t, srv.URL+"/cost", 200)
	for _, s := range []string{"m5.xlarge", "catalog", "/charts/cost-by-team.svg"} {
		if !strings.Contains(cost, s) {
			t.Errorf("cost page lacks %q", s)
		}
	}
	for _, chart := range []string{"cost-by-team.svg", "cost-by-app.svg", "cost-by-cluster.svg", "nodes-by-lifecycle.svg"} {
		svg := fetch(t, srv.URL+"/charts/"+chart, 200)
		if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
			t.Errorf("%s is not well-formed XML: %v", chart, err)
		}
	}
	byTeam := fetch(t, srv.URL+"/cost.csv?by=team", 200)
	if !strings.HasPrefix(byTeam, "cluster,team,pods,cost_usd_h,slack_usd_h\n,shop,1,") {
		t.Errorf("cost by team CSV = %q", byTeam)
	}
	fetch(t, srv.URL+"/cost.csv?by=planet", 400)
	if m := fetch(t, srv.URL+"/metrics", 200); !strings.Contains(m, `bosun_console_cluster_node_cost_usd_per_hour{cluster="a"} 0.192`) {
		t.Errorf("metrics lack cluster a's node cost:\n%s", m)
	}
}

// Secrets: even a full Secret that reached the cache by mistake is emptied
// by trim, and its YAML never carries data.
func TestTrimAndRenderNeverShowSecretData(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "y",
		Annotations:   map[string]string{lastApplied: `{"data":{"password":"aHVudGVyMg=="}}`, "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Data: map[string][]byte{"password": []byte("hunter2")}, StringData: map[string]string{"token": "abc123"}}
	obj, err := trim(s.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := LookupKind("secret")
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	y, err := renderYAML(k, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"hunter2", "aHVudGVyMg", "abc123", "managedFields", "last-applied"} {
		if strings.Contains(y, bad) {
			t.Errorf("rendered Secret contains %q:\n%s", bad, y)
		}
	}
	if !strings.Contains(y, "keep: me") {
		t.Errorf("rendered Secret lost its other annotations:\n%s", y)
	}
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	if err := os.WriteFile(path, []byte("# comment\ns3cret alice\nother,bob,shop-devs,oncall\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := UserFrom(r.Context())
		fmt.Fprintf(w, "%s %s", u.Name, strings.Join(u.Groups, "+"))
	})
	byToken := Auth{Tokens: tokens}.wrap(echo)
	byHeader := Auth{TrustedHeader: "X-Forwarded-User", TrustedGroupsHeader: "X-Forwarded-Groups"}.wrap(echo)
	byHeaderFromProxy := Auth{TrustedHeader: "X-Forwarded-User", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}.wrap(echo)
	const local, remote, proxy = "127.0.0.1:40000", "192.0.2.1:40000", "10.1.2.3:40000"
	for _, tt := range []struct {
		name   string
		h      http.Handler
		from   string
		path   string
		header http.Header
		want   int
		// user is "name group+group" as the handler sees it.
		user string
	}{
		{"no credentials", byToken, remote, "/search", nil, 401, ""},
		{"wrong token", byToken, remote, "/search", http.Header{"Authorization": {"Bearer nope"}}, 401, ""},
		{"token prefix is not the token", byToken, remote, "/search", http.Header{"Authorization": {"Bearer s3cre"}}, 401, ""},
		{"token without groups", byToken, remote, "/search", http.Header{"Authorization": {"Bearer s3cret"}}, 200, "alice "},
		{"comma-separated token with groups", byToken, remote, "/search", http.Header{"Authorization": {"Bearer other"}}, 200, "bob shop-devs+oncall"},
		{"a header is no token", byToken, remote, "/search", http.Header{"X-Forwarded-User": {"admin"}}, 401, ""},
		{"proxy header", byHeader, local, "/api/fleet", http.Header{"X-Forwarded-User": {"carol"}}, 200, "carol "},
		{"proxy groups, comma separated and repeated", byHeader, local, "/api/fleet",
			http.Header{"X-Forwarded-User": {"carol"}, "X-Forwarded-Groups": {"shop-devs, sre", "oncall"}}, 200, "carol shop-devs+sre+oncall"},
		{"groups alone are no user", byHeader, local, "/search", http.Header{"X-Forwarded-Groups": {"system:masters"}}, 401, ""},
		{"header from a client that is not the proxy", byHeader, remote, "/search", http.Header{"X-Forwarded-User": {"admin"}}, 401, ""},
		{"header from a configured proxy", byHeaderFromProxy, proxy, "/search", http.Header{"X-Forwarded-User": {"dave"}}, 200, "dave "},
		{"loopback is not trusted once proxies are configured", byHeaderFromProxy, local, "/search", http.Header{"X-Forwarded-User": {"dave"}}, 401, ""},
		{"healthz is open", byToken, remote, "/healthz", nil, 200, " "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.RemoteAddr = tt.from
			req.Header = tt.header.Clone()
			if req.Header == nil {
				req.Header = http.Header{}
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d", rec.Code, tt.want)
			}
			if tt.want == 200 && rec.Body.String() != tt.user {
				t.Errorf("user = %q, want %q", rec.Body.String(), tt.user)
			}
		})
	}
	// Without a groups header configured, a client's groups are ignored.
	plain := authenticator{auth: Auth{TrustedHeader: "X-Forwarded-User"}}
	req := httptest.NewRequest("GET", "/search", nil)
	req.RemoteAddr = local
	req.Header.Set("X-Forwarded-User", "carol")
	req.Header.Set("X-Forwarded-Groups", "system:masters")
	if u, _ := plain.user(req); len(u.Groups) != 0 {
		t.Errorf("groups without TrustedGroupsHeader = %v, want none", u.Groups)
	}
	if err := os.WriteFile(path, []byte("just-a-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokens(path); err == nil {
		t.Error("LoadTokens accepted a line without a user")
	}
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:80": true, "[::1]:8080": true, "0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Issue 18 item 3: tokens and a trusted header together would let a bare
// header through; the console refuses to start with both.
func TestAuthRefusesTokensWithTrustedHeader(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	both := Auth{Tokens: map[string]User{"s3cret": {Name: "alice"}}, TrustedHeader: "X-Forwarded-User"}
	if _, err := c.Handler(both); !errors.Is(err, ErrAuthConflict) {
		t.Errorf("Handler(tokens + trusted header) error = %v, want ErrAuthConflict", err)
	}
	if err := (Auth{TrustedGroupsHeader: "X-Forwarded-Groups"}).Validate(); err == nil {
		t.Error("a groups header without a user header was accepted")
	}
}

// Issue 18 item 9: a token is compared, as a fixed-length hash, with every
// known token, and the loop does not stop at a match, so timing shows
// neither the length nor the position of a token.
func TestTokenCompareIsFixedLengthAndComplete(t *testing.T) {
	tokens := map[string]User{}
	for i := 0; i < 5; i++ {
		tokens[fmt.Sprintf("token-%d-%s", i, strings.Repeat("x", i*7))] = User{Name: fmt.Sprintf("user%d", i)}
	}
	ts := newTokenSet(tokens)
	for _, presented := range []string{"token-0-", "token-4-" + strings.Repeat("x", 28), "nope", strings.Repeat("y", 500)} {
		var calls int
		ts.compare = func(a, b []byte) int {
			calls++
			if len(a) != sha256.Size || len(b) != sha256.Size {
				t.Errorf("compared %d and %d bytes, want %d each", len(a), len(b), sha256.Size)
			}
			return subtle.ConstantTimeCompare(a, b)
		}
		u, ok := ts.match(presented)
		if calls != len(tokens) {
			t.Errorf("match(%.10q) compared %d tokens, want all %d", presented, calls, len(tokens))
		}
		want, known := tokens[presented]
		if ok != known || u.Name != want.Name {
			t.Errorf("match(%.10q) = %v, %v; want %v, %v", presented, u, ok, want, known)
		}
	}
}

func TestBarChartEscapesAndFolds(t *testing.T) {
	var bars []Bar
	for i := 0; i < 20; i++ {
		bars = append(bars, Bar{Label: "team<" + string(rune('a'+i)) + ">", Value: float64(20 - i)})
	}
	var b strings.Builder
	if err := WriteBarChart(&b, "Cost & more", bars, "$%.2f"); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
	}
	if got := strings.Count(svg, "<rect"); got != 15 {
		t.Errorf("bars drawn = %d, want 15 (14 + other)", got)
	}
	// other = 6+5+4+3+2+1 = 21
	if !strings.Contains(svg, ">other<") || !strings.Contains(svg, "$21.00") {
		t.Errorf("chart lacks the folded 'other' bar of 21")
	}
}

// A cluster whose RBAC role leaves out Secrets (as docs/console.md
// suggests) still becomes ready; Secrets are listed as forbidden, on the
// fleet page and in the JSON API, and the cluster is not marked down.
// Once the permission is granted, the console's next try (after a minute,
// then two, by the injected clock) starts the watch without a restart.
func TestForbiddenKindIsRetriedWithBackoff(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"}}
	src := fakeCluster(t, "a", pod("shop", "web", "", "1", "1Gi", nil), secret)
	mc := src.Metadata.(*mfake.FakeMetadataClient)
	var mu sync.Mutex
	granted, asked := false, 0
	mc.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		asked++
		if granted {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", fmt.Errorf("RBAC: no secrets"))
	})
	clk := clocktesting.NewFakeClock(t0)
	c, srv := startFake(t, clk, src)
	st := c.Clusters()[0]
	if st.State != StateReady {
		t.Fatalf("state = %s (%s), want ready", st.State, st.Error)
	}
	if len(st.Unavailable) != 1 || st.Unavailable[0].Kind != "Secret" || st.Unavailable[0].Reason != ReasonForbidden ||
		!st.Unavailable[0].NextRetry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("unavailable = %+v, want Secret forbidden, next try at t0+1m", st.Unavailable)
	}
	var rows []FleetRow
	if err := json.Unmarshal([]byte(fetch(t, srv.URL+"/api/fleet", http.StatusOK)), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows[0].Unavailable) != 1 || rows[0].Unavailable[0].Kind != "Secret" {
		t.Errorf("/api/fleet unavailable kinds = %+v, want Secret", rows[0].Unavailable)
	}
	if page := fetch(t, srv.URL+"/fleet", http.StatusOK); !strings.Contains(page, "cannot list Secret (forbidden)") {
		t.Errorf("fleet page does not name the forbidden kind:\n%s", page)
	}
	q, _ := ParseQuery("kind:secret")
	if n := len(c.Search(q, 0, "").Items()); n != 0 {
		t.Fatalf("secrets found while forbidden = %d", n)
	}
	askedBy := func() int { mu.Lock(); defer mu.Unlock(); return asked }
	// Nothing is asked before the delay; still refused after one minute,
	// so the next wait doubles.
	before := askedBy()
	clk.Step(59 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if askedBy() != before {
		t.Fatalf("asked again before the minute was up")
	}
	clk.Step(time.Second)
	eventually(t, func() bool {
		u := c.Clusters()[0].Unavailable
		return askedBy() > before && len(u) == 1 && u[0].NextRetry.Equal(t0.Add(3*time.Minute))
	}, "a second refusal with the next try two minutes later")
	mu.Lock()
	granted = true
	mu.Unlock()
	clk.Step(2 * time.Minute)
	eventually(t, func() bool {
		return len(c.Clusters()[0].Unavailable) == 0 && len(c.Search(q, 0, "").Items()) == 1
	}, "the Secret to appear once granted")
}

// A kind refused while watched (RBAC revoked) is marked at once and asked
// about again after a minute of the injected clock; allowed again, the
// mark goes.
func TestRevokedKindIsMarkedAndRetried(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	c, _ := startFake(t, clk, fakeCluster(t, "a", pod("shop", "web", "", "1", "1Gi", nil)))
	cl := c.clusters[0]
	cl.noteWatchError("Pod", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", fmt.Errorf("RBAC: revoked")))
	eventually(t, func() bool {
		u := c.Clusters()[0].Unavailable
		return len(u) == 1 && !u[0].NextRetry.IsZero()
	}, "the retry to be scheduled")
	st := c.Clusters()[0]
	if len(st.Unavailable) != 1 || st.Unavailable[0].Kind != "Pod" || !st.Unavailable[0].NextRetry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("unavailable = %+v, want Pod forbidden, next try at t0+1m", st.Unavailable)
	}
	if st.State != StateReady {
		t.Errorf("state = %s, want ready: a refusal is an answer, not an outage", st.State)
	}
	// A second error while the retry waits starts no second retry.
	cl.noteWatchError("Pod", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", fmt.Errorf("RBAC: revoked")))
	eventually(t, func() bool { return len(c.Clusters()[0].Unavailable) == 1 }, "the mark")
	clk.Step(time.Minute)
	eventually(t, func() bool { return len(c.Clusters()[0].Unavailable) == 0 }, "the mark to go once the list is allowed")
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestApplyFleet(t *testing.T) {
	f, err := fleet.Load("../../examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	srcs := []ClusterSource{{Name: "local-prod"}, {Name: "unknown"}, {Name: "bosun-local-staging"}}
	ApplyFleet(srcs, f)
	if srcs[2].Environment != "staging" {
		t.Errorf("bosun up's context bosun-local-staging got environment %q, want staging", srcs[2].Environment)
	}
	var want *fleet.Cluster
	for _, c := range f.Clusters {
		if c.ID == "local-prod" {
			want = c
		}
	}
	if want == nil {
		t.Fatal("example fleet has no local-prod")
	}
	if srcs[0].Environment != want.Environment || srcs[0].Provider != want.Provider || srcs[0].Channel != want.Channel || srcs[0].Environment == "" {
		t.Errorf("local-prod = %+v, want environment %q provider %q channel %q", srcs[0], want.Environment, want.Provider, want.Channel)
	}
	if srcs[1].Environment != "" {
		t.Errorf("unknown cluster got fleet data: %+v", srcs[1])
	}
}

// L38, L51: usage read from the metrics API turns into slack; a cluster
// without the metrics API reports usage unknown.
func TestUsageFromMetricsAPI(t *testing.T) {
	pm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
		"metadata":   map[string]any{"name": "web", "namespace": "shop"},
		"containers": []any{map[string]any{"name": "main", "usage": map[string]any{"cpu": "250m", "memory": "1Gi"}}},
	}}
	scheme := runtime.NewScheme()
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{podMetricsGVR: "PodMetricsList"})
	// The metrics API's resource is "pods", which the tracker cannot guess
	// from the kind PodMetrics.
	if err := dyn.Tracker().Create(podMetricsGVR, pm, "shop"); err != nil {
		t.Fatal(err)
	}
	src := fakeCluster(t, "a", node("n1", "2", "4Gi", nil), pod("shop", "web", "n1", "1", "2Gi", nil), pod("shop", "new", "n1", "500m", "1Gi", nil))
	src.Dynamic = dyn
	withoutMetrics := fakeCluster(t, "b", node("n1", "2", "4Gi", nil), pod("shop", "web", "n1", "1", "2Gi", nil))
	c, _ := startFake(t, clocktesting.NewFakeClock(t0), src, withoutMetrics)
	var rep CostReport
	deadline := time.Now().Add(10 * time.Second)
	for rep = c.Cost(); !rep.Clusters[0].UsageKnown && time.Now().Before(deadline); rep = c.Cost() {
		time.Sleep(10 * time.Millisecond)
	}
	a, b := rep.Clusters[0], rep.Clusters[1]
	if !a.UsageKnown || b.UsageKnown {
		t.Fatalf("usage known = %v, %v; want true for a (metrics API), false for b", a.UsageKnown, b.UsageKnown)
	}
	// web: 0.75 core and 1 GiB unused at 0.0316 and 0.0042: 0.0279; "new"
	// has no metrics yet and keeps its requests: no slack.
	near(t, "cluster a slack", a.SlackUSD, 0.0279)
	near(t, "cluster b slack", b.SlackUSD, 0)
}

func TestParsePodMetricsRejectsBadQuantities(t *testing.T) {
	pm := unstructured.Unstructured{Object: map[string]any{
		"metadata":   map[string]any{"name": "web", "namespace": "shop"},
		"containers": []any{map[string]any{"name": "main", "usage": map[string]any{"cpu": "lots"}}},
	}}
	if _, err := parsePodMetrics([]unstructured.Unstructured{pm}); err == nil || !strings.Contains(err.Error(), `cpu "lots"`) {
		t.Errorf("error = %v, want one naming the bad cpu quantity", err)
	}
}

// The label index follows adds, label changes and deletes, and agrees with
// a full scan (L48).
func TestLabelIndexFollowsChanges(t *testing.T) {
	src := fakeCluster(t, "a", pod("shop", "web", "", "1", "1Gi", map[string]string{"app": "a", "tier": "web"}),
		pod("shop", "api", "", "1", "1Gi", map[string]string{"app": "b", "tier": "api"}))
	c, _ := startFake(t, clocktesting.NewFakeClock(t0), src)
	count := func(query string) int {
		q, err := ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		return len(c.Search(q, 0, "").Items())
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("both pods indexed", func() bool { return count("app in (a,b)") == 2 })
	for q, want := range map[string]int{"app=a": 1, "app=a tier=api": 0, "tier!=web": 1, "app notin (a)": 1, "app=a kind:deployment": 0} {
		if got := count(q); got != want {
			t.Errorf("%q = %d, want %d", q, got, want)
		}
	}
	p, err := src.Client.CoreV1().Pods("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["app"] = "c"
	if _, err := src.Client.CoreV1().Pods("shop").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the relabelled pod under app=c only", func() bool { return count("app=c") == 1 && count("app=a") == 0 })
	if err := src.Client.CoreV1().Pods("shop").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the deleted pod gone from the index", func() bool { return count("app=c") == 0 && count("tier=web") == 0 })
	if n := c.Clusters()[0].Objects; n != 1 {
		t.Errorf("objects = %d after the delete, want 1", n)
	}
}

// Detail relations: a ReplicaSet shows its Deployment as owner and its pod
// as owned; the pod's events come from the cache.
func TestDetailOwnersAndEvents(t *testing.T) {
	isController := true
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "d-1"}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f", Namespace: "shop", UID: "rs-1",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", UID: "d-1", Controller: &isController}}}}
	p := pod("shop", "web-7d9f-x", "", "1", "1Gi", nil)
	p.UID = "p-1"
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9f", UID: "rs-1", Controller: &isController}}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "shop"}, Reason: "Pulled", Message: "image pulled",
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-7d9f-x", Namespace: "shop"}, LastTimestamp: metav1.NewTime(t0)}
	c, _ := startFake(t, clocktesting.NewFakeClock(t0), fakeCluster(t, "a", dep, rs, p, ev))
	d, err := c.Detail(context.Background(), "a", "rs", "shop", "web-7d9f")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Owners) != 1 || d.Owners[0].Name != "web" || len(d.Owned) != 1 || d.Owned[0].Name != "web-7d9f-x" {
		t.Errorf("owners = %v, owned = %v; want the Deployment and the pod", names(d.Owners), names(d.Owned))
	}
	if d.Live || !strings.Contains(d.YAML, "controller: Deployment/web") {
		t.Errorf("without a live client the YAML is the summary; got live=%v:\n%s", d.Live, d.YAML)
	}
	pd, err := c.Detail(context.Background(), "a", "pods", "shop", "web-7d9f-x")
	if err != nil {
		t.Fatal(err)
	}
	if len(pd.Events) != 1 || pd.Events[0].Message != "image pulled" || pd.Item.Owner != "ReplicaSet/web-7d9f" {
		t.Errorf("pod events = %+v owner = %q", pd.Events, pd.Item.Owner)
	}
	q, _ := ParseQuery("owner:Deployment/web")
	if got := names(c.Search(q, 0, "").Items()); len(got) != 1 || got[0] != "a/ReplicaSet/web-7d9f" {
		t.Errorf("owner:Deployment/web = %v, want the ReplicaSet", got)
	}
}
