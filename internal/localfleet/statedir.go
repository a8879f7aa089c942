// Package localfleet runs Bosun's local fleet: real control planes on this
// machine with kwok nodes, started by `bosun up` and stopped by Ctrl-C or
// `bosun down`. Its state directory (default ~/.bosun) records what runs, by
// PID, so another shell can stop it.
package localfleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// StateDirEnv overrides the default state directory.
const StateDirEnv = "BOSUN_HOME"

// DefaultStateDir is $BOSUN_HOME or ~/.bosun.
func DefaultStateDir() (string, error) {
	if dir := os.Getenv(StateDirEnv); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory (set %s), %w", StateDirEnv, err)
	}
	return filepath.Join(home, ".bosun"), nil
}

// ResolveStateDir returns dir, or the default state directory when dir is
// empty (the --state-dir flag of every command that reaches the fleet).
func ResolveStateDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return DefaultStateDir()
}

// Layout of the state directory.
const (
	lockFile     = "up.lock"
	pidFile      = "up.pid"
	kubeconfig   = "kubeconfig"
	clustersDir  = "clusters"
	localCluster = "local"
)

// ClusterDir is where a cluster's control plane keeps its files.
func ClusterDir(stateDir, name string) string { return filepath.Join(stateDir, clustersDir, name) }

// KubeconfigPath is the fleet's kubeconfig in the state directory.
func KubeconfigPath(stateDir string) string { return filepath.Join(stateDir, kubeconfig) }

// ErrAlreadyRunning is returned when another `bosun up` holds the state
// directory.
var ErrAlreadyRunning = errors.New("bosun up is already running")

// lock is the exclusive hold of a state directory by one `bosun up`. The
// kernel drops it when the process dies, so a crash never leaves it stale.
type lock struct{ f *os.File }

func acquireLock(stateDir string) (*lock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir, %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock, %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid, _ := readPID(stateDir)
			return nil, fmt.Errorf("%w (pid %d, state dir %s); stop it with `bosun down` or Ctrl-C in its shell", ErrAlreadyRunning, pid, stateDir)
		}
		return nil, fmt.Errorf("locking %s, %w", stateDir, err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing pid file, %w", err)
	}
	return &lock{f: f}, nil
}

func (l *lock) release(stateDir string) {
	_ = os.Remove(filepath.Join(stateDir, pidFile))
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// locked reports whether some process holds the state directory's lock.
func locked(stateDir string) bool {
	f, err := os.OpenFile(filepath.Join(stateDir, lockFile), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

func readPID(stateDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, pidFile))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", filepath.Join(stateDir, pidFile), strings.TrimSpace(string(data)))
	}
	return pid, nil
}
