package scenario

import (
	"bytes"
	"context"
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
	cloud := &fakeCloud{targets: map[string]int{}, instances: []provider.Instance{
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

func TestPlayStopsAtFailingStep(t *testing.T) {
	s, err := Parse([]byte("steps:\n- at: 0s\n  scale: {cluster: nope, deployment: d, replicas: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	err = Play(context.Background(), s, Env{Cloud: &fakeCloud{}, Clock: clk, Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), `cluster "nope" is not running`) {
		t.Fatalf("err = %v", err)
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
