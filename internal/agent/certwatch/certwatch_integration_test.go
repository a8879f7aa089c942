//go:build integration

package certwatch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/certs"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

// mint returns a self-signed certificate for cn valid from notBefore to
// notAfter, PEM-encoded, and its key, PEM-encoded (for tls.key only).
func mint(t *testing.T, cn string, notBefore, notAfter time.Time) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter, DNSNames: []string{cn}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// gauge reads a gauge's value (-1 when it cannot be read).
func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// drain returns the events recorded so far.
func drain(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// L27: a Secret whose certificate expires in 6 days gets one Event for the
// 7-day threshold, however often the watch passes and across a restart
// (the state is in a ConfigMap), then one for the 1-day threshold; the
// gauge says how many seconds are left.
func TestCertificateExpiringInSixDays(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	crt, key := mint(t, "web.example.com", now.Add(-time.Hour), now.Add(6*certs.Day))
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "web-tls", Namespace: ns},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(now)
	rec := record.NewFakeRecorder(100)
	build := func(reg prometheus.Registerer) *Controller {
		c, err := New(controller.Deps{
			Client: env.Client, Dynamic: env.Dynamic, Clock: clk, Recorder: rec, Registry: reg,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Cluster: "itest",
		}, Options{StateNamespace: ns, StateConfigMap: DefaultStateConfigMap})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ours := func(events []string) []string {
		var out []string
		for _, e := range events {
			if strings.Contains(e, ns+"/web-tls") {
				out = append(out, e)
			}
		}
		return out
	}
	c := build(prometheus.NewRegistry())
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	got := ours(drain(rec))
	if len(got) != 1 || !strings.HasPrefix(got[0], "Warning "+ReasonExpiring) || !strings.Contains(got[0], "7-day threshold") {
		t.Fatalf("events after the first pass %q, want one Warning %s for the 7-day threshold", got, ReasonExpiring)
	}
	left := gauge(c.expiry.WithLabelValues("itest", string(certs.SourceSecret), ns, "web-tls", "CN=web.example.com"))
	if want := (6 * certs.Day).Seconds(); left != want {
		t.Errorf("bosun_certificate_expiry_seconds = %v, want %v (6 days)", left, want)
	}

	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := build(prometheus.NewRegistry())
	if _, err := restarted.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ours(drain(rec)); len(got) != 0 {
		t.Fatalf("events on later passes and after a restart %q, want none (7 days announced once)", got)
	}
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, DefaultStateConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("state ConfigMap: %v", err)
	}
	if _, ok := cm.Data[stateKey(certs.Cert{Source: certs.SourceSecret, Namespace: ns, Name: "web-tls", NotAfter: now.Add(6 * certs.Day)})]; !ok {
		t.Errorf("state %v lacks the Secret's certificate", keys(cm.Data))
	}

	clk.Step(5*certs.Day + 12*time.Hour)
	if _, err := restarted.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ours(drain(rec)); len(got) != 1 || !strings.Contains(got[0], "1-day threshold") {
		t.Fatalf("events 12 hours before expiry %q, want one for the 1-day threshold", got)
	}
	left = gauge(restarted.expiry.WithLabelValues("itest", string(certs.SourceSecret), ns, "web-tls", "CN=web.example.com"))
	if want := (12 * time.Hour).Seconds(); left != want {
		t.Errorf("bosun_certificate_expiry_seconds = %v, want %v (12 hours)", left, want)
	}
}

// Dry-run announces nothing and writes no state.
func TestDryRunWritesNothing(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	crt, key := mint(t, "soon.example.com", now.Add(-time.Hour), now.Add(2*certs.Day))
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "soon-tls", Namespace: ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(100)
	c, err := New(controller.Deps{Client: env.Client, Clock: clocktesting.NewFakeClock(now), Recorder: rec, DryRun: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Cluster: "itest"}, Options{StateNamespace: ns, StateConfigMap: DefaultStateConfigMap})
	if err != nil {
		t.Fatal(err)
	}
	actions, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range actions {
		found = found || strings.Contains(a, ns+"/soon-tls")
	}
	if !found {
		t.Errorf("dry-run actions %q lack the Secret's 7-day threshold", actions)
	}
	if ev := drain(rec); len(ev) != 0 {
		t.Errorf("dry-run recorded events %q", ev)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, DefaultStateConfigMap, metav1.GetOptions{}); err == nil {
		t.Error("dry-run wrote the state ConfigMap")
	}
}
