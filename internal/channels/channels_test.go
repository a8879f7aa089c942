package channels_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/bosun-platform/bosun/internal/channels"
)

// repo is a temporary git repository built with go-git; the fleet lives
// in its subdirectory "fleet".
type repo struct {
	t    *testing.T
	root string
	r    *git.Repository
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	root := t.TempDir()
	r, err := git.PlainInit(root, false)
	if err != nil {
		t.Fatal(err)
	}
	return &repo{t: t, root: root, r: r}
}

func (r *repo) fleet() string { return filepath.Join(r.root, "fleet") }

func (r *repo) write(rel, content string) {
	r.t.Helper()
	p := filepath.Join(r.fleet(), rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *repo) commit(msg string) string {
	r.t.Helper()
	wt, err := r.r.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddGlob("fleet"); err != nil {
		r.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func TestResolveAndTree(t *testing.T) {
	r := newRepo(t)
	r.write("clusters/a.yaml", "id: a\n")
	first := r.commit("first")
	r.write("clusters/a.yaml", "id: a\n# second\n")
	second := r.commit("second")
	r.write("channels.yaml", "# pinned revisions\nchannels:\n  stable: "+first[:10]+"\n")

	c, err := channels.Open(r.fleet())
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsGit() {
		t.Fatal("the fleet is in a git repository")
	}
	rev, tree, err := c.Resolve("stable")
	if err != nil || rev != first || tree {
		t.Fatalf("stable resolves to %q (follows tree %v, %v), want %s", rev, tree, err, first)
	}
	// dev follows the working tree, which has an uncommitted channels.yaml.
	if rev, tree, _ := c.Resolve("dev"); rev != second+channels.DirtySuffix || !tree {
		t.Errorf("dev resolves to %q (follows tree %v), want %s%s", rev, tree, second, channels.DirtySuffix)
	}
	if rev, _, _ := c.Resolve("beta"); !strings.HasPrefix(rev, second) {
		t.Errorf("beta without an entry resolves to %q, want the working tree (%s...)", rev, second)
	}
	co := &channels.Checkouts{Root: t.TempDir()}
	dir, err := c.Tree(co, first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "clusters", "a.yaml"))
	if err != nil || string(b) != "id: a\n" {
		t.Fatalf("clusters/a.yaml at the first commit: %q, %v", b, err)
	}
	again, err := c.Tree(co, first)
	if err != nil || again != dir {
		t.Errorf("second Tree: %q, %v; want the cached %q", again, err, dir)
	}
	if _, err := c.Tree(co, first[:10]); err == nil {
		t.Error("a short hash was accepted by Tree")
	}
}

func TestSetKeepsCommentsAndOtherChannels(t *testing.T) {
	r := newRepo(t)
	r.write("clusters/a.yaml", "id: a\n")
	rev := r.commit("first")
	r.write("channels.yaml", "# pinned revisions\nchannels:\n  stable: "+rev+" # last good\n")
	c, err := channels.Open(r.fleet())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("beta", rev); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(r.fleet(), channels.File))
	for _, want := range []string{"# pinned revisions", "# last good", "beta: \"" + rev + "\"", "stable: " + rev} {
		if !strings.Contains(string(b), want) {
			t.Errorf("channels.yaml lacks %q:\n%s", want, b)
		}
	}
	c2, err := channels.Open(r.fleet())
	if err != nil || c2.Revisions["beta"] != rev {
		t.Fatalf("reopened: %v, %v", c2, err)
	}
	if err := c.Set("dev", rev); err == nil {
		t.Error("dev was pinned")
	}
}

func TestNotGitHasOneRevision(t *testing.T) {
	dir := t.TempDir()
	c, err := channels.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range channels.Order {
		if rev, tree, err := c.Resolve(ch); rev != channels.WorkingTree || !tree || err != nil {
			t.Errorf("%s: %q %v %v, want %s", ch, rev, tree, err, channels.WorkingTree)
		}
	}
}

func TestRepositoryWithoutCommit(t *testing.T) {
	r := newRepo(t)
	r.write("clusters/a.yaml", "id: a\n")
	c, err := channels.Open(r.fleet())
	if err != nil {
		t.Fatal(err)
	}
	if rev, tree, err := c.Resolve("dev"); rev != channels.WorkingTree || !tree || err != nil {
		t.Errorf("dev in a repository without commits: %q %v %v, want %s", rev, tree, err, channels.WorkingTree)
	}
}

func TestBadChannelsFile(t *testing.T) {
	for name, content := range map[string]string{
		"unknown channel": "channels:\n  gamma: abc\n",
		"dev pinned":      "channels:\n  dev: abc\n",
		"empty revision":  "channels:\n  beta: \"\"\n",
		"unknown key":     "channel:\n  beta: abc\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, channels.File), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := channels.Open(dir)
			if err == nil || !strings.Contains(err.Error(), channels.File) {
				t.Errorf("error %v, want one naming %s", err, channels.File)
			}
		})
	}
	r := newRepo(t)
	r.write("clusters/a.yaml", "id: a\n")
	r.commit("first")
	r.write("channels.yaml", "channels:\n  stable: no-such-revision\n")
	c, err := channels.Open(r.fleet())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Resolve("stable"); err == nil || !strings.Contains(err.Error(), "channels.stable") {
		t.Errorf("unknown revision: %v, want an error naming channels.stable", err)
	}
}
