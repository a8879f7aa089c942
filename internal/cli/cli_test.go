package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/version"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, args)
	return out.String(), err
}

func TestVersionJSON(t *testing.T) {
	out, err := run(t, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var info version.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if info.Kubernetes != version.Kubernetes || info.GoVersion == "" || info.Commit == "" {
		t.Errorf("info %+v", info)
	}
}

func TestVersionRejectsUnknownFormat(t *testing.T) {
	_, err := run(t, "version", "-o", "xml")
	if err == nil || !strings.Contains(err.Error(), "expected text or json") {
		t.Fatalf("err = %v", err)
	}
}

// Every command explains itself: a one-line summary in the root help and a
// longer description in its own.
func TestEveryCommandHasHelp(t *testing.T) {
	root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Short == "" || c.Long == "" {
			t.Errorf("command %q lacks Short or Long help", c.Name())
		}
	}
	out, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"up", "down", "version"} {
		if !strings.Contains(out, want) {
			t.Errorf("root help lacks %q", want)
		}
	}
}

func TestUnknownFlagIsAnError(t *testing.T) {
	if _, err := run(t, "up", "--nodez", "3"); err == nil || !strings.Contains(err.Error(), "unknown flag") {
		t.Fatalf("err = %v", err)
	}
}

// `bosun up` refuses bad flags before it looks for binaries or starts
// anything (issue 18 item 8); the empty --bin-dir would fail later.
func TestUpRefusesBadFlagsFirst(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--console", "0.0.0.0:8080"}, "loopback only"},
		{[]string{"--boot-delay", "0"}, "--boot-delay 0s: expected more than 0"},
		{[]string{"--boot-delay", "-1s"}, "--boot-delay -1s: expected a duration of 0 or more"},
	} {
		args := append([]string{"up", "--state-dir", t.TempDir(), "--bin-dir", t.TempDir()}, c.args...)
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to contain %q", c.args, err, c.want)
		}
	}
}

// lockedBuffer is a bytes.Buffer for two goroutines: the command and the
// signal watcher.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// noExit fails the test if bosun had to exit without the command.
func noExit(t *testing.T) func(int) {
	return func(status int) { t.Errorf("exit(%d) called: the command did not stop on the signal", status) }
}

func longGrace(*cobra.Command) time.Duration { return time.Hour }

func noGrace(*cobra.Command) time.Duration { return 0 }

// SIGTERM (a CI timeout) and SIGINT (Ctrl-C) stop render and lint, which
// exit 128 + the signal's number and say why. The signal is queued before
// the command starts, so the command sees a cancelled context: before
// issue 18 render and lint ignored it, finished and exited 0.
func TestSignalStopsRenderAndLint(t *testing.T) {
	cases := []struct {
		args   []string
		sig    os.Signal
		status int
	}{
		{[]string{"render", "--fleet", "../../examples/fleet"}, syscall.SIGTERM, 143},
		{[]string{"render", "--fleet", "../../examples/fleet", "--out", t.TempDir()}, os.Interrupt, 130},
		{[]string{"lint", "--fleet", "../../examples/fleet"}, syscall.SIGTERM, 143},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[:1], " ")+" "+signalName(c.sig), func(t *testing.T) {
			var out, errOut lockedBuffer
			sigs := make(chan os.Signal, 2)
			sigs <- c.sig
			root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			status := runWithSignals(root, c.args, sigs, &errOut, signalPolicy{exit: noExit(t), grace: longGrace})
			if status != c.status {
				t.Errorf("exit status %d, want %d; stderr: %s", status, c.status, errOut.String())
			}
			if want := "rendering stopped, interrupted by " + signalName(c.sig); !strings.Contains(errOut.String(), want) {
				t.Errorf("stderr %q, want it to say %q", errOut.String(), want)
			}
			if out.String() != "" {
				t.Errorf("stdout has output after the signal: %.200s", out.String())
			}
		})
	}
}

// stuckCommand returns a root command whose "stuck" subcommand ignores its
// context until release is closed.
func stuckCommand(release <-chan struct{}) *cobra.Command {
	root := &cobra.Command{Use: "bosun", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(&cobra.Command{Use: "stuck", RunE: func(*cobra.Command, []string) error {
		<-release
		return nil
	}})
	return root
}

// A command that ignores the signal does not keep bosun running: after
// its grace (here none) bosun exits with the signal's status.
func TestCommandThatIgnoresTheSignalIsLeftBehind(t *testing.T) {
	release := make(chan struct{})
	exited := make(chan int, 1)
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	var errOut lockedBuffer
	result := make(chan int)
	go func() {
		result <- runWithSignals(stuckCommand(release), []string{"stuck"}, sigs, &errOut, signalPolicy{exit: func(s int) { exited <- s }, grace: noGrace})
	}()
	if status := <-exited; status != 143 {
		t.Errorf("exit(%d), want exit(143)", status)
	}
	if want := "bosun: bosun stuck did not stop within 0s of SIGTERM, exiting"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q, want %q", errOut.String(), want)
	}
	close(release)
	<-result
}

// A second signal exits at once, whatever the grace.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	release := make(chan struct{})
	exited := make(chan int, 1)
	sigs := make(chan os.Signal, 2)
	sigs <- os.Interrupt
	sigs <- os.Interrupt
	var errOut lockedBuffer
	result := make(chan int)
	go func() {
		result <- runWithSignals(stuckCommand(release), []string{"stuck"}, sigs, &errOut, signalPolicy{exit: func(s int) { exited <- s }, grace: longGrace})
	}()
	if status := <-exited; status != 130 {
		t.Errorf("exit(%d), want exit(130)", status)
	}
	if want := "bosun: SIGINT again, exiting now"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q, want %q", errOut.String(), want)
	}
	close(release)
	if status := <-result; status != 0 {
		t.Errorf("a command that returns nil after the signal: status %d, want 0", status)
	}
}

// `timeout` signals bosun and then its process group: the two signals
// are one, and the command keeps its grace to stop.
func TestSignalsAtOnceAreOne(t *testing.T) {
	release := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGTERM
	var errOut lockedBuffer
	result := make(chan int)
	go func() {
		result <- runWithSignals(stuckCommand(release), []string{"stuck"}, sigs, &errOut, signalPolicy{exit: noExit(t), grace: longGrace, repeatAfter: time.Hour})
	}()
	// The watcher takes the second signal from sigs, then the command
	// stops: once sigs is empty the duplicate was seen and ignored.
	for len(sigs) > 0 {
		runtime.Gosched()
	}
	close(release)
	if status := <-result; status != 0 {
		t.Errorf("status %d, want 0 (the command returned nil)", status)
	}
	if errOut.String() != "" {
		t.Errorf("stderr %q, want nothing", errOut.String())
	}
}

// Without a signal the status is the command's.
func TestStatusWithoutSignal(t *testing.T) {
	var out, errOut lockedBuffer
	root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if status := runWithSignals(root, []string{"version", "-o", "xml"}, make(chan os.Signal), &errOut, signalPolicy{exit: noExit(t), grace: longGrace}); status != 1 {
		t.Errorf("status %d, want 1", status)
	}
	root = NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if status := runWithSignals(root, []string{"version"}, make(chan os.Signal), &errOut, signalPolicy{exit: noExit(t), grace: longGrace}); status != 0 {
		t.Errorf("status %d, want 0", status)
	}
}

// Every command has a grace of a second unless it stops processes or
// servers it started.
func TestStopGraces(t *testing.T) {
	root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for path := range stopGraces {
		cmd, _, err := root.Find(strings.Fields(path)[1:])
		if err != nil || cmd.CommandPath() != path {
			t.Errorf("stopGraces names %q, which is not a command", path)
		}
	}
	for _, args := range [][]string{{"render"}, {"lint"}, {"diff"}, {"apply"}} {
		cmd, _, _ := root.Find(args)
		if g := stopGrace(cmd); g != DefaultStopGrace {
			t.Errorf("%s: grace %s, want %s", cmd.CommandPath(), g, DefaultStopGrace)
		}
	}
}
