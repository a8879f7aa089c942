//go:build integration

package certs

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

// L27 against a real API server: the serving chain, the kubeconfig's
// client certificate and CA, a TLS Secret about to expire, and the local
// control plane's certificates on disk with the lifetime they were asked
// for.
func TestIntegrationScanFindsEveryCertificateOfALocalControlPlane(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	soon := mint(t, "soon.example.com", time.Now().Add(-Day), 3*Day)
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, "soon", soon), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "plain"}, StringData: map[string]string{"password": "x"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, errs := Scan(ctx, Target{
		Cluster: "test", Config: env.RESTConfig(), Client: env.Client, Dynamic: env.Dynamic,
		PKIDir: controlplane.PKIDir(env.ControlPlane.Dir), PKILifetime: controlplane.CertLifetime(),
	})
	if len(errs) > 0 {
		t.Fatalf("scan errors: %v", errs)
	}
	bySource := map[Source][]Cert{}
	for _, c := range got {
		bySource[c.Source] = append(bySource[c.Source], c)
	}
	if s := bySource[SourceServing]; len(s) == 0 || s[0].Subject != "CN=kube-apiserver" {
		t.Errorf("serving chain %+v", s)
	}
	if len(bySource[SourceKubeconfigCA]) != 1 {
		t.Errorf("kubeconfig CA: %+v", bySource[SourceKubeconfigCA])
	}
	var secret *Cert
	for i, c := range bySource[SourceSecret] {
		if c.Namespace == ns && c.Name == "soon" {
			secret = &bySource[SourceSecret][i]
		}
	}
	if secret == nil {
		t.Fatalf("TLS Secret not found in %+v", bySource[SourceSecret])
	}
	if a := Assess(*secret, time.Now()); a.Severity != Critical || a.Threshold != 7*Day {
		t.Errorf("secret expiring in 2 days: %s threshold %s", a.Severity, a.Threshold)
	}
	files := bySource[SourceFile]
	if len(files) < 4 {
		t.Fatalf("pki files: %+v", files)
	}
	for _, c := range files {
		if p := Assess(c, time.Now()).Problems; len(p) > 0 {
			t.Errorf("%s: %v", c.Where(), p)
		}
	}
}
