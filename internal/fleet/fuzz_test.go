package fleet

import (
	"testing"
	"testing/fstest"
)

// FuzzLoad feeds arbitrary cluster files, defaults and manifests to the
// loader: it must return a fleet or an error, never panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodCluster), []byte("a: b\n"), []byte("apiVersion: v1\n"))
	f.Add([]byte("id: [\n"), []byte("{{ if }}"), []byte("{{ define \"x\" }}{{ end }}"))
	f.Add([]byte("nodePools:\n  - taints: [{}]\nlint: {suppress: [{}]}"), []byte(""), []byte("{{"))
	f.Add([]byte("&a [*a, *a]"), []byte("- 1"), []byte("---\n---"))
	f.Fuzz(func(t *testing.T, cluster, defaults, manifest []byte) {
		fsys := fstest.MapFS{
			"clusters/c1.yaml":     {Data: cluster},
			"defaults.yaml":        {Data: defaults},
			"manifests/app/a.yaml": {Data: manifest},
			"vars/c1.yaml":         {Data: defaults},
		}
		fl, err := LoadFS(fsys, "fuzz")
		if err == nil && fl == nil {
			t.Fatal("nil fleet without an error")
		}
	})
}
