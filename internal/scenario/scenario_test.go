package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	kfake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"no steps":        {"name: x\n", "no steps"},
		"unknown field":   {"steps:\n- at: 0s\n  capacity: {limit: 0}\n  bogus: 1\n", "bogus"},
		"bad offset":      {"steps:\n- at: soon\n  capacity: {limit: 0}\n", `steps[0].at "soon"`},
		"out of order":    {"steps:\n- at: 10s\n  capacity: {limit: 0}\n- at: 5s\n  capacity: {clear: true}\n", "time order"},
		"two actions":     {"steps:\n- at: 0s\n  capacity: {limit: 0}\n  targetSize: {group: g, size: 1}\n", "exactly one"},
		"no action":       {"steps:\n- at: 0s\n", "exactly one"},
		"bad lifecycle":   {"steps:\n- at: 0s\n  capacity: {lifecycle: reserved}\n", "expected spot or on-demand"},
		"negative limit":  {"steps:\n- at: 0s\n  capacity: {limit: -1}\n", "limit -1"},
		"interrupt both":  {"steps:\n- at: 0s\n  interrupt: {node: n, group: g, count: 1}\n", "either node"},
		"interrupt count": {"steps:\n- at: 0s\n  interrupt: {group: g}\n", "count 0"},
		"bad quantity":    {"steps:\n- at: 0s\n  scale: {cluster: c, deployment: d, replicas: 1, cpu: lots}\n", `scale.cpu "lots"`},
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

type fakeCloud struct {
	limits     []localcloud.CapacityRequest
	interrupts []string
	targets    map[string]int
	instances  []provider.Instance
	groups     []provider.NodeGroup
}

func (f *fakeCloud) NodeGroups(context.Context) ([]provider.NodeGroup, error) {
	return f.groups, nil
}

func (f *fakeCloud) SetCapacity(_ context.Context, r localcloud.CapacityRequest) ([]localcloud.CapacityLimit, error) {
	f.limits = append(f.limits, r)
	return nil, nil
}

func (f *fakeCloud) Interrupt(_ context.Context, node string) (provider.InterruptionNotice, error) {
	f.interrupts = append(f.interrupts, node)
	return provider.InterruptionNotice{NodeName: node}, nil
}

func (f *fakeCloud) Instances(context.Context, string) ([]provider.Instance, error) {
	return f.instances, nil
}

func (f *fakeCloud) SetTargetSize(_ context.Context, g string, n int) error {
	f.targets[g] = n
	return nil
}

const script = `
name: spot outage
steps:
- at: 0s
  capacity: {lifecycle: spot, limit: 0}
- at: 0s
  scale: {cluster: c1, deployment: web, replicas: 3, cpu: 500m, memory: 1Gi}
- at: 30s
  interrupt: {group: c1/spot, count: 2}
- at: 30s
  targetSize: {group: c1/od, size: 4}
- at: 1m
  scale: {cluster: c1, deployment: web, replicas: 5}
- at: 1m
  capacity: {lifecycle: spot, clear: true}
`

func TestPlayRunsStepsAtTheirOffsets(t *testing.T) {
	s, err := Parse([]byte(script))
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	cloud := &fakeCloud{targets: map[string]int{}, groups: testGroups, instances: []provider.Instance{
		{ID: "i-1", NodeName: "n1", State: provider.Running},
		{ID: "i-2", NodeName: "n2", State: provider.Running},
		{ID: "i-3", NodeName: "n3", State: provider.Running},
	}}
	cs := kfake.NewSimpleClientset()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Play(context.Background(), s, Env{Cloud: cloud, Clusters: map[string]kubernetes.Interface{"c1": cs}, Clock: clk, Out: &out})
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			goto finished
		case <-time.After(time.Millisecond):
			if clk.HasWaiters() {
				clk.Step(10 * time.Second)
			}
		}
	}
finished:
	if len(cloud.limits) != 2 || cloud.limits[0].Lifecycle != provider.Spot || !cloud.limits[1].Clear {
		t.Errorf("capacity steps %+v", cloud.limits)
	}
	if strings.Join(cloud.interrupts, ",") != "n3,n2" {
		t.Errorf("interrupted %v, want the two newest running (n3, n2)", cloud.interrupts)
	}
	if cloud.targets["c1/od"] != 4 {
		t.Errorf("targets %v", cloud.targets)
	}
	d, err := cs.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 5 {
		t.Fatalf("deployment %+v, %v", d, err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String(); got != "500m" {
		t.Errorf("cpu request %s", got)
	}
	if !strings.Contains(out.String(), "[     30s] interrupt 2 of c1/spot") {
		t.Errorf("output does not show the 30s step at its offset:\n%s", out.String())
	}
}

var testGroups = []provider.NodeGroup{
	{ID: "c1/spot", Cluster: "c1", Pool: "spot", InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"local-a"}, MaxSize: 10},
	{ID: "c1/od", Cluster: "c1", Pool: "od", InstanceTypes: []string{"m5.large"}, Zones: []string{"local-a", "local-b"}, MinSize: 1, MaxSize: 5},
}

func TestPlayStopsAtFailingStep(t *testing.T) {
	s, err := Parse([]byte("steps:\n- at: 0s\n  interrupt: {node: gone}\n- at: 0s\n  capacity: {limit: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cloud := &fakeCloud{groups: testGroups}
	failing := failingInterrupt{cloud}
	err = Play(context.Background(), s, Env{Cloud: failing, Clock: clocktesting.NewFakeClock(time.Now()), Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "steps[0] at 0s: node gone is not running") {
		t.Fatalf("err = %v", err)
	}
	if len(cloud.limits) != 0 {
		t.Errorf("the step after the failing one ran: %+v", cloud.limits)
	}
}

type failingInterrupt struct{ *fakeCloud }

func (failingInterrupt) Interrupt(_ context.Context, node string) (provider.InterruptionNotice, error) {
	return provider.InterruptionNotice{}, fmt.Errorf("node %s is not running", node)
}

// Issue 18 item 7: an unknown cluster or group used to fail its step after
// the earlier steps had been applied. Play now checks every name first,
// applies nothing, and reports every problem with its line.
func TestPlayChecksEveryNameBeforeTheFirstStep(t *testing.T) {
	const bad = `name: typos
steps:
- at: 0s
  capacity: {lifecycle: spot, limit: 0}
- at: 5s
  targetSize: {group: c1/spto, size: 2}
- at: 10s
  scale: {cluster: c2, deployment: web, replicas: 3}
- at: 20s
  interrupt: {group: c9/spot, count: 1}
- at: 30s
  targetSize: {group: c1/od, size: 9}
- at: 40s
  capacity: {instanceType: m5.xlarg, zone: local-z, limit: 1}
- at: 50s
  interrupt: {node: not-yet-launched}
`
	s, err := Parse([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	cloud := &fakeCloud{targets: map[string]int{}, groups: testGroups}
	cs := kfake.NewSimpleClientset()
	// The fake clock never moves: a Play that runs the first step and
	// then waits for the second stops here instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = Play(ctx, s, Env{Cloud: cloud, Clusters: map[string]kubernetes.Interface{"c1": cs}, Clock: clocktesting.NewFakeClock(time.Now()), Out: &bytes.Buffer{}})
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *scenario.Error", err)
	}
	want := []string{
		`scenario:6: steps[1].targetSize.group "c1/spto": no such node group (groups: c1/od, c1/spot)`,
		`scenario:8: steps[2].scale.cluster "c2": no such cluster is running (running: c1)`,
		`scenario:10: steps[3].interrupt.group "c9/spot": no such node group`,
		`scenario:12: steps[4].targetSize.size 9: expected a size within group c1/od's min and max [1, 5]`,
		`scenario:14: steps[5].capacity.instanceType "m5.xlarg": no node group launches it (types: m5.large, m5.xlarge)`,
		`scenario:14: steps[5].capacity.zone "local-z": no node group launches there (zones: local-a, local-b)`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not report %q:\n%v", w, err)
		}
	}
	if len(se.Problems) != len(want) {
		t.Errorf("%d problems, want %d (interrupt.node is not checked):\n%v", len(se.Problems), len(want), err)
	}
	if len(cloud.limits)+len(cloud.targets)+len(cloud.interrupts) != 0 {
		t.Errorf("steps ran before the check: limits %v, targets %v, interrupts %v", cloud.limits, cloud.targets, cloud.interrupts)
	}
}

// Parse reports every problem of the file at once, each with its line.
func TestParseReportsEveryProblemWithItsLine(t *testing.T) {
	const bad = `steps:
- at: 0s
  capacity: {lifecycle: reserved}
- at: soon
  scale: {cluster: c, deployment: d, replicas: 1, cpu: lots}
- at: 1s
  bogus: 1
`
	_, err := Parse([]byte(bad))
	for _, w := range []string{
		`scenario:3: steps[0].capacity.lifecycle`,
		`scenario:7: unknown field "bogus" in step`,
		`scenario:4: steps[1].at "soon"`,
		`scenario:5: steps[1].scale.cpu "lots"`,
		`scenario:6: steps[2]: expected exactly one of`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error does not report %q:\n%v", w, err)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte("steps:\n- at: x\n  capacity: {limit: 0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p+":2: steps[0].at") {
		t.Fatalf("err = %v, want it to name %s:2", err, p)
	}
}

// The shipped example scenarios must stay valid.
func TestExampleScenariosParse(t *testing.T) {
	paths, err := filepath.Glob("../../examples/scenarios/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example scenarios found: %v", err)
	}
	for _, p := range paths {
		if _, err := Load(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
