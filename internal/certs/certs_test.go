package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestAssessL27GradesRemainingLifeAndThresholds(t *testing.T) {
	cases := []struct {
		left      time.Duration
		severity  Severity
		threshold time.Duration
	}{
		{400 * Day, OK, 0},
		{31 * Day, OK, 0},
		{30 * Day, Warning, 30 * Day},
		{20 * Day, Warning, 30 * Day},
		{14 * Day, Warning, 14 * Day},
		{7 * Day, Critical, 7 * Day},
		{3 * Day, Critical, 7 * Day},
		{12 * time.Hour, Critical, 1 * Day},
		{0, Expired, 1 * Day},
		{-5 * Day, Expired, 1 * Day},
	}
	for _, c := range cases {
		cert := Cert{NotBefore: now.Add(-Day), NotAfter: now.Add(c.left)}
		a := Assess(cert, now)
		if a.Severity != c.severity || a.Threshold != c.threshold || a.Remaining != c.left {
			t.Errorf("%s left: got %s threshold %s remaining %s, want %s threshold %s",
				c.left, a.Severity, a.Threshold, a.Remaining, c.severity, c.threshold)
		}
	}
	future := Assess(Cert{NotBefore: now.Add(time.Hour), NotAfter: now.Add(400 * Day)}, now)
	if future.Severity != NotYetValid {
		t.Errorf("not yet valid: got %s", future.Severity)
	}
}

// L27: kube-aws generated an etcd certificate for one year when two were
// asked for; a year later the cluster went down. A lifetime far from the
// one asked for is a problem; the hour generators backdate is not.
func TestAssessL27FlagsGeneratedCertificateWithWrongLifetime(t *testing.T) {
	asked := 2 * 365 * Day
	wrong := Cert{NotBefore: now, NotAfter: now.Add(365 * Day), ExpectedLifetime: asked}
	a := Assess(wrong, now)
	if len(a.Problems) != 1 || !strings.Contains(a.Problems[0], "lifetime 365d, asked for 730d") {
		t.Fatalf("problems %q", a.Problems)
	}
	backdated := Cert{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(asked), ExpectedLifetime: asked}
	if p := Assess(backdated, now).Problems; len(p) != 0 {
		t.Fatalf("backdated by an hour: problems %q", p)
	}
}

func TestParsePEMSkipsKeysAndRejectsGarbage(t *testing.T) {
	m := mint(t, "a", now, Day)
	certs, err := ParsePEM(append(append([]byte{}, m.keyPEM...), m.certPEM...))
	if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "a" {
		t.Fatalf("certs %v, err %v", certs, err)
	}
	if _, err := ParsePEM(m.keyPEM); err == nil {
		t.Error("a key alone parsed as a certificate bundle")
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")})
	if _, err := ParsePEM(bad); err == nil {
		t.Error("garbage certificate accepted")
	}
}

func tlsSecret(ns, name string, m minted) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: m.certPEM, corev1.TLSPrivateKeyKey: m.keyPEM},
	}
}

func TestScanFindsSecretsWebhooksAndAPIServicesWithoutKeys(t *testing.T) {
	web := mint(t, "web.example.com", now.Add(-Day), 10*Day)
	hook := mint(t, "hook-ca", now.Add(-Day), 100*Day)
	agg := mint(t, "metrics-ca", now.Add(-Day), 200*Day)
	opaque := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "opaque"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"tls.crt": web.certPEM},
	}
	cs := k8sfake.NewClientset(
		tlsSecret("ns", "web-tls", web), opaque,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "empty"}, Type: corev1.SecretTypeTLS},
		&admissionv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "policy"},
			Webhooks: []admissionv1.ValidatingWebhook{
				{Name: "pods.policy.example", ClientConfig: admissionv1.WebhookClientConfig{CABundle: hook.certPEM}},
				{Name: "no-bundle.policy.example"},
			},
		},
	)
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec":     map[string]any{"caBundle": base64.StdEncoding.EncodeToString(agg.certPEM)},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{APIServiceResource: "APIServiceList"}, apiService)

	got, errs := Scan(context.Background(), Target{Cluster: "c1", Client: cs, Dynamic: dyn})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "secret ns/empty: no tls.crt") {
		t.Errorf("errors %v, want one for the empty Secret", errs)
	}
	where := map[string]string{}
	for _, c := range got {
		where[c.Where()] = c.Subject
	}
	want := map[string]string{
		"secret ns/web-tls":                            "CN=web.example.com",
		"webhook-ca-bundle policy/pods.policy.example": "CN=hook-ca",
		"apiservice-ca-bundle v1beta1.metrics.k8s.io":  "CN=metrics-ca",
	}
	if len(where) != len(want) {
		t.Errorf("found %v, want %v", where, want)
	}
	for k, v := range want {
		if where[k] != v {
			t.Errorf("%s: subject %q, want %q (found %v)", k, where[k], v, where)
		}
	}
	if got[0].Name != "web-tls" {
		t.Errorf("not sorted by expiry: first is %s", got[0].Where())
	}
	// Nothing of a key leaves the scan.
	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []minted{web, hook, agg} {
		block, _ := pem.Decode(m.keyPEM)
		for _, secret := range [][]byte{m.keyPEM, block.Bytes, []byte(base64.StdEncoding.EncodeToString(block.Bytes))} {
			if bytes.Contains(out, secret) {
				t.Fatal("scan results contain key material")
			}
		}
	}
}

func TestServingChainReadsAnExpiredCertificate(t *testing.T) {
	old := mint(t, "expired-server", now.Add(-400*Day), 365*Day)
	pair, err := tls.X509KeyPair(old.certPEM, old.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	got, err := ServingChain(context.Background(), "c1", &rest.Config{Host: srv.URL}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Subject != "CN=expired-server" || Assess(got[0], now).Severity != Expired {
		t.Fatalf("chain %+v", got)
	}
	if _, err := ServingChain(context.Background(), "c1", &rest.Config{Host: "http://127.0.0.1:1"}, time.Second); err == nil ||
		!strings.Contains(err.Error(), "not https") {
		t.Errorf("http server: err %v", err)
	}
}

func TestDirReadsCertificatesNotKeys(t *testing.T) {
	dir := t.TempDir()
	m := mint(t, "ca", now.Add(-time.Hour), 365*Day)
	for name, data := range map[string][]byte{"ca.crt": m.certPEM, "ca.key": []byte("not even PEM"), "notes.txt": []byte("x")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Dir("c1", dir, 2*365*Day)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != filepath.Join(dir, "ca.crt") {
		t.Fatalf("got %+v", got)
	}
	if p := Assess(got[0], now).Problems; len(p) != 1 {
		t.Errorf("lifetime mismatch not reported: %q", p)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir("c1", dir, 0); err == nil || !strings.Contains(err.Error(), "bad.pem") {
		t.Errorf("bad file: err %v", err)
	}
}
