package channels

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"gopkg.in/yaml.v3"

	"github.com/bosun-platform/bosun/internal/atomicfile"
)

// File is the name of the channels file in the fleet directory.
const File = "channels.yaml"

// WorkingTree is the revision of a channel that follows the working tree
// of a fleet that is not in a git repository (its one implicit revision).
const WorkingTree = "working-tree"

// DirtySuffix marks the dev revision of a git fleet whose working tree
// has changes under the fleet directory: HEAD's hash plus this suffix.
const DirtySuffix = "-dirty"

// Order is the channels from least to most trusted; a change is promoted
// one step at a time.
var Order = []string{"dev", "alpha", "beta", "stable"}

// Rank returns the position of a channel in Order, -1 if unknown.
func Rank(channel string) int {
	for i, c := range Order {
		if c == channel {
			return i
		}
	}
	return -1
}

// Channels is a fleet's channels file and, when the fleet is in a git
// repository, the repository.
type Channels struct {
	// Dir is the fleet directory.
	Dir string
	// Revisions maps a channel to the revision written in channels.yaml
	// (as written: hash, tag or branch).
	Revisions map[string]string

	repo    *git.Repository
	subpath string // the fleet directory inside the repository, "" at its root
}

// Open reads dir/channels.yaml (absent: every channel follows the working
// tree) and finds the git repository holding dir, if any.
func Open(dir string) (*Channels, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("fleet directory %s: %w", dir, err)
	}
	c := &Channels{Dir: abs, Revisions: map[string]string{}}
	if err := c.readFile(); err != nil {
		return nil, err
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening the git repository of fleet %s, %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("git repository of fleet %s: %w", dir, err)
	}
	root, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, err
	}
	c.repo = repo
	if rel != "." {
		c.subpath = filepath.ToSlash(rel)
	}
	return c, nil
}

// fileDoc is the shape of channels.yaml.
type fileDoc struct {
	Channels map[string]string `yaml:"channels"`
}

func (c *Channels) readFile() error {
	path := filepath.Join(c.Dir, File)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var doc fileDoc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	for ch, rev := range doc.Channels {
		switch {
		case Rank(ch) < 0:
			return fmt.Errorf("%s: channels.%s: expected one of %s", path, ch, strings.Join(Order, ", "))
		case ch == "dev":
			return fmt.Errorf("%s: channels.dev: dev always follows the working tree; remove the entry", path)
		case strings.TrimSpace(rev) == "":
			return fmt.Errorf("%s: channels.%s: expected a git revision (commit, tag or branch)", path, ch)
		}
		c.Revisions[ch] = strings.TrimSpace(rev)
	}
	return nil
}

// IsGit reports whether the fleet is in a git repository.
func (c *Channels) IsGit() bool { return c.repo != nil }

// Resolve returns the revision a channel follows: the full commit hash of
// its channels.yaml entry; for dev or a channel without an entry, the
// working tree's revision (HEAD's hash, with DirtySuffix when the fleet
// directory has uncommitted changes) and followsTree true. A fleet outside
// git resolves every channel to WorkingTree.
func (c *Channels) Resolve(channel string) (rev string, followsTree bool, err error) {
	if Rank(channel) < 0 {
		return "", false, fmt.Errorf("channel %q: expected one of %s", channel, strings.Join(Order, ", "))
	}
	if c.repo == nil {
		return WorkingTree, true, nil
	}
	if want, ok := c.Revisions[channel]; ok {
		h, err := c.repo.ResolveRevision(plumbing.Revision(want))
		if err != nil {
			return "", false, fmt.Errorf("%s: channels.%s: revision %q: %w", filepath.Join(c.Dir, File), channel, want, err)
		}
		return h.String(), false, nil
	}
	rev, err = c.TreeRevision()
	return rev, true, err
}

// TreeRevision is the revision of the working tree: HEAD's commit hash,
// with DirtySuffix when files under the fleet directory differ from it;
// WorkingTree in a repository without a commit.
func (c *Channels) TreeRevision() (string, error) {
	if c.repo == nil {
		return WorkingTree, nil
	}
	head, err := c.repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return WorkingTree, nil // a repository without a commit yet
	}
	if err != nil {
		return "", fmt.Errorf("git HEAD of fleet %s: %w", c.Dir, err)
	}
	wt, err := c.repo.Worktree()
	if err != nil {
		return "", err
	}
	st, err := wt.Status()
	if err != nil {
		return "", fmt.Errorf("git status of fleet %s: %w", c.Dir, err)
	}
	for path, fs := range st {
		if c.subpath != "" && path != c.subpath && !strings.HasPrefix(path, c.subpath+"/") {
			continue
		}
		if fs.Worktree != git.Unmodified || fs.Staging != git.Unmodified {
			return head.Hash().String() + DirtySuffix, nil
		}
	}
	return head.Hash().String(), nil
}

// Checkouts writes the fleet directory as it was at a commit into a cache
// directory, once per commit, and returns where.
type Checkouts struct {
	// Root is where the trees go, one directory per commit.
	Root string

	mu sync.Mutex
}

// Tree returns a directory holding the fleet directory at commit rev (a
// full hash from Resolve), writing it under Root on first use. Files keep
// their executable bit; symbolic links are refused (a fleet has none).
func (c *Channels) Tree(co *Checkouts, rev string) (string, error) {
	if c.repo == nil {
		return "", fmt.Errorf("fleet %s is not in a git repository: it has no revision %s", c.Dir, rev)
	}
	h := plumbing.NewHash(rev)
	if h.IsZero() || h.String() != rev {
		return "", fmt.Errorf("revision %q: expected a full commit hash", rev)
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	key := rev
	if c.subpath != "" {
		key += "-" + strings.ReplaceAll(c.subpath, "/", "_")
	}
	dst := filepath.Join(co.Root, key)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	commit, err := c.repo.CommitObject(h)
	if err != nil {
		return "", fmt.Errorf("commit %s of fleet %s: %w", rev, c.Dir, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return "", fmt.Errorf("tree of commit %s: %w", rev, err)
	}
	if c.subpath != "" {
		if tree, err = tree.Tree(c.subpath); err != nil {
			return "", fmt.Errorf("fleet directory %s at commit %s: %w", c.subpath, rev, err)
		}
	}
	if err := os.MkdirAll(co.Root, 0o750); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(co.Root, ".tmp-"+rev[:12]+"-")
	if err != nil {
		return "", err
	}
	err = tree.Files().ForEach(func(f *object.File) error { return writeFile(tmp, f) })
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("writing fleet %s at commit %s: %w", c.Dir, rev, err)
	}
	return dst, nil
}

func writeFile(root string, f *object.File) error {
	if f.Mode == filemode.Symlink || f.Mode == filemode.Submodule {
		return fmt.Errorf("%s: symbolic links and submodules are not supported in a fleet", f.Name)
	}
	p := filepath.Join(root, filepath.FromSlash(f.Name))
	if !strings.HasPrefix(p, root+string(filepath.Separator)) {
		return fmt.Errorf("%s: path leaves the fleet directory", f.Name)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	r, err := f.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	mode := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		mode = 0o755
	}
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// Set writes channel = rev to channels.yaml, keeping the file's other
// entries and comments (the file is created if absent). Committing it is
// the user's job.
func (c *Channels) Set(channel, rev string) error {
	if Rank(channel) <= 0 {
		return fmt.Errorf("channel %q: expected alpha, beta or stable (dev follows the working tree)", channel)
	}
	path := filepath.Join(c.Dir, File)
	var root yaml.Node
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := yaml.Unmarshal(b, &root); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if root.Kind == 0 {
		root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: expected a mapping with the key channels", path)
	}
	chans := mapValue(doc, "channels")
	if chans.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: channels: expected a mapping of channel to revision", path)
	}
	v := mapValue(chans, channel)
	v.Kind, v.Tag, v.Value, v.Style = yaml.ScalarNode, "!!str", rev, yaml.DoubleQuotedStyle
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return err
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	c.Revisions[channel] = rev
	return nil
}

// mapValue returns the value node of key in a mapping node, adding an
// empty mapping (for "channels") or scalar under key when absent.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	v := &yaml.Node{Kind: yaml.ScalarNode}
	if key == "channels" {
		v = &yaml.Node{Kind: yaml.MappingNode}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
	return v
}
