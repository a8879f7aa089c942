// Package deploy holds the manifests that install Bosun's components, so
// that tests (and the product) use exactly the files that ship.
package deploy

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed agent/*.yaml
var agentFS embed.FS

// AgentManifests returns the agent's YAML documents in apply order
// (namespace, service account, RBAC, Deployment), with their file names.
func AgentManifests() ([]Document, error) {
	files, err := fs.Glob(agentFS, "agent/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing agent manifests, %w", err)
	}
	sort.Strings(files)
	var out []Document
	for _, f := range files {
		data, err := agentFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s, %w", f, err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			out = append(out, Document{Source: fmt.Sprintf("%s#%d", f, i), YAML: []byte(doc)})
		}
	}
	return out, nil
}

// Document is one YAML document and where it came from.
type Document struct {
	Source string
	YAML   []byte
}

// AgentOptions choose what RenderAgent installs.
type AgentOptions struct {
	// Controllers are the controllers the Deployment runs (required).
	Controllers []string
	// RBAC are the files (agent/NN-rbac-NAME.yaml) with the RBAC of
	// Controllers: the agent's registration table names them
	// (internal/agent.RenderManifests fills them in). Other RBAC files
	// are left out (least privilege); agent/10-rbac-base.yaml, which every
	// agent needs, is always in.
	RBAC []string
	// Namespace replaces bosun-system (default bosun-system).
	Namespace string
	// Image replaces the container image (default as shipped).
	Image string
	// Args are added to the agent's command line after --controllers.
	Args []string
}

const (
	shippedNamespace   = "bosun-system"
	shippedImage       = "ghcr.io/bosun-platform/bosun:latest"
	shippedControllers = "--controllers=downscaler,janitor"
	// baseRBAC is the RBAC every agent needs (its Lease, Events).
	baseRBAC = "agent/10-rbac-base.yaml"
)

// RenderAgent returns the agent's manifests as one multi-document YAML
// stream, with the RBAC files o.RBAC only (least privilege). Which
// controllers exist, which file holds whose RBAC, and which controllers
// cannot run in a pod is the agent's registration table's to say: use
// internal/agent.RenderManifests.
func RenderAgent(o AgentOptions) ([]byte, error) {
	if len(o.Controllers) == 0 {
		return nil, fmt.Errorf("no controllers to install")
	}
	if o.Namespace == "" {
		o.Namespace = shippedNamespace
	}
	want := map[string]bool{}
	for _, f := range o.RBAC {
		if !isRBACFile(f) {
			return nil, fmt.Errorf("RBAC file %q: expected agent/NN-rbac-NAME.yaml", f)
		}
		if _, err := agentFS.ReadFile(f); err != nil {
			return nil, fmt.Errorf("RBAC file %q: %w", f, err)
		}
		want[f] = true
	}
	docs, err := AgentManifests()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, d := range docs {
		file, _, _ := strings.Cut(d.Source, "#")
		if isRBACFile(file) && file != baseRBAC && !want[file] {
			continue
		}
		text := strings.ReplaceAll(string(d.YAML), "namespace: "+shippedNamespace, "namespace: "+o.Namespace)
		text = strings.ReplaceAll(text, "name: "+shippedNamespace+"\n", "name: "+o.Namespace+"\n")
		if o.Image != "" {
			text = strings.ReplaceAll(text, "image: "+shippedImage, "image: "+o.Image)
		}
		controllers := "--controllers=" + strings.Join(o.Controllers, ",")
		for _, a := range o.Args {
			controllers += "\n        - " + yamlString(a)
		}
		text = strings.ReplaceAll(text, shippedControllers, controllers)
		b.WriteString("---\n# Source: " + d.Source + "\n")
		b.WriteString(strings.TrimSpace(text) + "\n")
	}
	return []byte(b.String()), nil
}

// yamlString quotes an argument for a YAML list item.
func yamlString(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a valid YAML scalar
	return string(b)
}

// isRBACFile reports whether file holds RBAC rules (agent/NN-rbac-*.yaml).
func isRBACFile(file string) bool {
	base := path.Base(file)
	_, rest, ok := strings.Cut(base, "-")
	return ok && strings.HasPrefix(file, "agent/") && strings.HasPrefix(rest, "rbac-") && strings.HasSuffix(base, ".yaml")
}

// RBACFiles returns the files with RBAC rules, sorted, agent/10-rbac-base.yaml
// (always installed) left out.
func RBACFiles() ([]string, error) {
	files, err := fs.Glob(agentFS, "agent/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing agent manifests, %w", err)
	}
	var out []string
	for _, f := range files {
		if isRBACFile(f) && f != baseRBAC {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}
