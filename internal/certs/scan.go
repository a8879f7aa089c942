package certs

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Target is one cluster to scan and how to reach it. Every field but
// Cluster is optional; a source whose field is nil is not scanned.
type Target struct {
	// Cluster names the cluster in the results.
	Cluster string
	// Config is the client config used to reach the API server: its Host
	// is dialled for the serving chain, and its client certificate and CA
	// are reported as the kubeconfig's.
	Config *rest.Config
	// Client lists Secrets and webhook configurations.
	Client kubernetes.Interface
	// Dynamic lists APIServices.
	Dynamic dynamic.Interface
	// PKIDir is a directory of PEM certificates (*.crt, *.pem) on disk,
	// e.g. a local control plane's pki directory.
	PKIDir string
	// PKILifetime is the lifetime the certificates in PKIDir were asked
	// for (0: unknown, not checked).
	PKILifetime time.Duration
	// DialTimeout bounds the TLS handshake (default 10 s).
	DialTimeout time.Duration
}

// secretPageSize bounds how many Secrets one list request returns: a
// cluster's Secrets can be large, and only tls.crt of each is kept.
const secretPageSize = 200

// Scan finds every certificate of t. A source that fails is returned as a
// *ScanError and the others are still scanned. Results are sorted by
// expiry, soonest first.
func Scan(ctx context.Context, t Target) ([]Cert, []error) {
	var out []Cert
	var errs []error
	add := func(src Source, cs []Cert, err error) {
		out = append(out, cs...)
		if err != nil {
			errs = append(errs, &ScanError{Cluster: t.Cluster, Source: src, Err: err})
		}
	}
	if t.Config != nil {
		cs, err := ServingChain(ctx, t.Cluster, t.Config, t.DialTimeout)
		add(SourceServing, cs, err)
		cs, err = kubeconfigCerts(t.Cluster, t.Config)
		add(SourceKubeconfigClient, cs, err)
	}
	if t.Client != nil {
		cs, err := tlsSecrets(ctx, t.Cluster, t.Client)
		add(SourceSecret, cs, err)
		cs, err = webhookBundles(ctx, t.Cluster, t.Client)
		add(SourceWebhook, cs, err)
	}
	if t.Dynamic != nil {
		cs, err := apiServiceBundles(ctx, t.Cluster, t.Dynamic)
		add(SourceAPIService, cs, err)
	}
	if t.PKIDir != "" {
		cs, err := Dir(t.Cluster, t.PKIDir, t.PKILifetime)
		add(SourceFile, cs, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].NotAfter.Before(out[j].NotAfter) })
	return out, errs
}

// ServingChain connects to the API server of cfg and returns the chain it
// presents. The chain is read, not trusted: verification is skipped so
// that an expired or unknown certificate is still reported (it is the
// thing being looked for); no request is sent over the connection.
func ServingChain(ctx context.Context, cluster string, cfg *rest.Config, timeout time.Duration) ([]Cert, error) {
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Host == "" {
		if !strings.Contains(cfg.Host, "://") {
			u, err = url.Parse("https://" + cfg.Host)
		}
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("server %q: expected an https URL", cfg.Host)
		}
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("server %q: not https, no certificate to read", cfg.Host)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	serverName := cfg.ServerName
	if serverName == "" {
		serverName = u.Hostname()
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: timeout},
		// Reading the chain is the point, including an expired one;
		// nothing is sent on this connection.
		Config: &tls.Config{ServerName: serverName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // G402: the chain is inspected, not trusted
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("TLS handshake with %s: %w", host, err)
	}
	defer conn.Close()
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil, errors.New("not a TLS connection")
	}
	return fromX509(cluster, SourceServing, "", host, tc.ConnectionState().PeerCertificates), nil
}

// kubeconfigCerts returns the client certificate and CA of cfg, from
// inline data or files.
func kubeconfigCerts(cluster string, cfg *rest.Config) ([]Cert, error) {
	var out []Cert
	var errs []error
	read := func(src Source, data []byte, file string) {
		name := "inline"
		if len(data) == 0 && file != "" {
			name = file
			b, err := os.ReadFile(file) //nolint:gosec // G304: the kubeconfig names the file
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", src, err))
				return
			}
			data = b
		}
		if len(data) == 0 {
			return
		}
		cs, err := FromPEM(cluster, src, "", name, data)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, cs...)
	}
	read(SourceKubeconfigClient, cfg.CertData, cfg.CertFile)
	read(SourceKubeconfigCA, cfg.CAData, cfg.CAFile)
	return out, errors.Join(errs...)
}

// tlsSecrets reads tls.crt of every kubernetes.io/tls Secret, a page at a
// time. Nothing else of a Secret is kept: tls.key is never copied, cached
// or logged, and errors name the Secret, never its data.
func tlsSecrets(ctx context.Context, cluster string, cs kubernetes.Interface) ([]Cert, error) {
	var out []Cert
	var errs []error
	opts := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeTLS), Limit: secretPageSize}
	for {
		list, err := cs.CoreV1().Secrets("").List(ctx, opts)
		if err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("listing TLS Secrets: %w", err))...)
		}
		for i := range list.Items {
			s := &list.Items[i]
			if s.Type != corev1.SecretTypeTLS {
				continue // a fake or old server may ignore the field selector
			}
			crt := s.Data[corev1.TLSCertKey]
			if len(crt) == 0 {
				errs = append(errs, fmt.Errorf("secret %s/%s: no %s", s.Namespace, s.Name, corev1.TLSCertKey))
				continue
			}
			c, err := FromPEM(cluster, SourceSecret, s.Namespace, s.Name, crt)
			if err != nil {
				errs = append(errs, err)
			}
			out = append(out, c...)
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	return out, errors.Join(errs...)
}

// webhookBundles reads the caBundle of every validating and mutating
// webhook. The name is "<configuration>/<webhook>".
func webhookBundles(ctx context.Context, cluster string, cs kubernetes.Interface) ([]Cert, error) {
	var out []Cert
	var errs []error
	addBundle := func(name string, bundle []byte) {
		if len(bundle) == 0 {
			return // the webhook trusts the system roots
		}
		c, err := FromPEM(cluster, SourceWebhook, "", name, bundle)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, c...)
	}
	v, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing ValidatingWebhookConfigurations: %w", err))
	} else {
		for _, cfg := range v.Items {
			for _, w := range cfg.Webhooks {
				addBundle(cfg.Name+"/"+w.Name, w.ClientConfig.CABundle)
			}
		}
	}
	m, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing MutatingWebhookConfigurations: %w", err))
	} else {
		for _, cfg := range m.Items {
			for _, w := range cfg.Webhooks {
				addBundle(cfg.Name+"/"+w.Name, w.ClientConfig.CABundle)
			}
		}
	}
	return out, errors.Join(errs...)
}

// APIServiceResource is apiregistration.k8s.io/v1 apiservices.
var APIServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// apiServiceBundles reads spec.caBundle of every APIService.
func apiServiceBundles(ctx context.Context, cluster string, dyn dynamic.Interface) ([]Cert, error) {
	list, err := dyn.Resource(APIServiceResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing APIServices: %w", err)
	}
	var out []Cert
	var errs []error
	for _, item := range list.Items {
		b64, _, err := unstructured.NestedString(item.Object, "spec", "caBundle")
		if err != nil || b64 == "" {
			continue // local APIServices have none
		}
		bundle, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			errs = append(errs, fmt.Errorf("apiservice %s: spec.caBundle: expected base64: %w", item.GetName(), err))
			continue
		}
		c, err := FromPEM(cluster, SourceAPIService, "", item.GetName(), bundle)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, c...)
	}
	return out, errors.Join(errs...)
}

// Dir reads every *.crt and *.pem file directly in dir (keys, *.key, are
// never opened). lifetime, when not zero, is the lifetime the
// certificates were generated with; Assess reports any that differ.
func Dir(cluster, dir string, lifetime time.Duration) ([]Cert, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Cert
	var errs []error
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".crt" && ext != ".pem") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path) //nolint:gosec // G304: files of the directory the caller named
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cs, err := FromPEM(cluster, SourceFile, "", path, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range cs {
			cs[i].ExpectedLifetime = lifetime
		}
		out = append(out, cs...)
	}
	return out, errors.Join(errs...)
}
