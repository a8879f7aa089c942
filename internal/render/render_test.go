package render

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/fleet"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const exampleFleet = "../../examples/fleet"

func renderExample(t testing.TB) []*Result {
	t.Helper()
	f, err := fleet.Load(exampleFleet)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	all, err := r.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestGolden renders every cluster of the example fleet and compares the
// output with testdata/golden/<cluster>.yaml. Run with -update to accept a
// change.
func TestGolden(t *testing.T) {
	for _, res := range renderExample(t) {
		var b bytes.Buffer
		if err := WriteStream(&b, res); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", res.Cluster.ID+".yaml")
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/render -update)", err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s: render differs from %s; run go test ./internal/render -update and review the diff", res.Cluster.ID, golden)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, b := renderExample(t), renderExample(t)
	for i := range a {
		var x, y bytes.Buffer
		_ = WriteStream(&x, a[i])
		_ = WriteStream(&y, b[i])
		if !bytes.Equal(x.Bytes(), y.Bytes()) || a[i].Version != b[i].Version {
			t.Errorf("%s: two renders differ", a[i].Cluster.ID)
		}
	}
}

func TestExampleContent(t *testing.T) {
	byID := map[string]*Result{}
	for _, res := range renderExample(t) {
		byID[res.Cluster.ID] = res
	}
	has := func(res *Result, kind, name string) bool {
		for _, o := range res.Objects {
			if o.Object.GetKind() == kind && o.Object.GetName() == name {
				return true
			}
		}
		return false
	}
	prod, staging, local := byID["aws-prod-eu1"], byID["aws-staging-eu1"], byID["local-staging"]
	// L41: defaults templated on the environment, the cluster's own items win.
	if prod.Cluster.ConfigItems["downscaler_enabled"] != "false" || staging.Cluster.ConfigItems["downscaler_enabled"] != "true" {
		t.Errorf("defaults by environment: got %v / %v", prod.Cluster.ConfigItems, staging.Cluster.ConfigItems)
	}
	if prod.Cluster.ConfigItems["dns_zone"] != "prod-eu1.example.com" {
		t.Errorf("cluster config item did not win: %q", prod.Cluster.ConfigItems["dns_zone"])
	}
	// The agent everywhere: the overprovisioner with its ConfigMap (L12)
	// in every cluster, the downscaler on staging only (L24).
	agentArgs := func(res *Result) string {
		for _, o := range res.Objects {
			if o.Object.GetKind() == "Deployment" && o.Object.GetName() == "bosun-agent" {
				containers, _, _ := unstructured.NestedSlice(o.Object.Object, "spec", "template", "spec", "containers")
				if len(containers) == 0 {
					return ""
				}
				args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
				return strings.Join(args, " ")
			}
		}
		return ""
	}
	// On AWS (docs/aws.md): the interruption handler against the
	// cluster's queue and region; on staging (aws_capacity: bosun) also
	// the provisioner, scale-down and reaper instead of cluster-autoscaler.
	awsFlags := func(res *Result) string {
		acct := res.Cluster.Account
		return " --provider=aws --cluster=" + res.Cluster.ID + " --region=eu-central-1 --aws-queue-url=https://sqs.eu-central-1.amazonaws.com/" + acct + "/bosun-" + res.Cluster.ID
	}
	if got := agentArgs(prod); !strings.Contains(got, "--controllers=overprovisioner,interruption ") || !strings.HasSuffix(got, awsFlags(prod)) {
		t.Errorf("production agent: %q, want the overprovisioner and the interruption handler on AWS (%s)", got, awsFlags(prod))
	}
	if got := agentArgs(staging); !strings.Contains(got, "--controllers=overprovisioner,downscaler,provisioner,interruption,scale-down,reaper ") || !strings.HasSuffix(got, awsFlags(staging)) {
		t.Errorf("staging agent: %q, want the overprovisioner, the downscaler and the capacity controllers on AWS (%s)", got, awsFlags(staging))
	}
	if got := agentArgs(local); strings.Contains(got, "--provider") {
		t.Errorf("local agent: %q, want no provider flags (bosun up runs the capacity controllers)", got)
	}
	// IRSA: the agent's service account carries the cluster's role.
	for _, res := range []*Result{prod, staging} {
		var ann string
		for _, o := range res.Objects {
			if o.Object.GetKind() == "ServiceAccount" && o.Object.GetName() == "bosun-agent" {
				ann = o.Object.GetAnnotations()["eks.amazonaws.com/role-arn"]
			}
		}
		if want := res.Cluster.ConfigItems["aws_agent_role_arn"]; want == "" || ann != want {
			t.Errorf("%s: agent service account role %q, want %q", res.Cluster.ID, ann, want)
		}
	}
	if has(staging, "Deployment", "cluster-autoscaler") || !has(staging, "ClusterRole", "bosun-agent-node-removal") || has(prod, "ClusterRole", "bosun-agent-node-removal") {
		t.Error("aws_capacity: bosun renders the node-removal RBAC and no cluster-autoscaler; cluster-autoscaler clusters the reverse")
	}
	for _, res := range []*Result{prod, staging, local} {
		if !has(res, "ConfigMap", "overprovisioning") || has(res, "Deployment", "overprovisioning-default") {
			t.Errorf("%s: want the overprovisioner's ConfigMap and no static pause Deployments", res.Cluster.ID)
		}
	}
	if !has(prod, "Deployment", "cluster-autoscaler") || has(local, "Deployment", "cluster-autoscaler") {
		t.Error("cluster-autoscaler must run on aws clusters only")
	}
	if len(prod.Deletions.After) != 1 || prod.Deletions.After[0].Name != "kube-dns-autoscaler" {
		t.Errorf("deletions: got %+v", prod.Deletions)
	}
	if prod.Version == staging.Version {
		t.Error("different outputs share a version")
	}
}

func mapFleet(t *testing.T, files map[string]string) *fleet.Fleet {
	t.Helper()
	fsys := fstest.MapFS{"clusters/c1.yaml": {Data: []byte(`id: c1
environment: test
provider: local
region: local
kubernetesVersion: "1.33"
configItems: {own: "yes", shared: cluster}
`)}}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	f, err := fleet.LoadFS(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func renderOne(t *testing.T, files map[string]string) (*Result, error) {
	t.Helper()
	r, err := New(mapFleet(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return r.Cluster(context.Background(), "c1")
}

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n"

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name, template, want string
	}{
		{"a missing config item is an error, not an empty string", cm + "  x: {{ .Config.nope }}\n", `manifests/app/a.yaml:6: .Config.nope: missing key: "nope"`},
		{"a missing var is an error", cm + "  x: {{ .Vars.nope }}\n", `manifests/app/a.yaml:6: .Vars.nope: missing key: "nope"`},
		{"required names the problem", cm + "  x: {{ required \"set x\" \"\" }}\n", "manifests/app/a.yaml:6: required \"set x\" \"\": error calling required: set x"},
		{"include of a missing template", cm + "  x: {{ include \"nope\" . }}\n", `manifests/app/a.yaml:6: include "nope" .: error calling include: no template "nope"`},
		{"rendered output that is not an object", "- 1\n", "manifests/app/a.yaml:1 (rendered): expected a Kubernetes object"},
		{"object without a name", "apiVersion: v1\nkind: ConfigMap\n", "manifests/app/a.yaml:1 (rendered): object needs apiVersion, kind and metadata.name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderOne(t, map[string]string{"manifests/app/a.yaml": c.template})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestIncludeRecursionStops(t *testing.T) {
	_, err := renderOne(t, map[string]string{
		"snippets/loop.tpl":    `{{ define "loop" }}{{ include "loop" . }}{{ end }}`,
		"manifests/app/a.yaml": cm + `  x: {{ include "loop" . }}` + "\n",
	})
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("got %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	res, err := renderOne(t, map[string]string{
		"defaults.yaml":        "shared: default\nonly_default: '{{ .Cluster.Environment }}'\n",
		"manifests/app/a.yaml": cm + "  a: {{ .Config.shared }}\n  b: {{ .Config.only_default }}\n  c: {{ .Cluster.ConfigItems.own }}\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _, _ := unstructuredData(res)
	want := map[string]any{"a": "cluster", "b": "test", "c": "yes"}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("data.%s = %v, want %v", k, data[k], v)
		}
	}
}

func unstructuredData(res *Result) (map[string]any, bool, error) {
	d, ok := res.Objects[0].Object.Object["data"].(map[string]any)
	return d, ok, nil
}

// The version changes exactly when the output changes: a template comment
// changes nothing, a value does.
func TestVersionFollowsOutput(t *testing.T) {
	v := func(tpl string) string {
		res, err := renderOne(t, map[string]string{"manifests/app/a.yaml": tpl})
		if err != nil {
			t.Fatal(err)
		}
		return res.Version
	}
	base := v(cm + "  a: '1'\n")
	if got := v(cm + "  a: '1'{{/* a comment */}}\n"); got != base {
		t.Errorf("a template comment changed the version: %s != %s", got, base)
	}
	if got := v(cm + "  a: '2'\n"); got == base {
		t.Error("a changed value kept the version")
	}
}

func TestObjectsCarryFileAndLine(t *testing.T) {
	res, err := renderOne(t, map[string]string{"manifests/app/a.yaml": cm + "  a: '1'\n---\n" + strings.Replace(cm, "name: cm", "name: cm2", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 2 {
		t.Fatalf("got %d objects", len(res.Objects))
	}
	o := res.Objects[1]
	if o.File != "manifests/app/a.yaml" || o.Line != 8 || o.Component != "app" || o.Object.GetName() != "cm2" {
		t.Errorf("got %s:%d %s %s", o.File, o.Line, o.Component, o.Object.GetName())
	}
}

func TestWriteDir(t *testing.T) {
	res := renderExample(t)[0]
	dir := t.TempDir()
	if err := WriteDir(dir, res); err != nil {
		t.Fatal(err)
	}
	v, err := os.ReadFile(filepath.Join(dir, res.Cluster.ID, VersionFile))
	if err != nil || strings.TrimSpace(string(v)) != res.Version {
		t.Errorf("version file: %q, %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, res.Cluster.ID, "coredns", "coredns.yaml")); err != nil {
		t.Error(err)
	}
}
