package render

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bosun-platform/bosun/internal/fleet"
)

const specCluster = `id: c1
environment: test
provider: aws
account: "111111111111"
region: eu-central-1
channel: beta
kubernetesVersion: "1.33"
configItems: {own: "yes"}
nodePools:
  - name: workers
    role: worker
    applicationGroup: default
    lifecycle: on-demand
    instanceTypes: [m6i.xlarge]
    zones: [eu-central-1a]
    minSize: 1
    maxSize: 3
    priority: 5
lint:
  suppress: []
`

func specVersion(t *testing.T, cluster string) string {
	t.Helper()
	fsys := fstest.MapFS{
		"clusters/c1.yaml":     {Data: []byte(cluster)},
		"manifests/app/a.yaml": {Data: []byte(cm + "  a: '1'\n")},
	}
	f, err := fleet.LoadFS(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	return res.Version
}

// The version covers the cluster's spec, not only the rendered manifests:
// apply, diff and the inventory use it to tell whether anything of the
// cluster changed. Each field below is used by no manifest of this fleet.
func TestVersionCoversClusterSpec(t *testing.T) {
	base := specVersion(t, specCluster)
	changes := []struct{ name, from, to string }{
		{"node pool maxSize", "maxSize: 3", "maxSize: 4"},
		{"node pool minSize", "minSize: 1", "minSize: 0"},
		{"node pool instance types", "[m6i.xlarge]", "[m6i.xlarge, m6a.xlarge]"},
		{"kubernetesVersion", `kubernetesVersion: "1.33"`, `kubernetesVersion: "1.34"`},
		{"channel", "channel: beta", "channel: stable"},
		{"region", "region: eu-central-1", "region: eu-west-1"},
		{"config item", `own: "yes"`, `own: "no"`},
	}
	for _, c := range changes {
		if !strings.Contains(specCluster, c.from) {
			t.Fatalf("%s: %q not in the cluster file", c.name, c.from)
		}
		if got := specVersion(t, strings.Replace(specCluster, c.from, c.to, 1)); got == base {
			t.Errorf("changing the %s (%s -> %s) kept the version %s", c.name, c.from, c.to, base)
		}
	}
	// Where things are declared and lint suppressions change nothing in
	// the cluster.
	same := []struct{ name, from, to string }{
		{"a comment line moving every pool", "nodePools:\n", "# the pools\nnodePools:\n"},
		{"a lint suppression", "suppress: []", "suppress: [{rule: L05, reason: one big group}]"},
		{"an update block", "suppress: []\n", "suppress: []\nupdateBlock: incident 42\n"},
	}
	for _, c := range same {
		if got := specVersion(t, strings.Replace(specCluster, c.from, c.to, 1)); got != base {
			t.Errorf("%s changed the version: %s != %s", c.name, got, base)
		}
	}
}
