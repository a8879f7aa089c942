package localfleet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/agentcmd"
)

func TestLockIsExclusiveAndReleased(t *testing.T) {
	dir := t.TempDir()
	l, err := acquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !locked(dir) {
		t.Fatal("locked() false while held")
	}
	if pid, err := readPID(dir); err != nil || pid != os.Getpid() {
		t.Fatalf("pid file = %d, %v", pid, err)
	}
	_, err = acquireLock(dir)
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second lock: %v, want ErrAlreadyRunning", err)
	}
	if !strings.Contains(err.Error(), "bosun down") {
		t.Errorf("error %q should say how to stop the running one", err)
	}
	l.release(dir)
	if locked(dir) {
		t.Fatal("still locked after release")
	}
	if _, err := os.Stat(filepath.Join(dir, pidFile)); !os.IsNotExist(err) {
		t.Errorf("pid file left after release: %v", err)
	}
}

func TestDownWithNothingRunning(t *testing.T) {
	var out bytes.Buffer
	if err := Down(t.TempDir(), time.Second, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "not running") {
		t.Errorf("output %q", out.String())
	}
}

func TestUpRejectsBadInputBeforeStarting(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		opts Options
		want string
	}{
		"unknown cluster":     {Options{Clusters: []string{"nope"}}, `no cluster "nope"`},
		"aws cluster":         {Options{Clusters: []string{"aws-prod-eu1"}}, `provider "aws"`},
		"missing fleet":       {Options{FleetDir: "/does/not/exist"}, "loading fleet"},
		"missing binaries":    {Options{BinDir: t.TempDir()}, "make tools"},
		"fleet without local": {Options{FleetDir: "testdata/aws-only"}, "no cluster with provider: local"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			c.opts.StateDir = state
			if c.opts.BinDir == "" {
				c.opts.BinDir = bin
			}
			c.opts.Out = &bytes.Buffer{}
			c.opts.ParseAgent = func([]string, map[string]string) (agent.Options, error) {
				return agent.Options{Controllers: []string{agentcmd.ControllerDownscaler}}, nil
			}
			err := Up(t.Context(), c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if entries, _ := os.ReadDir(state); len(entries) != 0 {
				t.Errorf("bad input changed the state dir: %v", entries)
			}
		})
	}
}

// Issue 18 item 8: `bosun up --console 0.0.0.0:8080` used to be refused
// only after every cluster had started (33 s). Every flag is now checked
// first, every problem reported at once, and no process starts: the fake
// binaries record each run, and none may happen.
func TestUpValidatesFlagsBeforeStartingAnything(t *testing.T) {
	bin, ran := t.TempDir(), filepath.Join(t.TempDir(), "ran")
	for _, name := range []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok"} {
		script := "#!/bin/sh\necho " + name + " >> " + ran + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		opts Options
		want []string
	}{
		"console on all interfaces": {Options{ConsoleAddr: "0.0.0.0:8080"}, []string{`--console 0.0.0.0:8080: bosun up serves the console on loopback only`}},
		"console on a LAN address":  {Options{ConsoleAddr: "192.168.1.10:8080"}, []string{"loopback only"}},
		"console without host":      {Options{ConsoleAddr: ":8080"}, []string{"loopback only"}},
		"console without port":      {Options{ConsoleAddr: "127.0.0.1"}, []string{`--console "127.0.0.1": expected host:port`}},
		"console port not a number": {Options{ConsoleAddr: "127.0.0.1:http"}, []string{`expected a port number from 0 to 65535, got "http"`}},
		"console port too big":      {Options{ConsoleAddr: "localhost:70000"}, []string{`got "70000"`}},
		"negative boot delay":       {Options{BootDelay: -time.Second}, []string{"--boot-delay -1s: expected a duration of 0 or more"}},
		"empty cluster id":          {Options{Clusters: []string{"local-staging", ""}}, []string{"--clusters: expected cluster IDs separated by commas, got an empty one"}},
		"cluster listed twice":      {Options{Clusters: []string{"local-staging", "local-staging"}}, []string{`--clusters: cluster "local-staging" is listed twice`}},
		"every problem at once": {
			Options{ConsoleAddr: "0.0.0.0:8080", BootDelay: -time.Second, Clusters: []string{"local-prod", "local-prod"}},
			[]string{"--console 0.0.0.0:8080", "--boot-delay -1s", `cluster "local-prod" is listed twice`},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			c.opts.StateDir, c.opts.BinDir, c.opts.Out = state, bin, &bytes.Buffer{}
			err := Up(t.Context(), c.opts)
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if data, err := os.ReadFile(ran); err == nil {
				t.Errorf("processes started before the flags were checked:\n%s", data)
				os.Remove(ran)
			}
			if entries, _ := os.ReadDir(state); len(entries) != 0 {
				t.Errorf("bad flags changed the state dir: %v", entries)
			}
		})
	}
}

func TestValidateAcceptsLoopbackConsoles(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:8080", "localhost:0", "[::1]:9000", "127.0.0.2:8080"} {
		if err := (Options{ConsoleAddr: addr, BootDelay: 0, Clusters: []string{"a", "b"}}).Validate(); err != nil {
			t.Errorf("--console %q: %v", addr, err)
		}
	}
}

func TestEmbeddedFleetHasLocalClusters(t *testing.T) {
	_, clusters, err := selectClusters(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(clusters) < 1 {
		t.Fatal("embedded fleet has no local cluster")
	}
	for _, c := range clusters {
		if c.Provider != "local" {
			t.Errorf("selected %s with provider %s", c.ID, c.Provider)
		}
	}
}

// The embedded fleet must render for every local cluster: `bosun up`
// renders before it starts anything.
func TestEmbeddedFleetRenders(t *testing.T) {
	f, clusters, err := selectClusters(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := renderClusters(context.Background(), f, clusters); err != nil {
		t.Fatal(err)
	}
}
