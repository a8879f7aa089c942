package casgrpc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/casgrpc"
	pb "github.com/bosun-platform/bosun/internal/casgrpc/externalgrpcpb"
)

// caConfig has the fields and tags cluster-autoscaler reads the file with.
type caConfig struct {
	Address     string           `json:"address"`
	Key         string           `json:"key"`
	Cert        string           `json:"cert"`
	Cacert      string           `json:"cacert"`
	GRPCTimeout *metav1.Duration `json:"grpc_timeout,omitempty"`
}

func TestCloudConfig(t *testing.T) {
	data, err := casgrpc.CloudConfig{Address: "127.0.0.1:4242", Key: "/k.pem", Cert: "/c.pem", CACert: "/ca.pem", GRPCTimeout: 30 * time.Second}.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var got caConfig
	if err := yaml.UnmarshalStrict(data, &got); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if got.Address != "127.0.0.1:4242" || got.Key != "/k.pem" || got.Cert != "/c.pem" || got.Cacert != "/ca.pem" || got.GRPCTimeout.Duration != 30*time.Second {
		t.Errorf("parsed %+v from\n%s", got, data)
	}
	if _, err := (casgrpc.CloudConfig{Address: "a:1", Cert: "/c.pem"}).YAML(); err == nil {
		t.Error("cert without key and CA: want an error")
	}
	if _, err := (casgrpc.CloudConfig{}).YAML(); err == nil {
		t.Error("no address: want an error")
	}
}

// pki is a CA with a server certificate for 127.0.0.1 and a client one.
type pki struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{
		pool:   pool,
		server: leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")}),
		client: leaf(3, x509.ExtKeyUsageClientAuth, nil),
	}
}

func TestMutualTLS(t *testing.T) {
	k := newPKI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _, err := casgrpc.Serve(ctx, newFake(t), "127.0.0.1:0", casgrpc.Options{
		Cluster: "c1", Log: slog.New(slog.DiscardHandler),
		TLS: &tls.Config{Certificates: []tls.Certificate{k.server}, ClientCAs: k.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(certs []tls.Certificate) pb.CloudProviderClient {
		// As cluster-autoscaler dials: server name = host of the address.
		creds := credentials.NewTLS(&tls.Config{ServerName: "127.0.0.1", Certificates: certs, RootCAs: k.pool, MinVersion: tls.VersionTLS12})
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return pb.NewCloudProviderClient(conn)
	}
	if _, err := dial([]tls.Certificate{k.client}).NodeGroups(call(t), &pb.NodeGroupsRequest{}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if _, err := dial(nil).NodeGroups(call(t), &pb.NodeGroupsRequest{}); err == nil {
		t.Fatal("without a client certificate: want an error")
	}
}
