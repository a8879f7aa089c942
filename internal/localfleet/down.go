package localfleet

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bosun-platform/bosun/internal/controlplane"
)

// Down stops a running `bosun up` on stateDir: it sends SIGTERM to the up
// process and waits (up to grace) for it to stop its clusters cleanly, then
// stops by PID any process still recorded under the state directory (left
// behind if `bosun up` was killed hard). With nothing running it says so and
// succeeds.
func Down(stateDir string, grace time.Duration, out io.Writer) error {
	wasUp := locked(stateDir)
	if wasUp {
		pid, err := readPID(stateDir)
		if err != nil {
			return fmt.Errorf("bosun up holds %s but its pid is unknown, %w", stateDir, err)
		}
		fmt.Fprintf(out, "Stopping bosun up (pid %d)\n", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signalling bosun up (pid %d), %w", pid, err)
		}
		deadline := time.Now().Add(grace)
		for locked(stateDir) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if locked(stateDir) {
			fmt.Fprintf(out, "bosun up (pid %d) did not stop within %s; stopping its processes by PID\n", pid, grace)
		}
	}
	clusters, err := filepath.Glob(filepath.Join(stateDir, clustersDir, "*"))
	if err != nil {
		return fmt.Errorf("listing clusters, %w", err)
	}
	var errs []error
	total := 0
	for _, dir := range clusters {
		stopped, err := controlplane.StopRecorded(dir, 10*time.Second)
		for _, p := range stopped {
			fmt.Fprintf(out, "stopped %s (pid %d)\n", p.Name, p.PID)
		}
		total += len(stopped)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	switch {
	case !wasUp && total == 0:
		fmt.Fprintf(out, "bosun up is not running (state dir %s); nothing to stop.\n", stateDir)
	default:
		fmt.Fprintln(out, "Stopped; nothing is left running.")
	}
	_ = os.Remove(KubeconfigPath(stateDir))
	return nil
}
