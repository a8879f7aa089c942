package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bosun-platform/bosun/internal/version"
)

// BinDirEnv overrides the directory the control-plane binaries are read from.
const BinDirEnv = "BOSUN_BIN_DIR"

// CacheDirEnv overrides Bosun's cache root (default $XDG_CACHE_HOME/bosun or
// ~/.cache/bosun). `make tools` honours the same variable.
const CacheDirEnv = "BOSUN_CACHE_DIR"

// Binaries are the paths of the programs a local control plane runs.
type Binaries struct {
	Etcd              string
	APIServer         string
	Scheduler         string
	ControllerManager string
	Kwok              string
	// MetricsServer serves the metrics API from kwok's simulated usage
	// (Options.MetricsServer); optional: FindBinaries does not require it.
	MetricsServer string
}

// DefaultBinDir is where `make tools` puts the binaries of the pinned
// Kubernetes version: $BOSUN_BIN_DIR if set, else <cache>/bin/<version>.
func DefaultBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return dir, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "bin", version.Kubernetes), nil
}

// CacheDir is Bosun's cache root.
func CacheDir() (string, error) {
	if dir := os.Getenv(CacheDirEnv); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory (set %s), %w", CacheDirEnv, err)
	}
	return filepath.Join(base, "bosun"), nil
}

// ErrBinaryMissing is returned (wrapped) when a binary is not installed.
var ErrBinaryMissing = errors.New("control-plane binary missing")

// FindBinaries returns the binaries in dir ("" means DefaultBinDir). Every
// binary must exist and be executable; the error names each one missing and
// how to build them.
func FindBinaries(dir string) (Binaries, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultBinDir(); err != nil {
			return Binaries{}, err
		}
	}
	b := Binaries{
		Etcd:              filepath.Join(dir, "etcd"),
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Kwok:              filepath.Join(dir, "kwok"),
		MetricsServer:     filepath.Join(dir, "metrics-server"),
	}
	var missing []string
	for _, p := range []string{b.Etcd, b.APIServer, b.Scheduler, b.ControllerManager, b.Kwok} {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Base(p))
		}
	}
	if len(missing) > 0 {
		return Binaries{}, fmt.Errorf("%w: %v not found in %s; run `make tools` to build Kubernetes %s and kwok %s there, or point --bin-dir / %s at a directory that has them",
			ErrBinaryMissing, missing, dir, version.Kubernetes, version.Kwok, BinDirEnv)
	}
	return b, nil
}
