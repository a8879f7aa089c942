// Package certs finds every certificate a cluster depends on and says when
// each expires (L27: Urb-it lost clusters twice to expired certificates).
// Sources: the API server's serving chain (read from a TLS handshake), the
// client certificate and CA of the kubeconfig used to reach it,
// kubernetes.io/tls Secrets (only tls.crt is read; keys are never kept),
// the caBundles of admission webhooks and APIServices, and PEM files on
// disk (a local control plane's pki directory).
//
// Scanning is I/O; what to make of a certificate (Assess, Threshold) is
// pure and lives in assess.go.
package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Source says where a certificate was found.
type Source string

// Sources of certificates.
const (
	// SourceServing: the API server's serving chain, from a handshake.
	SourceServing Source = "apiserver-serving"
	// SourceKubeconfigClient: the client certificate of a kubeconfig.
	SourceKubeconfigClient Source = "kubeconfig-client"
	// SourceKubeconfigCA: the CA a kubeconfig trusts for the server.
	SourceKubeconfigCA Source = "kubeconfig-ca"
	// SourceSecret: tls.crt of a kubernetes.io/tls Secret.
	SourceSecret Source = "secret"
	// SourceWebhook: the caBundle of a validating or mutating webhook.
	SourceWebhook Source = "webhook-ca-bundle"
	// SourceAPIService: the caBundle of an aggregated APIService.
	SourceAPIService Source = "apiservice-ca-bundle"
	// SourceFile: a PEM file on disk.
	SourceFile Source = "file"
)

// Cert is one certificate and where it was found. It holds no key
// material: certificates are public.
type Cert struct {
	// Cluster is the fleet cluster ID (or the kubeconfig context).
	Cluster string `json:"cluster"`
	// Source, Namespace and Name locate the certificate: for a Secret its
	// namespace and name, for a webhook its configuration and webhook
	// name, for a file its path, for the serving chain the host.
	Source    Source `json:"source"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Index is the certificate's position in its bundle or chain (0 is
	// the leaf of a chain).
	Index int `json:"index"`
	// Subject and Issuer are the distinguished names, as strings.
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	IsCA    bool   `json:"isCA"`
	// NotBefore and NotAfter bound the certificate's validity.
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// ExpectedLifetime, when not zero, is the lifetime the certificate was
	// asked for (a generated certificate); Assess reports a mismatch.
	ExpectedLifetime time.Duration `json:"expectedLifetime,omitempty"`
}

// Lifetime is NotAfter - NotBefore.
func (c Cert) Lifetime() time.Duration { return c.NotAfter.Sub(c.NotBefore) }

// Where names the certificate for people: source, namespace/name and
// index when there is more than one in the bundle.
func (c Cert) Where() string {
	s := string(c.Source) + " " + c.Name
	if c.Namespace != "" {
		s = string(c.Source) + " " + c.Namespace + "/" + c.Name
	}
	if c.Index > 0 {
		s += fmt.Sprintf(" [%d]", c.Index)
	}
	return s
}

// ParsePEM parses every CERTIFICATE block of data. Other blocks (keys,
// parameters) are skipped without being looked at. Data with no
// certificate at all, or a certificate that does not parse, is an error.
func ParsePEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for n := 0; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return out, fmt.Errorf("PEM block %d: %w", n, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// fromX509 describes each certificate of a bundle found at one place.
func fromX509(cluster string, src Source, namespace, name string, chain []*x509.Certificate) []Cert {
	out := make([]Cert, 0, len(chain))
	for i, c := range chain {
		out = append(out, Cert{
			Cluster: cluster, Source: src, Namespace: namespace, Name: name, Index: i,
			Subject: c.Subject.String(), Issuer: c.Issuer.String(), IsCA: c.IsCA,
			NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		})
	}
	return out
}

// FromPEM describes the certificates of a PEM bundle found at one place.
func FromPEM(cluster string, src Source, namespace, name string, data []byte) ([]Cert, error) {
	chain, err := ParsePEM(data)
	if err != nil {
		where := name
		if namespace != "" {
			where = namespace + "/" + name
		}
		return nil, fmt.Errorf("%s %s: %w", src, where, err)
	}
	return fromX509(cluster, src, namespace, name, chain), nil
}

// ScanError is a source that could not be read; the scan goes on without
// it.
type ScanError struct {
	Cluster string
	Source  Source
	Err     error
}

func (e *ScanError) Error() string {
	return fmt.Sprintf("cluster %s: %s: %v", e.Cluster, e.Source, e.Err)
}

func (e *ScanError) Unwrap() error { return e.Err }
