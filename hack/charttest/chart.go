package charttest

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// ChartDir is charts/bosun-agent in this checkout.
func ChartDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "bosun-agent")
}

// Load loads the chart from ChartDir.
func Load() (*chart.Chart, error) {
	c, err := loader.Load(ChartDir())
	if err != nil {
		return nil, fmt.Errorf("loading %s, %w", ChartDir(), err)
	}
	return c, nil
}

// Template renders the chart as `helm template` would, for a release
// named bosun-agent in namespace, and returns its manifest.
func Template(ctx context.Context, namespace string, values map[string]any) (string, error) {
	c, err := Load()
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.ReleaseName = "bosun-agent"
	install.Namespace = namespace
	rel, err := install.RunWithContext(ctx, c, values)
	if err != nil {
		return "", fmt.Errorf("rendering the chart, %w", err)
	}
	return rel.Manifest, nil
}

// Object is one decoded Kubernetes object of a manifest.
type Object map[string]any

// Key names an object: kind, namespace and name.
func (o Object) Key() string {
	meta, _ := o["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	kind, _ := o["kind"].(string)
	return kind + " " + ns + "/" + name
}

// Objects decodes a multi-document YAML stream into objects by Key,
// skipping empty documents. Two objects with the same key are an error.
func Objects(stream string) (map[string]Object, error) {
	out := map[string]Object{}
	docs := releaseutil.SplitManifests(stream)
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		doc := docs[name]
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var o Object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("decoding %s, %w\n%s", name, err, doc)
		}
		if o == nil {
			continue
		}
		if _, dup := out[o.Key()]; dup {
			return nil, fmt.Errorf("%s twice in the manifest", o.Key())
		}
		out[o.Key()] = o
	}
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
