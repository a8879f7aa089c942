//go:build integration

package console

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bosun-platform/bosun/internal/testenv"
)

// Issue 18 item 1: every route the console serves, with path traversal
// and encoding variants in every placeholder and in ?namespace=, against a
// real API server holding a Secret, a ConfigMap and objects carrying a
// last-applied annotation. No response may contain any of their values,
// in plain text or base64.
func TestIntegrationNoRouteLeaksSecretData(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	const (
		secretValue = "s3cret-canary-7f3a"
		configValue = "config-canary-91bc"
		appliedMark = "applied-canary-c0de"
	)
	canaries := []string{secretValue, configValue, appliedMark}
	for _, c := range []string{secretValue, configValue} {
		canaries = append(canaries, base64.StdEncoding.EncodeToString([]byte(c)))
	}
	lastAppliedAnn := map[string]string{lastApplied: fmt.Sprintf(`{"data":{"password":%q}}`, appliedMark)}

	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns, Annotations: lastAppliedAnn},
		StringData: map[string]string{"password": secretValue}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret: %v", err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns, Annotations: lastAppliedAnn},
		Data:       map[string]string{"dsn": configValue}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating configmap: %v", err)
	}
	one := int32(1)
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: lastAppliedAnn},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gadgets.leak.bosun.dev"},
		"spec": map[string]any{"group": "leak.bosun.dev", "scope": "Namespaced",
			"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
			"versions": []any{
				map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
				map[string]any{"name": "v0", "served": false, "storage": false,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
			}},
	}}
	if _, err := env.Dynamic.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CRD: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Dynamic.Resource(crdGVR).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	gadgets := schema.GroupVersionResource{Group: "leak.bosun.dev", Version: "v1", Resource: "gadgets"}
	gadget := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "leak.bosun.dev/v1", "kind": "Gadget",
		"metadata": map[string]any{"name": "gear", "namespace": ns, "annotations": map[string]any{lastApplied: appliedMark}},
		"spec":     map[string]any{"teeth": int64(12)}}}
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := env.Dynamic.Resource(gadgets).Namespace(ns).Create(ctx, gadget, metav1.CreateOptions{})
		return err == nil, nil
	}, "the Gadget CRD to serve")

	c, err := New(Options{Clusters: []ClusterSource{{Name: "alpha", Config: env.RESTConfig()}}, UsageInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	c.Start(cctx)
	syncCtx, done := context.WithTimeout(cctx, time.Minute)
	defer done()
	if err := c.WaitSynced(syncCtx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		q, _ := ParseQuery("ns:" + ns)
		return len(c.Search(q, 0, "").Items()) >= 3, nil
	}, "the test's objects in the cache")
	h, err := c.Handler(Auth{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// The routes work: the gadget and the deployment render, so a test that
	// sees no canary is not merely seeing errors.
	for _, u := range []string{
		"/api/clusters/alpha/custom/leak.bosun.dev/v1/gadgets/gear?namespace=" + ns,
		"/clusters/alpha/namespaces/" + ns + "/deployments/web",
	} {
		code, body := fetchRaw(t, srv.URL+u)
		if code != http.StatusOK || !strings.Contains(body, "gear") && !strings.Contains(body, "web") {
			t.Fatalf("GET %s = %d, want 200 with the object:\n%s", u, code, body)
		}
	}
	// A version the CRD does not serve, a core resource and an unknown
	// CRD are not found, whatever the API server would answer.
	for _, u := range []string{
		"/api/clusters/alpha/custom/leak.bosun.dev/v0/gadgets",
		"/api/clusters/alpha/custom/apps/v1/deployments",
		"/api/clusters/alpha/custom/nothing.bosun.dev/v1/things",
	} {
		if code, body := fetchRaw(t, srv.URL+u); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404:\n%s", u, code, body)
		}
	}

	urls := []string{
		// The request from the issue, verbatim, and its HTML twin.
		"/api/clusters/alpha/custom/..%2Fapi/v1/x%2F../secrets?namespace=" + ns,
		"/clusters/alpha/custom/..%2Fapi/v1/x%2F../secrets?namespace=" + ns,
		"/api/clusters/alpha/custom/..%2Fapi/v1/x%2F../secrets",
		"/api/clusters/alpha/custom/..%2Fapi/v1/configmaps/settings?namespace=" + ns,
	}
	values := map[string][]string{
		"cluster":   {"alpha", "..", "%2e%2e", "alpha%2F.."},
		"namespace": {ns, "..", "%2e%2e", "..%2F" + ns, "_all"},
		"kind":      {"secrets", "Secret", "secret", "configmaps", "cm", "deployments", "..%2Fsecrets", "secrets."},
		"name":      {"db", "settings", "web", "gear", "..", "%2e%2e%2Fsecrets", "..%252Fsecrets", "db."},
		"group": {"leak.bosun.dev", "..%2Fapi", "%2e%2e%2Fapi", "..%252Fapi", "%2e%2e", ".", "..", "apps",
			"leak.bosun.dev.", "..%2F..%2Fapi%2Fv1%2Fnamespaces%2F" + ns},
		"version": {"v1", "x%2F..", "%2e%2e", "v1.", "v1%2F..%2F..%2Fapi%2Fv1"},
		"plural":  {"gadgets", "secrets", "configmaps", "gadgets.", "..%2Fsecrets", "secrets%2Fdb"},
		"chart":   {"cost.svg", "..%2Fsecrets", "%2e%2e"},
	}
	queries := []string{"", "?namespace=" + ns, "?namespace=..%2F" + ns, "?namespace=" + ns + "&format=csv",
		"?q=kind:secret+ns:" + ns + "&format=csv", "?q=kind:configmap&format=csv", "?by=pod"}
	routes := (&server{c: c}).routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes listed; the table should hold every route", len(routes))
	}
	for _, rt := range routes {
		path := strings.TrimPrefix(rt.pattern, "GET ")
		path = strings.TrimSuffix(path, "{$}")
		for _, p := range expand(path, values, 400) {
			for _, q := range queries {
				urls = append(urls, p+q)
			}
		}
	}
	var served int
	for _, u := range urls {
		code, body := fetchRaw(t, srv.URL+u)
		if code == http.StatusOK {
			served++
		}
		for _, c := range canaries {
			if strings.Contains(body, c) {
				t.Errorf("GET %s (%d) leaks %q:\n%.2000s", u, code, c, body)
			}
		}
	}
	t.Logf("%d requests over %d routes, %d answered 200, none leaked", len(urls), len(routes), served)
}

// expand substitutes every combination of values into the {placeholders}
// of path, at most limit combinations (the first values of each list come
// first, so the ordinary path is always tried).
func expand(path string, values map[string][]string, limit int) []string {
	out := []string{path}
	for {
		i := strings.Index(out[0], "{")
		if i < 0 {
			return out
		}
		j := strings.Index(out[0][i:], "}")
		name := out[0][i+1 : i+j]
		var next []string
		for _, v := range values[name] {
			for _, p := range out {
				next = append(next, strings.Replace(p, "{"+name+"}", v, 1))
				if len(next) >= limit {
					break
				}
			}
		}
		if len(next) == 0 {
			next = []string{strings.Replace(out[0], "{"+name+"}", "x", 1)}
		}
		out = next
	}
}

// fetchRaw GETs u as sent (the client keeps percent-encoding), following
// redirects, and returns the status and body.
func fetchRaw(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	return resp.StatusCode, string(b)
}
