package fleet

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

const goodCluster = `id: c1
environment: production
provider: aws
account: "1"
region: eu-central-1
kubernetesVersion: "1.33"
configItems:
  a: b
nodePools:
  - name: system
    role: system
    lifecycle: on-demand
    instanceTypes: [m6i.xlarge]
    zones: [eu-central-1a]
    minSize: 1
    maxSize: 3
`

func loadMap(t *testing.T, files map[string]string) (*Fleet, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return LoadFS(fsys, "test")
}

func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("expected a *LoadError, got %v", err)
	}
	var out []string
	for _, p := range le.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestLoadExampleFleet(t *testing.T) {
	f, err := Load("../../examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Clusters) != 4 {
		t.Fatalf("got %d clusters, want 4", len(f.Clusters))
	}
	c := f.Cluster("aws-prod-eu1")
	if c == nil || c.Line != 1 || c.NodePools[0].Line == 0 {
		t.Fatalf("cluster aws-prod-eu1 not loaded with lines: %+v", c)
	}
	// vars/aws-prod-eu1.yaml is deep-merged over vars/_all.yaml.
	apps := f.Vars["aws-prod-eu1"]["apps"].(map[string]any)
	checkout := apps["checkout-api"].(map[string]any)
	if checkout["replicas"] != 6 || checkout["team"] != "payments" {
		t.Errorf("deep merge: got %v", checkout)
	}
	if f.Deletions == nil || f.Defaults == nil || len(f.Snippets) == 0 {
		t.Error("defaults, deletions or snippets not loaded")
	}
}

func TestLoadProblems(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "unknown field in a cluster, with its line",
			files: map[string]string{"clusters/c1.yaml": goodCluster + "colour: blue\n"},
			want:  []string{`clusters/c1.yaml:17: unknown field "colour" in cluster`},
		},
		{
			name:  "unknown field in a node pool",
			files: map[string]string{"clusters/c1.yaml": strings.Replace(goodCluster, "    maxSize: 3", "    maxSize: 3\n    spot: true", 1)},
			want:  []string{`clusters/c1.yaml:17: unknown field "spot" in node pool`},
		},
		{
			name:  "wrong type",
			files: map[string]string{"clusters/c1.yaml": strings.Replace(goodCluster, "minSize: 1", "minSize: one", 1)},
			want:  []string{"clusters/c1.yaml:15: cannot unmarshal !!str `one` into int"},
		},
		{
			name:  "id must match the file name",
			files: map[string]string{"clusters/c2.yaml": goodCluster},
			want:  []string{`clusters/c2.yaml:1: id "c1": expected "c2", the file name without .yaml`},
		},
		{
			name: "invalid values name the field and what was expected",
			files: map[string]string{"clusters/c1.yaml": strings.NewReplacer(
				"provider: aws", "provider: gcp", `kubernetesVersion: "1.33"`, `kubernetesVersion: "latest"`,
				"lifecycle: on-demand", "lifecycle: reserved").Replace(goodCluster)},
			want: []string{
				`clusters/c1.yaml:3: provider "gcp": expected aws or local`,
				`clusters/c1.yaml:6: kubernetesVersion "latest": expected major.minor, e.g. "1.33"`,
				`clusters/c1.yaml:10: node pool "system": lifecycle "reserved": expected spot or on-demand`,
			},
		},
		{
			name:  "pool sizes",
			files: map[string]string{"clusters/c1.yaml": strings.Replace(goodCluster, "maxSize: 3", "maxSize: 0", 1)},
			want:  []string{`clusters/c1.yaml:10: node pool "system": expected 0 <= minSize <= maxSize and maxSize > 0, got 1..0`},
		},
		{
			name:  "suppression without a reason",
			files: map[string]string{"clusters/c1.yaml": goodCluster + "lint:\n  suppress:\n    - rule: L46-test-twin\n"},
			want:  []string{`clusters/c1.yaml:19: lint.suppress L46-test-twin: reason is required, say why the rule does not apply`},
		},
		{
			name:  "update block without a reason",
			files: map[string]string{"clusters/c1.yaml": goodCluster + "updateBlock: \"  \"\n"},
			want:  []string{`clusters/c1.yaml:17: updateBlock: expected a reason why the cluster must not be updated, e.g. "incident 123"; remove the key to unblock`},
		},
		{
			name: "template syntax error with its line",
			files: map[string]string{"clusters/c1.yaml": goodCluster,
				"manifests/app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Cluster.ID }\n"},
			want: []string{`manifests/app/a.yaml:4: template: unexpected "}" in operand`},
		},
		{
			name:  "manifest outside a component",
			files: map[string]string{"clusters/c1.yaml": goodCluster, "manifests/a.yaml": "x: 1"},
			want:  []string{"manifests/a.yaml: manifest outside a component: expected manifests/<component>/a.yaml"},
		},
		{
			name:  "vars for an unknown cluster",
			files: map[string]string{"clusters/c1.yaml": goodCluster, "vars/c9.yaml": "a: 1"},
			want:  []string{`vars/c9.yaml: vars for unknown cluster "c9": expected vars/<cluster-id>.yaml or vars/_all.yaml`},
		},
		{
			name:  "invalid YAML",
			files: map[string]string{"clusters/c1.yaml": "id: c1\n  bad: [\n"},
			want:  []string{"clusters/c1.yaml:2: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name:  "unknown field in fleet.yaml",
			files: map[string]string{"clusters/c1.yaml": goodCluster, "fleet.yaml": "lint:\n  minSpotTypes: 3\n"},
			want:  []string{`fleet.yaml:2: unknown field "minSpotTypes" in lint settings`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadMap(t, c.files)
			got := problemsOf(t, err)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := loadMap(t, map[string]string{
		"clusters/c1.yaml": goodCluster + "x: 1\n",
		"clusters/c2.yaml": strings.Replace(goodCluster, "id: c1", "id: c2\nregion2: x", 1),
	})
	if got := problemsOf(t, err); len(got) != 2 {
		t.Errorf("want one problem per file, got %q", got)
	}
}

func TestLoadNeedsClustersDir(t *testing.T) {
	_, err := loadMap(t, map[string]string{"fleet.yaml": "name: x"})
	if err == nil || !strings.Contains(err.Error(), "expected a clusters/ directory") {
		t.Errorf("got %v", err)
	}
}

func TestDeepMerge(t *testing.T) {
	base := map[string]any{"a": 1, "m": map[string]any{"x": 1, "y": 2}, "l": []any{1}}
	over := map[string]any{"b": 2, "m": map[string]any{"y": 3}, "l": []any{2}}
	got := DeepMerge(base, over)
	want := map[string]any{"a": 1, "b": 2, "m": map[string]any{"x": 1, "y": 3}, "l": []any{2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if base["m"].(map[string]any)["y"] != 2 {
		t.Error("DeepMerge modified its input")
	}
}

func TestLoadUpdateBlock(t *testing.T) {
	f, err := loadMap(t, map[string]string{"clusters/c1.yaml": goodCluster + "updateBlock: etcd restore in progress\n"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Cluster("c1").UpdateBlock; got != "etcd restore in progress" {
		t.Errorf("UpdateBlock = %q", got)
	}
}
