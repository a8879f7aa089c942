//go:build integration

package controlplane_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bosun-platform/bosun/internal/testenv"
)

// The API server runs the aggregation layer (what metrics-server needs to
// serve the metrics API): an APIService backed by an extension server on
// loopback answers through the API server, which calls it with the
// front-proxy client certificate, trusted through the CA it publishes in
// kube-system/extension-apiserver-authentication, and names the user in
// X-Remote-User.
func TestIntegrationAggregationLayer(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	cm, err := env.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caPEM := cm.Data["requestheader-client-ca-file"]
	var allowed []string
	if err := json.Unmarshal([]byte(cm.Data["requestheader-allowed-names"]), &allowed); err != nil || len(allowed) != 1 || allowed[0] != "front-proxy-client" {
		t.Fatalf("requestheader-allowed-names %q (%v), want [front-proxy-client]", cm.Data["requestheader-allowed-names"], err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("extension-apiserver-authentication has no requestheader client CA")
	}

	var mu sync.Mutex
	var users []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "front-proxy-client" {
			http.Error(w, "not the front proxy", http.StatusForbidden)
			return
		}
		mu.Lock()
		users = append(users, r.Header.Get("X-Remote-User"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "aggregation-test.bosun.dev/v1",
			APIResources: []metav1.APIResource{{Name: "probes", Kind: "Probe", Namespaced: true, Verbs: []string{"get"}}},
		})
	}))
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)

	ns := env.Namespace(t)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "aggregation-test", Namespace: ns},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost", Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}},
	}
	if _, err := env.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1.aggregation-test.bosun.dev"},
		"spec": map[string]any{
			"group": "aggregation-test.bosun.dev", "version": "v1",
			"service":               map[string]any{"namespace": ns, "name": "aggregation-test", "port": int64(port)},
			"insecureSkipTLSVerify": true, "groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
		},
	}}
	if _, err := env.Dynamic.Resource(gvr).Create(ctx, apiService, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Dynamic.Resource(gvr).Delete(context.Background(), "v1.aggregation-test.bosun.dev", metav1.DeleteOptions{})
	})

	var body []byte
	testenv.Eventually(t, time.Minute, func(ctx context.Context) (bool, error) {
		body, err = env.Client.Discovery().RESTClient().Get().AbsPath("/apis/aggregation-test.bosun.dev/v1").DoRaw(ctx)
		return err == nil, nil
	}, "the API server proxies /apis/aggregation-test.bosun.dev/v1 to the extension server")
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil || len(list.APIResources) != 1 || list.APIResources[0].Name != "probes" {
		t.Fatalf("proxied answer %s (%v)", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	caller := false
	for _, u := range users {
		caller = caller || (u != "" && u != "system:kube-aggregator")
	}
	if !caller {
		t.Errorf("the extension server saw users %q; want the test's caller in X-Remote-User", users)
	}
	t.Logf("users seen by the extension server: %q", users)
}
