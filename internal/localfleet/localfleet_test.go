package localfleet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/agent"
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
				return agent.Options{Controllers: []string{agent.ControllerDownscaler}}, nil
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
	if _, err := renderClusters(f, clusters); err != nil {
		t.Fatal(err)
	}
}
