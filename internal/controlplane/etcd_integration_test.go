//go:build integration

package controlplane_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Issue 18 item 10: etcd served plain HTTP without authentication on
// loopback, so any local user could read every Secret of a local cluster
// with one request to its gRPC gateway. Now etcd serves TLS and requires a
// client certificate from its own CA, which only the API server holds.
func TestIntegrationEtcdRequiresAClientCertificate(t *testing.T) {
	cp := startBare(t, "etcd-auth")
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, StringData: map[string]string{"password": "hunter2"}}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte("/registry/secrets/default/db"))})
	rangeReq := func(c *http.Client, scheme string, port int) (string, error) {
		resp, err := c.Post(fmt.Sprintf("%s://127.0.0.1:%d/v3/kv/range", scheme, port), "application/json", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return fmt.Sprintf("%d %s", resp.StatusCode, b), nil
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer plain.CloseIdleConnections()
	defer noCert.CloseIdleConnections()
	for _, port := range cp.Ports() {
		if got, err := rangeReq(plain, "http", port); err == nil && bytes.Contains([]byte(got), []byte(`"kvs"`)) {
			t.Errorf("port %d: etcd gives the Secret to a plain HTTP client without credentials: %.200s", port, got)
		}
		if got, err := rangeReq(noCert, "https", port); err == nil && bytes.Contains([]byte(got), []byte(`"kvs"`)) {
			t.Errorf("port %d: etcd gives the Secret to a TLS client without a client certificate: %.200s", port, got)
		}
	}

	// The API server's etcd client certificate opens etcd: the port that
	// refused the clients above is etcd's.
	pki := filepath.Join(cp.Dir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "apiserver-etcd-client.crt"), filepath.Join(pki, "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatalf("the API server's etcd client certificate: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, "etcd-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	withCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
	defer withCert.CloseIdleConnections()
	etcdPort := 0
	for _, port := range cp.Ports() {
		if got, err := rangeReq(withCert, "https", port); err == nil && bytes.Contains([]byte(got), []byte(`"kvs"`)) {
			etcdPort = port
		}
	}
	if etcdPort == 0 {
		t.Fatalf("no port of %v gave the Secret to the API server's etcd client certificate", cp.Ports())
	}
}
