// Package deploy holds the manifests that install Bosun's components, so
// that tests (and the product) use exactly the files that ship.
package deploy

import (
	"embed"
	"fmt"
	"io/fs"
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
