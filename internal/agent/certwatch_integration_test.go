//go:build integration

package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/agent/certwatch"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// The certificate watch runs under its shipped RBAC
// (deploy/agent/90-rbac-certwatch.yaml) as the bosun-agent service
// account: it lists the TLS Secret, announces its 7-day threshold with an
// Event on it, and keeps its state in bosun-system (L27).
func TestCertWatchUnderShippedRBAC(t *testing.T) {
	env := testenv.Get(t)
	applyShippedRBAC(t, env)
	ns := env.Namespace(t)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "rbac.example.com"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(6 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-tls", Namespace: ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:bosun-system:bosun-agent"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			RESTConfig: cfg, Controllers: []string{agentcmd.ControllerCertWatch}, Interval: 200 * time.Millisecond, Logger: quiet,
			CertWatch: certwatch.Options{StateNamespace: "bosun-system", StateConfigMap: certwatch.DefaultStateConfigMap},
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	testenv.Eventually(t, 60*time.Second, func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			done <- err
			return false, err
		default:
		}
		evs, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + certwatch.ReasonExpiring})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == "Secret" && e.InvolvedObject.Name == "rbac-tls" {
				return true, nil
			}
		}
		return false, nil
	}, "a CertificateExpiring event on the Secret")
	if _, err := env.Client.CoreV1().ConfigMaps("bosun-system").Get(context.Background(), certwatch.DefaultStateConfigMap, metav1.GetOptions{}); err != nil {
		t.Errorf("state ConfigMap: %v", err)
	}
}
