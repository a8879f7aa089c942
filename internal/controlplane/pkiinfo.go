package controlplane

import (
	"path/filepath"
	"time"
)

// CertLifetime is the lifetime every certificate of a local control plane
// is generated with (NotBefore is backdated by an hour). `bosun certs` and
// certwatch check the files on disk against it (L27).
func CertLifetime() time.Duration { return certLifetime }

// PKIDir is where a control plane started with Options.Dir dir keeps its
// certificates and keys.
func PKIDir(dir string) string { return filepath.Join(dir, "pki") }
