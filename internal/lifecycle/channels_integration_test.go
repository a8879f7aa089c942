//go:build integration

package lifecycle_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/channels"
	"github.com/bosun-platform/bosun/internal/cli"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// gitFleet is a fleet in a temporary git repository built with go-git.
type gitFleet struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newGitFleet(t *testing.T) *gitFleet {
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &gitFleet{t: t, dir: dir, repo: repo}
}

func (g *gitFleet) write(rel, content string) {
	g.t.Helper()
	p := filepath.Join(g.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gitFleet) commit(msg string, paths ...string) string {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, p := range paths {
		if _, err := wt.Add(p); err != nil {
			g.t.Fatal(err)
		}
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		g.t.Fatal(err)
	}
	return h.String()
}

const channelCluster = `id: test
environment: test
provider: local
region: local
kubernetesVersion: "1.33"
channel: beta
nodePools:
  - name: workers
    role: worker
    applicationGroup: web
    lifecycle: on-demand
    instanceTypes: [m6a.large]
    zones: [local-a]
    minSize: 1
    maxSize: 2
lint:
  suppress:
    - {rule: L13, reason: integration test fleet}
    - {rule: L05, reason: integration test fleet}
    - {rule: L07, reason: integration test fleet}
    - {rule: L21, reason: integration test fleet}
    - {rule: L23, reason: integration test fleet}
    - {rule: L46, reason: integration test fleet}
    - {rule: L37, reason: integration test fleet}
    - {rule: L58, reason: integration test fleet}
`

func releaseYAML(value string) string {
	return `apiVersion: v1
kind: Namespace
metadata:
  name: channels-test
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: release
  namespace: channels-test
data:
  value: ` + value + "\n"
}

// TestChannelsAndPromotion (L43, L02): a cluster on channel beta is
// rendered at beta's revision from channels.yaml, not at the working
// tree; its status shows the revision; `bosun promote beta --to stable`
// is refused without an e2e pass at that revision, refused after a failed
// one, allowed after a pass (channels.yaml then pins stable); when beta
// moves on, the old e2e pass no longer counts.
func TestChannelsAndPromotion(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	for _, ref := range [][2]string{{apply.InventoryNamespace, apply.InventoryName}, {lifecycle.StatusNamespace, lifecycle.StatusName}} {
		if err := env.Client.CoreV1().ConfigMaps(ref[0]).Delete(ctx, ref[1], metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	g := newGitFleet(t)
	g.write("clusters/test.yaml", channelCluster)
	g.write("manifests/release/release.yaml", releaseYAML("one"))
	revOne := g.commit("one", "clusters/test.yaml", "manifests/release/release.yaml")
	g.write("manifests/release/release.yaml", releaseYAML("two"))
	revTwo := g.commit("two", "manifests/release/release.yaml")
	g.write("channels.yaml", "channels:\n  beta: "+revOne[:8]+"\n")
	// The working tree renders "three"; beta is pinned to "one".
	g.write("manifests/release/release.yaml", releaseYAML("three"))

	c, err := lifecycle.New(lifecycle.Options{
		FleetDir: g.dir, Interval: time.Second, HealthTimeout: time.Minute, PollEvery: 200 * time.Millisecond, Log: quiet,
		Checkouts: &channels.Checkouts{Root: t.TempDir()},
		Connector: lifecycle.RESTConnector{Config: func(*fleet.Cluster) (*rest.Config, error) { return env.RESTConfig(), nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	pass := func(wantValue, wantRev string) lifecycle.Status {
		t.Helper()
		res, err := c.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil {
			t.Fatalf("pass: %v", res[0].Err)
		}
		cm, err := env.Client.CoreV1().ConfigMaps("channels-test").Get(ctx, "release", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["value"] != wantValue {
			t.Errorf("ConfigMap release has %q, want %q (the fleet at channel beta's revision)", cm.Data["value"], wantValue)
		}
		live, err := lifecycle.ReadStatus(ctx, env.Client)
		if err != nil {
			t.Fatal(err)
		}
		st := live.Status
		if st.ChannelRevision != wantRev || st.Channel != "beta" || st.Phase != lifecycle.PhaseReconciled {
			t.Fatalf("status %+v: want channel beta at revision %s, Reconciled", st, wantRev)
		}
		return st
	}
	st := pass("one", revOne)

	promote := func() (string, error) {
		var out, errOut strings.Builder
		err := cli.Run(ctx, iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
			[]string{"promote", "beta", "--to", "stable", "--fleet", g.dir, "--kubeconfig", env.Kubeconfig})
		return out.String(), err
	}
	channelsFile := func() string {
		b, err := os.ReadFile(filepath.Join(g.dir, channels.File))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if _, err := promote(); err == nil || !strings.Contains(err.Error(), "test: no e2e result") {
		t.Fatalf("promote without e2e: %v, want a refusal naming cluster test", err)
	}
	failed := lifecycle.E2EResult{Cluster: "test", Revision: revOne, Version: st.AppliedVersion, Started: time.Now(), Passed: false,
		Checks: []lifecycle.CheckResult{{Name: "deployment-rollout", Result: lifecycle.CheckPassed}, {Name: "pdb-blocks-eviction", Result: lifecycle.CheckFailed}}}
	if err := lifecycle.WriteE2E(ctx, env.Client, failed); err != nil {
		t.Fatal(err)
	}
	if _, err := promote(); err == nil || !strings.Contains(err.Error(), "failed at this revision: pdb-blocks-eviction") {
		t.Fatalf("promote after a failed e2e: %v, want a refusal naming the failed check", err)
	}
	if strings.Contains(channelsFile(), "stable") {
		t.Fatal("a refused promotion changed channels.yaml")
	}
	passed := failed
	passed.Passed = true
	passed.Checks = []lifecycle.CheckResult{{Name: "deployment-rollout", Result: lifecycle.CheckPassed}}
	if err := lifecycle.WriteE2E(ctx, env.Client, passed); err != nil {
		t.Fatal(err)
	}
	// The controller's next pass leaves the e2e result alone.
	pass("one", revOne)
	out, err := promote()
	if err != nil {
		t.Fatalf("promote after an e2e pass: %v", err)
	}
	if !strings.Contains(out, "commit it") || !strings.Contains(channelsFile(), "stable: \""+revOne+"\"") {
		t.Fatalf("promote said %q; channels.yaml:\n%s", out, channelsFile())
	}

	// beta moves on to "two": the pass at "one" no longer counts.
	chans, err := channels.Open(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := chans.Set("beta", revTwo); err != nil {
		t.Fatal(err)
	}
	pass("two", revTwo)
	if _, err := promote(); err == nil || !strings.Contains(err.Error(), "the last e2e ran at revision \""+revOne) {
		t.Fatalf("promote of a new revision with an old e2e pass: %v, want a refusal", err)
	}
}
