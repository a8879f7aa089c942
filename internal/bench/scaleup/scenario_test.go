package scaleup

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	examplebench "github.com/bosun-platform/bosun/examples/bench"
)

const minimal = `name: t
measure: fallback
nodePools:
  - {name: a, lifecycle: spot, instanceTypes: [m5.xlarge], zones: [local-a], maxSize: 2}
workload: {pods: 1, cpu: 100m, memory: 64Mi}
`

func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"unknown field":        {minimal + "bogus: 1\n", "bogus"},
		"unknown pool field":   {strings.Replace(minimal, "maxSize: 2}", "maxSize: 2, color: red}", 1), "color"},
		"no name":              {strings.Replace(minimal, "name: t\n", "", 1), "name: required"},
		"bad measure":          {strings.Replace(minimal, "fallback", "speed", 1), `measure "speed"`},
		"bad duration":         {minimal + "timeout: soon\n", `"soon": expected a Go duration`},
		"unknown type":         {strings.Replace(minimal, "m5.xlarge", "m5.huge", 1), `nodePools[0].instanceTypes[0] "m5.huge"`},
		"bad lifecycle":        {strings.Replace(minimal, "lifecycle: spot", "lifecycle: reserved", 1), "nodePools[0].lifecycle"},
		"max below min":        {strings.Replace(minimal, "maxSize: 2", "minSize: 3, maxSize: 2", 1), "nodePools[0].maxSize 2"},
		"no pods":              {strings.Replace(minimal, "pods: 1", "pods: 0", 1), "workload.pods 0"},
		"bad quantity":         {strings.Replace(minimal, "cpu: 100m", "cpu: lots", 1), `workload.cpu "lots"`},
		"negative spot":        {minimal + "cloud: {spotCapacity: -1}\n", "cloud.spotCapacity -1"},
		"peak without rules":   {strings.Replace(minimal, "fallback", "peak", 1), "overprovisioning: required"},
		"rules outside peak":   {minimal + "overprovisioning: {linear: '{\"min\": 1}'}\n", "overprovisioning: required for measure peak, and only there"},
		"scale without scale":  {strings.Replace(minimal, "fallback", "scale", 1), "scale: required"},
		"scale unknown pool":   {strings.Replace(minimal, "fallback", "scale", 1) + "scale: {nodes: 1, pods: 1, basePools: [b], growthEvery: 1, growth: {cpu: 1, memory: 1Gi}}\n", `scale.basePools[0] "b"`},
		"pool declared twice":  {minimal[:strings.Index(minimal, "workload")] + "  - {name: a, lifecycle: spot, instanceTypes: [m5.xlarge], zones: [local-a], maxSize: 2}\nworkload: {pods: 1, cpu: 100m, memory: 64Mi}\n", `nodePools[1].name "a": declared twice`},
		"bad overprovisioning": {strings.Replace(minimal, "fallback", "peak", 1) + "overprovisioning: {linear: '{\"coresPerReplica\": \"x\"}'}\n", "overprovisioning"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(minimal, "m5.xlarge", "m5.huge", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, examplebench.FS)
	if err == nil || !strings.HasPrefix(err.Error(), path+": nodePools[0].instanceTypes[0]") {
		t.Fatalf("err = %v, want it to start with the file and the field", err)
	}
	if _, err := Load("nope", examplebench.FS); err == nil || !strings.Contains(err.Error(), "built-in: ice, normal") {
		t.Fatalf("unknown name: err = %v", err)
	}
}

// Every shipped scenario parses, and the names in Builtin are the files.
func TestBuiltinScenariosParse(t *testing.T) {
	for _, name := range Builtin {
		sc, err := Load(name, examplebench.FS)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Name != name {
			t.Errorf("%s.yaml is named %q", name, sc.Name)
		}
	}
	sc, _ := Load("ice", examplebench.FS)
	if sc.spotGroups() != 12 || *sc.Cloud.SpotCapacity != 0 || sc.Provisioner.Interval.Std(0) != time.Second {
		t.Errorf("ice: %d spot groups, capacity %v, interval %v", sc.spotGroups(), sc.Cloud.SpotCapacity, sc.Provisioner.Interval)
	}
}

func TestOverrideAndBaseNodes(t *testing.T) {
	sc, err := Load("scale", examplebench.FS)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Override(102, 3000); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, p := range sc.cluster("c").NodePools {
		got[p.Name] = p.MinSize
	}
	want := map[string]int{"base-a": 26, "base-b": 26, "base-c": 25, "base-d": 25, "growth-a": 0, "growth-b": 0, "growth-od": 0}
	if !reflect.DeepEqual(got, want) || sc.Scale.Pods != 3000 {
		t.Errorf("min sizes %v, pods %d", got, sc.Scale.Pods)
	}
	ice, _ := Load("ice", examplebench.FS)
	if err := ice.Override(10, 0); err == nil || !strings.Contains(err.Error(), "--nodes") {
		t.Errorf("--nodes on ice: err = %v", err)
	}
}

// The JSON report is what scripts read: scenario, results with name and
// seconds, baseline and ratio where there is one, and skipped figures
// without a value.
func TestReportJSONShape(t *testing.T) {
	rep := &Report{Scenario: "peak", Machine: Machine{CPUs: 2}, ClusterAutoscaler: "skipped: no --cluster-autoscaler PATH given",
		Results: []Result{
			seconds("burst-to-running-without-overprovisioning", AutoscalerBosun, 20),
			seconds("burst-to-running-with-overprovisioning", AutoscalerBosun, 5).against("without-overprovisioning", 20),
			{Name: "spot-restored-to-on-demand-share-zero", Autoscaler: AutoscalerBosun, Skipped: "failed: waiting for the on-demand share to reach 0"},
		}}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenario string `json:"scenario"`
		Results  []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Scenario != "peak" || len(got.Results) != 3 {
		t.Fatalf("%s", buf.String())
	}
	with := got.Results[1]
	if with["name"] != "burst-to-running-with-overprovisioning" || with["seconds"] != 5.0 || with["baselineSeconds"] != 20.0 || with["ratio"] != 0.25 || with["autoscaler"] != "bosun" {
		t.Errorf("with: %v", with)
	}
	if _, ok := got.Results[2]["seconds"]; ok || got.Results[2]["skipped"] == nil {
		t.Errorf("skipped result has a value: %v", got.Results[2])
	}
	buf.Reset()
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"burst-to-running-with-overprovisioning", "0.25", "skipped: failed: waiting", "cluster-autoscaler: skipped"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestClusterAutoscalerArgsAndConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := writeClusterAutoscalerConfig(dir, "127.0.0.1:4321")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.TrimSpace(string(data)) != `address: "127.0.0.1:4321"` {
		t.Errorf("cloud config %q", data)
	}
	args := ClusterAutoscalerArgs("/kc", path)
	for _, want := range []string{"--cloud-provider=externalgrpc", "--cloud-config=" + path, "--expander=priority", "--kubeconfig=/kc"} {
		if !contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
}

// launch runs the binary with exactly the arguments and stops it by PID.
func TestLaunchFakeClusterAutoscaler(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	record := filepath.Join(dir, "argv")
	fake := filepath.Join(dir, "cluster-autoscaler")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + record + "\nexec sleep 60\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckClusterAutoscaler(fake); err != nil {
		t.Fatal(err)
	}
	args := ClusterAutoscalerArgs("/kc", "/cc.yaml")
	stop, _, err := launch(fake, args, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var got []byte
	for time.Now().Before(deadline) {
		if got, _ = os.ReadFile(record); len(got) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if strings.Join(args, "\n")+"\n" != string(got) {
		t.Errorf("recorded argv %q, want %q", got, args)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), dir, record} {
		if err := CheckClusterAutoscaler(bad); err == nil || !strings.Contains(err.Error(), "--cluster-autoscaler "+bad) {
			t.Errorf("CheckClusterAutoscaler(%s) = %v", bad, err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
