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
}

// writePKI creates a CA, an API server serving certificate signed by it and
// a service-account signing key pair under dir. ECDSA keys keep it fast.
func writePKI(dir string, now time.Time) (pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return pki{}, fmt.Errorf("creating pki dir, %w", err)
	}
	p := pki{
		CACert:      filepath.Join(dir, "ca.crt"),
		ServingCert: filepath.Join(dir, "apiserver.crt"),
		ServingKey:  filepath.Join(dir, "apiserver.key"),
		SAKey:       filepath.Join(dir, "sa.key"),
		SAPub:       filepath.Join(dir, "sa.pub"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pki{}, fmt.Errorf("generating CA key, %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bosun-local-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return pki{}, fmt.Errorf("signing CA certificate, %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return pki{}, fmt.Errorf("parsing CA certificate, %w", err)
	}
	p.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pki{}, fmt.Errorf("generating serving key, %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return pki{}, fmt.Errorf("signing serving certificate, %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pki{}, fmt.Errorf("generating service-account key, %w", err)
	}
	files := []struct {
		path  string
		block func() (*pem.Block, error)
	}{
		{p.CACert, func() (*pem.Block, error) { return &pem.Block{Type: "CERTIFICATE", Bytes: caDER}, nil }},
		{p.ServingCert, func() (*pem.Block, error) { return &pem.Block{Type: "CERTIFICATE", Bytes: srvDER}, nil }},
		{p.ServingKey, func() (*pem.Block, error) { return ecKeyBlock(srvKey) }},
		{p.SAKey, func() (*pem.Block, error) { return ecKeyBlock(saKey) }},
		{p.SAPub, func() (*pem.Block, error) {
			der, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
			return &pem.Block{Type: "PUBLIC KEY", Bytes: der}, err
		}},
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

func ecKeyBlock(k *ecdsa.PrivateKey) (*pem.Block, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, nil
}
