//go:build integration

package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

// startSecond starts a second control plane (etcd and kube-apiserver only)
// so the console has two real API servers to watch.
func startSecond(t *testing.T, name string) *controlplane.ControlPlane {
	t.Helper()
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		t.Fatalf("finding binaries (run make tools): %v", err)
	}
	cp, err := controlplane.Start(context.Background(), controlplane.Options{Name: name, Binaries: bins, UnsafeNoFsync: true, StartTimeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("starting control plane %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

// writeKubeconfig writes one kubeconfig with a context per cluster, as a
// user's merged kubeconfig would be.
func writeKubeconfig(t testing.TB, clusters map[string]*rest.Config) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	for name, rc := range clusters {
		cfg.Clusters[name] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: rc.BearerToken}
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
		cfg.CurrentContext = name
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	return path
}

type fixture struct {
	client kubernetes.Interface
	ns     string
}

func (f fixture) pod(t *testing.T, name, node string, labels map[string]string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: labels,
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"secret-ish":"LASTAPPLIED"}`}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", Image: "ghcr.io/acme/" + name + ":1.0"}}},
	}
	if _, err := f.client.CoreV1().Pods(f.ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
}

// ensureNamespace creates the namespace (unless it exists) and its default
// ServiceAccount: without a controller-manager nobody else does, and pods
// need it.
func ensureNamespace(t *testing.T, c kubernetes.Interface, name string, create bool) {
	t.Helper()
	ctx := context.Background()
	if create {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace %s: %v", name, err)
		}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
	if _, err := c.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating default service account in %s: %v", name, err)
	}
}

func get(t *testing.T, url string, into any) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("decoding %s: %v\n%s", url, err, b)
		}
	}
	return string(b)
}

func itemNames(r console.Result) map[string]bool {
	out := map[string]bool{}
	for _, it := range r.Items() {
		out[it.Cluster+"/"+it.Name] = true
	}
	return out
}

// L48: one search over two real API servers; stopping one leaves the
// console answering for the other and shows the stopped one as down.
func TestIntegrationTwoClustersOneGoesDown(t *testing.T) {
	env := testenv.Get(t)
	second := startSecond(t, "console-b")
	clientB, err := kubernetes.NewForConfig(second.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	a := fixture{client: env.Client, ns: env.Namespace(t)}
	b := fixture{client: clientB, ns: a.ns}
	ensureNamespace(t, env.Client, a.ns, false)
	ensureNamespace(t, clientB, b.ns, true)

	node, err := controlplane.NewNode(controlplane.NodeSpec{Name: "console-a-node", CPU: "4", Memory: "16Gi", Labels: map[string]string{
		corev1.LabelInstanceTypeStable: "m5.xlarge", "karpenter.sh/capacity-type": "spot"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating node: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})
	a.pod(t, "web-a", node.Name, map[string]string{"app": "web", "team": "shop"})
	a.pod(t, "sidecar-a", node.Name, map[string]string{"app": "sidecar"})
	b.pod(t, "web-b", "", map[string]string{"app": "web", "team": "shop"})
	b.pod(t, "worker-b", "", map[string]string{"app": "worker"})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: a.ns},
		StringData: map[string]string{"password": "hunter2-very-secret"}}
	if _, err := env.Client.CoreV1().Secrets(a.ns).Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret: %v", err)
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web-a.1", Namespace: a.ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-a", Namespace: a.ns},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning, Count: 3,
		LastTimestamp: metav1.Now()}
	if _, err := env.Client.CoreV1().Events(a.ns).Create(context.Background(), ev, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating event: %v", err)
	}

	kubeconfig := writeKubeconfig(t, map[string]*rest.Config{"alpha": env.RESTConfig(), "beta": second.RESTConfig()})
	srcs, err := console.ClustersFromKubeconfig(kubeconfig, nil)
	if err != nil {
		t.Fatalf("clusters from kubeconfig: %v", err)
	}
	if len(srcs) != 2 || srcs[0].Name != "alpha" || srcs[1].Name != "beta" {
		t.Fatalf("sources = %+v, want alpha and beta", srcs)
	}
	c, err := console.New(console.Options{Clusters: srcs, ProbeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	syncCtx, done := context.WithTimeout(ctx, time.Minute)
	defer done()
	if err := c.WaitSynced(syncCtx); err != nil {
		t.Fatal(err)
	}
	h, err := c.Handler(console.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// One query, objects from both clusters, grouped by cluster.
	var res console.Result
	get(t, srv.URL+"/api/search?q="+urlq("app=web ns:"+a.ns), &res)
	if got := itemNames(res); !got["alpha/web-a"] || !got["beta/web-b"] || len(got) != 2 {
		t.Fatalf("search app=web = %v, want alpha/web-a and beta/web-b", got)
	}
	if len(res.Groups) != 2 || res.Groups[0].Cluster.Name != "alpha" || res.Groups[1].Cluster.Name != "beta" {
		t.Errorf("groups = %+v, want alpha then beta", res.Groups)
	}
	// Free text over images; HTML page links to the detail page.
	page := get(t, srv.URL+"/search?q="+urlq("acme/worker-b"), nil)
	if !strings.Contains(page, `href="/clusters/beta/namespaces/`+b.ns+`/pods/worker-b"`) {
		t.Errorf("search page has no link to worker-b's detail page:\n%s", page)
	}

	// Detail: YAML without last-applied, the event, the node and its other pods.
	var d console.Detail
	get(t, srv.URL+"/api/clusters/alpha/namespaces/"+a.ns+"/pods/web-a", &d)
	if strings.Contains(d.YAML, "LASTAPPLIED") || strings.Contains(d.YAML, "managedFields") {
		t.Errorf("detail YAML keeps last-applied-configuration or managed fields:\n%s", d.YAML)
	}
	if len(d.Events) != 1 || d.Events[0].Reason != "BackOff" {
		t.Errorf("events = %+v, want the BackOff event", d.Events)
	}
	if d.Node == nil || d.Node.Name != node.Name || len(d.NodePods) != 1 || d.NodePods[0].Name != "sidecar-a" {
		t.Errorf("node = %+v, node pods = %+v; want %s with sidecar-a", d.Node, d.NodePods, node.Name)
	}
	// Secret values are never shown, in the API or the page.
	for _, u := range []string{"/api/clusters/alpha/namespaces/" + a.ns + "/secrets/db", "/clusters/alpha/namespaces/" + a.ns + "/secrets/db",
		"/api/search?q=" + urlq("kind:secret db"), "/clusters/_all/namespaces/" + a.ns + "/secrets?format=csv"} {
		body := get(t, srv.URL+u, nil)
		if strings.Contains(body, "hunter2") || strings.Contains(body, "aHVudGVyMi") {
			t.Errorf("%s shows the Secret's value:\n%s", u, body)
		}
	}

	// A list over _all clusters as CSV with a label column.
	csv := get(t, srv.URL+"/clusters/_all/namespaces/"+a.ns+"/pods?format=csv&labelcols=team", nil)
	if lines := strings.Count(csv, "\n"); lines != 5 || !strings.Contains(csv, "label:team") || !strings.Contains(csv, "beta,Pod,"+b.ns+",web-b") {
		t.Errorf("CSV of all pods = %q, want a header and 4 pods with a team column", csv)
	}

	// Watches keep the cache current.
	b.pod(t, "late-b", "", map[string]string{"app": "web"})
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		q, _ := console.ParseQuery("late-b")
		return len(c.Search(q, 0, "").Items()) == 1, nil
	}, "late-b in the cache")

	// CRDs are discovered and listed on demand, live.
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.bosun.dev"},
		"spec": map[string]any{"group": "example.bosun.dev", "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}},
	}}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := env.Dynamic.Resource(crdGVR).Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CRD: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Dynamic.Resource(crdGVR).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	widgets := schema.GroupVersionResource{Group: "example.bosun.dev", Version: "v1", Resource: "widgets"}
	widget := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.bosun.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "gear", "namespace": a.ns}, "spec": map[string]any{"teeth": int64(12)}}}
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := env.Dynamic.Resource(widgets).Namespace(a.ns).Create(ctx, widget, metav1.CreateOptions{})
		return err == nil, nil
	}, "the Widget CRD to serve")
	var crds []console.CRD
	get(t, srv.URL+"/api/clusters/alpha/crds", &crds)
	if len(crds) != 1 || crds[0].Kind != "Widget" || crds[0].Version != "v1" || !crds[0].Namespaced {
		t.Fatalf("CRDs = %+v, want the Widget CRD", crds)
	}
	var objs []console.CustomObject
	get(t, srv.URL+"/api"+crds[0].Path, &objs)
	if len(objs) != 1 || objs[0].Name != "gear" {
		t.Fatalf("widgets = %+v, want gear", objs)
	}
	if page := get(t, srv.URL+objs[0].Path, nil); !strings.Contains(page, "teeth: 12") {
		t.Errorf("widget page lacks its spec:\n%s", page)
	}

	// Stop beta: the console marks it down and keeps answering for alpha.
	if err := second.Stop(); err != nil {
		t.Fatalf("stopping beta: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		var sts []console.ClusterStatus
		get(t, srv.URL+"/api/clusters", &sts)
		return len(sts) == 2 && sts[0].State == console.StateReady && sts[1].State == console.StateDown, nil
	}, "beta down and alpha ready")
	a.pod(t, "after-b-down", node.Name, map[string]string{"app": "web"})
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		var r console.Result
		get(t, srv.URL+"/api/search?q="+urlq("app=web ns:"+a.ns), &r)
		names := itemNames(r)
		if !names["alpha/after-b-down"] {
			return false, nil
		}
		// beta's last known objects stay, marked stale.
		for _, g := range r.Groups {
			if g.Cluster.Name == "beta" && (!g.Stale || g.Cluster.State != console.StateDown) {
				t.Errorf("beta group = stale %v state %s, want stale and down", g.Stale, g.Cluster.State)
			}
		}
		return names["beta/web-b"], nil
	}, "search answering for alpha while beta is down")
	fleet := get(t, srv.URL+"/fleet", nil)
	if !strings.Contains(fleet, "API server unreachable") {
		t.Errorf("fleet page does not show beta as unreachable:\n%s", fleet)
	}

	// Cost: alpha's spot m5.xlarge is priced from the catalogue (L51, L53).
	var rep console.CostReport
	get(t, srv.URL+"/api/cost", &rep)
	if len(rep.Nodes) != 1 || rep.Nodes[0].Lifecycle != console.LifecycleSpot || rep.Nodes[0].PriceSource != console.PriceSpot || rep.Clusters[0].SpotSavingsUSD <= 0 {
		t.Errorf("cost nodes = %+v, clusters = %+v; want one spot m5.xlarge with savings", rep.Nodes, rep.Clusters)
	}
	metrics := get(t, srv.URL+"/metrics", nil)
	if !strings.Contains(metrics, `bosun_console_cluster_up{cluster="beta"} 0`) || !strings.Contains(metrics, `bosun_console_cluster_up{cluster="alpha"} 1`) {
		t.Errorf("metrics do not report alpha up and beta down:\n%s", metrics)
	}
	_ = os.Remove(kubeconfig)
}

func urlq(s string) string { return url.QueryEscape(s) }

// With impersonation on, live reads act as the signed-in user: a user the
// cluster grants nothing is refused the detail YAML and the CRD list; a
// user granted get pods and list CRDs reads them. Search, answered from the shared cache,
// is not per user (docs/console.md says so).
func TestIntegrationImpersonation(t *testing.T) {
	env := testenv.Get(t)
	f := fixture{client: env.Client, ns: env.Namespace(t)}
	ensureNamespace(t, env.Client, f.ns, false)
	f.pod(t, "imp", "", map[string]string{"app": "imp"})
	// The built-in "view" role is aggregated by kube-controller-manager,
	// which this control plane does not run, so the test grants its own.
	reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "console-imp-reader"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"list"}},
		}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "console-imp-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: reader.Name},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "viewer"}}}
	ctx := context.Background()
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoles().Delete(ctx, reader.Name, metav1.DeleteOptions{})
	})

	c, err := console.New(console.Options{Clusters: []console.ClusterSource{{Name: "alpha", Config: env.RESTConfig()}}, Impersonate: true})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	c.Start(cctx)
	h, err := c.Handler(console.Auth{TrustedHeader: "X-Forwarded-User"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	detail := srv.URL + "/api/clusters/alpha/namespaces/" + f.ns + "/pods/imp"
	as := func(user, u string) int {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("X-Forwarded-User", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		return as("viewer", detail) == http.StatusOK, nil
	}, "the viewer to read the pod's detail")
	if code := as("nobody", detail); code != http.StatusForbidden {
		t.Errorf("detail as nobody = %d, want 403", code)
	}
	if code := as("nobody", srv.URL+"/api/clusters/alpha/crds"); code != http.StatusForbidden {
		t.Errorf("CRDs as nobody = %d, want 403", code)
	}
	if code := as("viewer", srv.URL+"/api/clusters/alpha/crds"); code != http.StatusOK {
		t.Errorf("CRDs as viewer = %d, want 200", code)
	}
	// Search shows each user only what the cluster lets them list.
	searchAs := func(user string) map[string]bool {
		req, _ := http.NewRequest("GET", srv.URL+"/api/search?q="+url.QueryEscape("imp ns:"+f.ns), nil)
		req.Header.Set("X-Forwarded-User", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r console.Result
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return itemNames(r)
	}
	if got := searchAs("viewer"); !got["alpha/imp"] {
		t.Errorf("search as viewer = %v, want alpha/imp", got)
	}
	if got := searchAs("nobody"); len(got) != 0 {
		t.Errorf("search as nobody = %v, want nothing", got)
	}
}
