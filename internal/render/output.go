package render

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// VersionFile is written next to a cluster's rendered manifests.
const VersionFile = ".bosun-version"

// WriteStream writes res as one multi-document YAML stream: a header with
// the cluster and version, then every file under a "# Source:" comment.
func WriteStream(w io.Writer, res *Result) error {
	if _, err := fmt.Fprintf(w, "# bosun render: cluster %s version %s\n", res.Cluster.ID, res.Version); err != nil {
		return fmt.Errorf("writing render output, %w", err)
	}
	for _, f := range res.Files {
		if _, err := fmt.Fprintf(w, "---\n# Source: %s\n%s", f.Path, withNewline(strings.TrimLeft(f.Content, "\n"))); err != nil {
			return fmt.Errorf("writing render output, %w", err)
		}
	}
	return nil
}

// WriteDir writes res under dir/<cluster-id>/: one file per template at its
// path below manifests/, deletions.yaml when there are deletions, and the
// version in .bosun-version. The cluster's directory is replaced, so files
// no longer rendered disappear.
func WriteDir(dir string, res *Result) error {
	root := filepath.Join(dir, res.Cluster.ID)
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("clearing %s, %w", root, err)
	}
	for _, f := range res.Files {
		p := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(f.Path, "manifests/")))
		if err := writeFile(p, []byte(f.Content)); err != nil {
			return err
		}
	}
	if len(res.Deletions.Before)+len(res.Deletions.After) > 0 {
		data, err := yaml.Marshal(res.Deletions)
		if err != nil {
			return fmt.Errorf("encoding deletions, %w", err)
		}
		if err := writeFile(filepath.Join(root, "deletions.yaml"), data); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(root, VersionFile), []byte(res.Version+"\n"))
}

func writeFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil { //nolint:gosec // G301: rendered manifests are meant to be read and committed
		return fmt.Errorf("creating %s, %w", filepath.Dir(p), err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil { //nolint:gosec // G306: rendered manifests hold no secrets (lint L-rules refuse Secrets with data) and are meant to be read
		return fmt.Errorf("writing %s, %w", p, err)
	}
	return nil
}

func withNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
