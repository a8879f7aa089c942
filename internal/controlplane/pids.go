package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bosun-platform/bosun/internal/atomicfile"
)

// pidsFile lists, in a control plane's directory, the processes it started,
// so another process (`bosun down`) can stop them by PID.
const pidsFile = "pids.json"

// ProcessInfo identifies one process a control plane started.
type ProcessInfo struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Binary  string `json:"binary"`
	LogPath string `json:"log"`
}

func writePIDs(dir string, procs []ProcessInfo) error {
	data, err := json.MarshalIndent(procs, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding pids, %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, pidsFile), data, 0o600)
}

// ReadPIDs returns the processes recorded in a control plane's directory;
// none (and no error) if nothing was recorded.
func ReadPIDs(dir string) ([]ProcessInfo, error) {
	data, err := os.ReadFile(filepath.Join(dir, pidsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s, %w", pidsFile, err)
	}
	var procs []ProcessInfo
	if err := json.Unmarshal(data, &procs); err != nil {
		return nil, fmt.Errorf("parsing %s in %s, %w", pidsFile, dir, err)
	}
	return procs, nil
}

// Alive reports whether the recorded process still runs the recorded binary.
// Checking the executable guards against a PID reused by another program.
func (p ProcessInfo) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID))
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(p.Binary)
	if err != nil {
		want = p.Binary
	}
	return exe == want || exe == p.Binary
}

// StopRecorded stops every still-running process recorded in dir: SIGTERM,
// then SIGKILL after grace. It returns the processes it signalled. Processes
// whose PID now belongs to another program are left alone.
func StopRecorded(dir string, grace time.Duration) ([]ProcessInfo, error) {
	procs, err := ReadPIDs(dir)
	if err != nil {
		return nil, err
	}
	var stopped []ProcessInfo
	var errs []error
	// Reverse start order: kwok and controllers first, etcd last.
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if !p.Alive() {
			continue
		}
		if err := stopPID(p, grace); err != nil {
			errs = append(errs, err)
			continue
		}
		stopped = append(stopped, p)
	}
	return stopped, errors.Join(errs...)
}

func stopPID(p ProcessInfo, grace time.Duration) error {
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s (pid %d), %w", p.Name, p.PID, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s (pid %d), %w", p.Name, p.PID, err)
	}
	for i := 0; i < 100 && p.Alive(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
