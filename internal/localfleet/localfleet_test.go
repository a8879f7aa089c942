package localfleet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/render"
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
	if _, err := renderClusters(context.Background(), f, clusters); err != nil {
		t.Fatal(err)
	}
}

// The example fleet runs the overprovisioner in its agent; `bosun up` runs
// it in-process with the same ConfigMap, with or without
// cluster-autoscaler.
func TestAgentControllersRunTheFleetsOverprovisioner(t *testing.T) {
	f, clusters, err := selectClusters(Options{})
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := renderClusters(context.Background(), f, clusters)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range clusters {
		cm, err := renderedOverprovisioner(rendered[cl.ID])
		if err != nil || cm != "overprovisioning/overprovisioning" {
			t.Errorf("%s: overprovisioner ConfigMap %q, %v; want overprovisioning/overprovisioning", cl.ID, cm, err)
		}
		for _, ca := range []bool{false, true} {
			if got := agentControllers(ca, cm); !slices.Contains(got, agent.ControllerOverprovisioner) {
				t.Errorf("%s, cluster-autoscaler %v: controllers %v without the overprovisioner", cl.ID, ca, got)
			}
		}
	}
	if got := agentControllers(false, ""); slices.Contains(got, agent.ControllerOverprovisioner) {
		t.Errorf("controllers %v: the overprovisioner without a fleet that runs it", got)
	}
}

func TestRenderedOverprovisioner(t *testing.T) {
	agentDeployment := func(args ...string) *render.Object {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "bosun-agent", "namespace": "platform"},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "agent", "args": toAny(args),
					"env": []any{map[string]any{"name": "POD_NAMESPACE", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.namespace"}}}}},
			}}}},
		}}
		return &render.Object{Object: u}
	}
	for _, c := range []struct {
		name string
		objs []*render.Object
		want string
		err  string
	}{
		{"no agent", nil, "", ""},
		{"the agent without the overprovisioner", []*render.Object{agentDeployment("agent", "--controllers=downscaler")}, "", ""},
		{"the default ConfigMap in the agent's namespace", []*render.Object{agentDeployment("agent", "--controllers=downscaler,overprovisioner")}, "platform/overprovisioning", ""},
		{"the flag", []*render.Object{agentDeployment("agent", "--controllers=overprovisioner", "--overprovisioner-configmap=headroom/rules")}, "headroom/rules", ""},
		{"a malformed flag", []*render.Object{agentDeployment("agent", "--controllers=overprovisioner", "--overprovisioner-configmap=rules")}, "", "expected namespace/name"},
	} {
		got, err := renderedOverprovisioner(&render.Result{Objects: c.objs})
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %q, %v; want %q, error %q", c.name, got, err, c.want, c.err)
		}
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
