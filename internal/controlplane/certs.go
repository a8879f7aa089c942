package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certLifetime is long enough for any local session; a local control plane
// is recreated, not renewed.
const certLifetime = 365 * 24 * time.Hour

// pki holds the paths of the key material one control plane uses.
type pki struct {
	CACert, ServingCert, ServingKey string
	SAKey, SAPub                    string
	CAPEM                           []byte

	// EtcdCACert signs etcd's serving and peer certificate (EtcdCert,
	// EtcdKey) and the API server's etcd client certificate
	// (EtcdClientCert, EtcdClientKey). It is a CA of its own, not CACert,
	// so that no certificate the API server trusts for its clients opens
	// etcd, and no etcd certificate logs into the API server.
	EtcdCACert, EtcdCert, EtcdKey string
	EtcdClientCert, EtcdClientKey string

	// FrontProxyCACert signs the certificate (FrontProxyClientCert,
	// FrontProxyClientKey) with which the API server's aggregation layer
	// calls extension API servers such as metrics-server, passing the
	// user in request headers. A CA of its own: a client certificate of
	// CACert must not be able to claim any user through those headers.
	FrontProxyCACert, FrontProxyClientCert, FrontProxyClientKey string
}

// frontProxyClientName is the common name of the aggregation layer's
// client certificate, the one name extension API servers accept
// (--requestheader-allowed-names).
const frontProxyClientName = "front-proxy-client"

// writePKI creates under dir (0700, every file 0600): a CA, an API server
// serving certificate signed by it and a service-account signing key pair;
// for etcd a CA of its own, etcd's serving and peer certificate and the
// API server's etcd client certificate; and for the aggregation layer a
// front-proxy CA and the API server's front-proxy client certificate. ECDSA P-256 keys keep it fast
// (about a millisecond per key).
func writePKI(dir string, now time.Time) (pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return pki{}, fmt.Errorf("creating pki dir, %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { //nolint:gosec // G302: a directory needs x; MkdirAll keeps an existing dir's mode
		return pki{}, fmt.Errorf("restricting pki dir, %w", err)
	}
	p := pki{
		CACert:         filepath.Join(dir, "ca.crt"),
		ServingCert:    filepath.Join(dir, "apiserver.crt"),
		ServingKey:     filepath.Join(dir, "apiserver.key"),
		SAKey:          filepath.Join(dir, "sa.key"),
		SAPub:          filepath.Join(dir, "sa.pub"),
		EtcdCACert:     filepath.Join(dir, "etcd-ca.crt"),
		EtcdCert:       filepath.Join(dir, "etcd.crt"),
		EtcdKey:        filepath.Join(dir, "etcd.key"),
		EtcdClientCert: filepath.Join(dir, "apiserver-etcd-client.crt"),
		EtcdClientKey:  filepath.Join(dir, "apiserver-etcd-client.key"),

		FrontProxyCACert:     filepath.Join(dir, "front-proxy-ca.crt"),
		FrontProxyClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKey:  filepath.Join(dir, "front-proxy-client.key"),
	}
	ca, err := newCA("bosun-local-ca", now)
	if err != nil {
		return pki{}, err
	}
	p.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
	srv, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)},
	}, now)
	if err != nil {
		return pki{}, fmt.Errorf("API server serving certificate: %w", err)
	}
	etcdCA, err := newCA("bosun-local-etcd-ca", now)
	if err != nil {
		return pki{}, err
	}
	// One certificate serves etcd's client and peer listeners; peers
	// present it as clients too.
	etcdSrv, err := etcdCA.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "etcd"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}, now)
	if err != nil {
		return pki{}, fmt.Errorf("etcd serving certificate: %w", err)
	}
	etcdClient, err := etcdCA.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-etcd-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, now)
	if err != nil {
		return pki{}, fmt.Errorf("etcd client certificate: %w", err)
	}
	fpCA, err := newCA("bosun-local-front-proxy-ca", now)
	if err != nil {
		return pki{}, err
	}
	fpClient, err := fpCA.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: frontProxyClientName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, now)
	if err != nil {
		return pki{}, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pki{}, fmt.Errorf("generating service-account key, %w", err)
	}
	certBlock := func(der []byte) func() (*pem.Block, error) {
		return func() (*pem.Block, error) { return &pem.Block{Type: "CERTIFICATE", Bytes: der}, nil }
	}
	keyBlock := func(k *ecdsa.PrivateKey) func() (*pem.Block, error) {
		return func() (*pem.Block, error) { return ecKeyBlock(k) }
	}
	files := []struct {
		path  string
		block func() (*pem.Block, error)
	}{
		{p.CACert, certBlock(ca.der)},
		{p.ServingCert, certBlock(srv.der)},
		{p.ServingKey, keyBlock(srv.key)},
		{p.SAKey, keyBlock(saKey)},
		{p.SAPub, func() (*pem.Block, error) {
			der, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
			return &pem.Block{Type: "PUBLIC KEY", Bytes: der}, err
		}},
		{p.EtcdCACert, certBlock(etcdCA.der)},
		{p.EtcdCert, certBlock(etcdSrv.der)},
		{p.EtcdKey, keyBlock(etcdSrv.key)},
		{p.EtcdClientCert, certBlock(etcdClient.der)},
		{p.EtcdClientKey, keyBlock(etcdClient.key)},
		{p.FrontProxyCACert, certBlock(fpCA.der)},
		{p.FrontProxyClientCert, certBlock(fpClient.der)},
		{p.FrontProxyClientKey, keyBlock(fpClient.key)},
	}
	for _, f := range files {
		block, err := f.block()
		if err != nil {
			return pki{}, fmt.Errorf("encoding %s, %w", filepath.Base(f.path), err)
		}
		if err := os.WriteFile(f.path, pem.EncodeToMemory(block), 0o600); err != nil {
			return pki{}, fmt.Errorf("writing %s, %w", filepath.Base(f.path), err)
		}
	}
	return p, nil
}

// keyPair is a certificate (DER) and its key; for a CA, cert is parsed.
type keyPair struct {
	der  []byte
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	next int64 // the serial number of the next certificate a CA issues
}

// newCA creates a self-signed CA certificate and key.
func newCA(name string, now time.Time) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating %s key, %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing %s certificate, %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing %s certificate, %w", name, err)
	}
	return &keyPair{der: der, key: key, cert: cert, next: 2}, nil
}

// issue signs a leaf certificate from tmpl (subject, usages and names) with
// a new key, valid from an hour ago for certLifetime.
func (ca *keyPair) issue(tmpl *x509.Certificate, now time.Time) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key, %w", err)
	}
	tmpl.SerialNumber = big.NewInt(ca.next)
	ca.next++
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(certLifetime)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing, %w", err)
	}
	return &keyPair{der: der, key: key}, nil
}

func ecKeyBlock(k *ecdsa.PrivateKey) (*pem.Block, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, nil
}
