package casgrpc

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CloudConfig is the file cluster-autoscaler's externalgrpc provider reads
// through --cloud-config: where the server is and, for mutual TLS, the
// client's key and certificate and the CA that signed the server's
// certificate. Without Cert, cluster-autoscaler connects in plaintext.
type CloudConfig struct {
	// Address is host:port of the server, as Serve returned it. With TLS,
	// the server's certificate must be valid for host.
	Address string
	// Key, Cert and CACert are file paths, all three or none.
	Key, Cert, CACert string
	// GRPCTimeout bounds every call (cluster-autoscaler's default when 0).
	GRPCTimeout time.Duration
}

// YAML renders the file.
func (c CloudConfig) YAML() ([]byte, error) {
	if c.Address == "" {
		return nil, fmt.Errorf("cluster-autoscaler cloud config: the address is empty")
	}
	tls := 0
	for _, p := range []string{c.Key, c.Cert, c.CACert} {
		if p != "" {
			tls++
		}
	}
	if tls != 0 && tls != 3 {
		return nil, fmt.Errorf("cluster-autoscaler cloud config: key, cert and cacert go together")
	}
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, strconv.Quote(v)) }
	line("address", c.Address)
	if tls == 3 {
		line("key", c.Key)
		line("cert", c.Cert)
		line("cacert", c.CACert)
	}
	if c.GRPCTimeout > 0 {
		line("grpc_timeout", c.GRPCTimeout.String())
	}
	return []byte(b.String()), nil
}
