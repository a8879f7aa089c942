package charttest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/cli"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

// fullValues turns every controller on, with the AWS provider they need,
// and sets every other value away from its default.
func fullValues() map[string]any {
	controllers := map[string]any{}
	for _, c := range deploy.ChartControllers {
		controllers[c.Value] = map[string]any{"enabled": true}
	}
	controllers["access"] = map[string]any{"enabled": true, "production": true}
	controllers["backupschedule"] = map[string]any{"enabled": true, "to": "s3://bosun-backups/prod", "recipients": []any{testRecipient}, "keep": 14}
	return map[string]any{
		"image":          map[string]any{"repository": "registry.example/bosun", "tag": "1.2.3"},
		"replicas":       3,
		"serviceAccount": map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/bosun-agent"}},
		"controllers":    controllers,
		"provider": map[string]any{
			"name": "aws", "cluster": "prod-eu", "region": "eu-central-1",
			"awsQueueURL": "https://sqs.eu-central-1.amazonaws.com/123456789012/bosun-prod-eu",
		},
		"schedules": map[string]any{"defaultUptime": "Mon-Fri 07:30-20:30 Europe/Berlin", "defaultDowntime": "Sat-Sun 00:00-24:00 UTC"},
		"resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "512Mi"}, "limits": map[string]any{"memory": "512Mi"}},
		"extraArgs": []any{"--exclude-names=^keep-"},
	}
}

// Helm's linter finds nothing wrong with the chart, with the default
// values or with every controller on (strict: warnings fail too).
func TestLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{"default": nil, "full": fullValues()} {
		l := action.NewLint()
		l.Strict = true
		l.Namespace = "bosun-system"
		res := l.Run([]string{ChartDir()}, vals)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s values: %s", name, m)
			}
		}
		for _, err := range res.Errors {
			t.Errorf("%s values: %v", name, err)
		}
	}
}

// The chart with its default values renders exactly the objects of
// `bosun agent manifests` (compared as decoded objects: comments, quoting
// and the order of documents aside), but for the Namespace, which Helm
// creates (--create-namespace); with namespace.create=true it renders that
// too.
func TestDefaultValuesEqualAgentManifests(t *testing.T) {
	for _, create := range []bool{false, true} {
		t.Run(fmt.Sprintf("namespace.create=%v", create), func(t *testing.T) { testDefaultValues(t, create) })
	}
}

func testDefaultValues(t *testing.T, createNamespace bool) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := cli.Run(ctx, iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, []string{"agent", "manifests"}); err != nil {
		t.Fatalf("bosun agent manifests: %v\n%s", err, errOut.String())
	}
	want, err := Objects(out.String())
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if createNamespace {
		vals = map[string]any{"namespace": map[string]any{"create": true}}
	} else {
		delete(want, "Namespace /bosun-system")
	}
	manifest, err := Template(ctx, "bosun-system", vals)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("the chart does not render %s", k)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			gy, _ := yaml.Marshal(g)
			wy, _ := yaml.Marshal(w)
			t.Errorf("%s differs\nchart:\n%s\nbosun agent manifests:\n%s", k, gy, wy)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("the chart renders %s, which bosun agent manifests does not", k)
		}
	}
	if len(want) < 6 {
		t.Errorf("bosun agent manifests printed %d objects; expected the namespace, service account, RBAC and Deployment", len(want))
	}
}

// The default values are safe on any cluster: the downscaler alone, with
// "always" as its default uptime; nothing that deletes or adds capacity,
// and no RBAC for it.
func TestDefaultValuesAreSafe(t *testing.T) {
	got := render(t, nil)
	args := agentArgs(t, got)
	if !contains(args, "--controllers=downscaler") || !contains(args, "--default-uptime=always") {
		t.Errorf("default agent args %q; expected the downscaler alone with --default-uptime=always", args)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--default-downtime=") || strings.HasPrefix(a, "--provider") {
			t.Errorf("default agent args pass %s", a)
		}
	}
	if roles := clusterRoles(got); !reflect.DeepEqual(roles, []string{"bosun-agent-downscaler", "bosun-agent-events"}) {
		t.Errorf("default ClusterRoles %v; expected the downscaler's and the events one only", roles)
	}
}

// With every controller on, each one's RBAC is there, the agent runs them
// all against AWS, and the other values land where they belong.
func TestFullValues(t *testing.T) {
	got := render(t, fullValues())
	roles := clusterRoles(got)
	for _, want := range []string{"downscaler", "janitor", "overprovisioner", "provisioner", "interruption", "node-removal", "events"} {
		if !contains(roles, "bosun-agent-"+want) {
			t.Errorf("full values: no ClusterRole bosun-agent-%s (have %v)", want, roles)
		}
		if want != "events" && got["ClusterRoleBinding /bosun-agent-"+want] == nil {
			t.Errorf("full values: no ClusterRoleBinding bosun-agent-%s", want)
		}
	}
	if got["Role bosun-system/bosun-agent-overprovisioner"] == nil {
		t.Error("full values: no Role for the overprovisioner in the release namespace")
	}
	args := agentArgs(t, got)
	for _, want := range []string{
		"agent", "--controllers=downscaler,janitor,overprovisioner,provisioner,interruption,scale-down,reaper,certwatch,access,backupschedule", "--access-production",
		"--backup-every=24h", "--backup-to=s3://bosun-backups/prod", "--backup-recipients=" + testRecipient, "--backup-keep=14",
		"--provider=aws", "--cluster=prod-eu", "--region=eu-central-1",
		"--aws-queue-url=https://sqs.eu-central-1.amazonaws.com/123456789012/bosun-prod-eu",
		"--default-uptime=Mon-Fri 07:30-20:30 Europe/Berlin", "--default-downtime=Sat-Sun 00:00-24:00 UTC",
		"--log-format=json", "--exclude-names=^keep-",
	} {
		if !contains(args, want) {
			t.Errorf("full values: agent args %q lack %q", args, want)
		}
	}
	dep := got["Deployment bosun-system/bosun-agent"]
	spec := dig(dep, "spec").(map[string]any)
	if spec["replicas"] != float64(3) {
		t.Errorf("replicas %v, want 3", spec["replicas"])
	}
	c := container(t, got)
	if c["image"] != "registry.example/bosun:1.2.3" {
		t.Errorf("image %v", c["image"])
	}
	if mem := dig(c, "resources", "requests", "memory"); mem != "512Mi" {
		t.Errorf("memory request %v, want 512Mi", mem)
	}
	if arn := dig(got["ServiceAccount bosun-system/bosun-agent"], "metadata", "annotations", "eks.amazonaws.com/role-arn"); arn == nil {
		t.Error("service account annotation for the IAM role missing")
	}
}

// Each controller alone brings its own RBAC and no other controller's.
func TestRBACPerController(t *testing.T) {
	files := map[string]string{"scaleDown": "node-removal", "reaper": "node-removal"}
	for _, c := range deploy.ChartControllers {
		vals := map[string]any{"controllers": map[string]any{"downscaler": map[string]any{"enabled": false}, c.Value: map[string]any{"enabled": true}}}
		switch c.Controller {
		case "provisioner", "interruption", "scale-down", "reaper":
			vals["provider"] = map[string]any{"name": "aws", "cluster": "c", "region": "r", "awsQueueURL": "https://q"}
		case "backupschedule":
			vals["controllers"].(map[string]any)[c.Value] = backupValues()
			vals["provider"] = map[string]any{"cluster": "c"}
		}
		role := files[c.Value]
		if role == "" {
			role = c.Controller
		}
		roles := clusterRoles(render(t, vals))
		if want := []string{"bosun-agent-" + role, "bosun-agent-events"}; !reflect.DeepEqual(roles, sortStrings(want)) {
			t.Errorf("controllers.%s alone: ClusterRoles %v, want %v", c.Value, roles, sortStrings(want))
		}
	}
}

const testRecipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func backupValues() map[string]any {
	return map[string]any{"enabled": true, "to": "s3://bosun-backups/prod", "recipients": []any{testRecipient}}
}

// L29: the scheduled backups alone get the cluster ID from
// provider.cluster (no capacity controller passes it) and their values as
// flags.
func TestBackupScheduleAlone(t *testing.T) {
	args := agentArgs(t, render(t, map[string]any{
		"controllers": map[string]any{"downscaler": map[string]any{"enabled": false}, "backupschedule": backupValues()},
		"provider":    map[string]any{"cluster": "prod-eu"},
	}))
	for _, want := range []string{"--controllers=backupschedule", "--cluster=prod-eu", "--backup-every=24h", "--backup-to=s3://bosun-backups/prod", "--backup-recipients=" + testRecipient, "--backup-keep=7"} {
		if !contains(args, want) {
			t.Errorf("agent args %q lack %q", args, want)
		}
	}
}

// Values that cannot work are refused with the field and what was
// expected, and nothing is rendered.
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"no controller", map[string]any{"controllers": map[string]any{"downscaler": map[string]any{"enabled": false}}}, []string{"controllers", "at least one"}},
		{"capacity without provider", map[string]any{"controllers": map[string]any{"provisioner": map[string]any{"enabled": true}}}, []string{"provider.name", "aws"}},
		{"local provider", map[string]any{"controllers": map[string]any{"reaper": map[string]any{"enabled": true}}, "provider": map[string]any{"name": "local"}}, []string{"provider.name", "local", "bosun agent --provider local"}},
		{"no cluster", map[string]any{"controllers": map[string]any{"reaper": map[string]any{"enabled": true}}, "provider": map[string]any{"name": "aws", "region": "eu-central-1"}}, []string{"provider.cluster", "cluster ID"}},
		{"interruption without queue", map[string]any{"controllers": map[string]any{"interruption": map[string]any{"enabled": true}}, "provider": map[string]any{"name": "aws", "cluster": "c", "region": "r"}}, []string{"provider.awsQueueURL"}},
		{"provider without capacity", map[string]any{"provider": map[string]any{"name": "aws"}}, []string{"provider.name", "no capacity controller"}},
		{"empty uptime", map[string]any{"schedules": map[string]any{"defaultUptime": ""}}, []string{"schedules.defaultUptime", "always"}},
		{"misspelt controller", map[string]any{"controllers": map[string]any{"scaledown": map[string]any{"enabled": true}}}, []string{"scaledown"}},
		{"unknown provider", map[string]any{"provider": map[string]any{"name": "gcp"}}, []string{"provider", "name"}},
		{"extra arg not a flag", map[string]any{"extraArgs": []any{"janitor"}}, []string{"extraArgs"}},
		{"backups without cluster", map[string]any{"controllers": map[string]any{"backupschedule": backupValues()}}, []string{"provider.cluster", "backupschedule"}},
		{"backups without location", map[string]any{"controllers": map[string]any{"backupschedule": map[string]any{"enabled": true, "recipients": []any{testRecipient}}}, "provider": map[string]any{"cluster": "c"}}, []string{"controllers.backupschedule.to"}},
		{"backups without recipients", map[string]any{"controllers": map[string]any{"backupschedule": map[string]any{"enabled": true, "to": "s3://b/p"}}, "provider": map[string]any{"cluster": "c"}}, []string{"controllers.backupschedule.recipients"}},
		{"backups to a private key", map[string]any{"controllers": map[string]any{"backupschedule": map[string]any{"enabled": true, "to": "s3://b/p", "recipients": []any{"AGE-SECRET-KEY-1QQQ"}}}, "provider": map[string]any{"cluster": "c"}}, []string{"recipients"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest, err := Template(context.Background(), "bosun-system", tc.vals)
			if err == nil {
				t.Fatalf("accepted; rendered %d bytes", len(manifest))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func render(t *testing.T, vals map[string]any) map[string]Object {
	t.Helper()
	manifest, err := Template(context.Background(), "bosun-system", vals)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func container(t *testing.T, objs map[string]Object) map[string]any {
	t.Helper()
	dep := objs["Deployment bosun-system/bosun-agent"]
	if dep == nil {
		t.Fatal("no Deployment bosun-agent rendered")
	}
	cs, _ := dig(dep, "spec", "template", "spec", "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return cs[0].(map[string]any)
}

func agentArgs(t *testing.T, objs map[string]Object) []string {
	t.Helper()
	var out []string
	args, _ := container(t, objs)["args"].([]any)
	for _, a := range args {
		out = append(out, a.(string))
	}
	return out
}

func clusterRoles(objs map[string]Object) []string {
	var out []string
	for _, o := range objs {
		if o["kind"] == "ClusterRole" {
			out = append(out, dig(o, "metadata", "name").(string))
		}
	}
	return sortStrings(out)
}

func dig(v any, path ...string) any {
	if o, ok := v.(Object); ok {
		v = map[string]any(o)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
