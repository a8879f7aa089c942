package localfleet_test

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	cliagent "github.com/bosun-platform/bosun/internal/cli/agent"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/localfleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// parse is the agent's own parser, as `bosun up` is given it.
func parse(args []string, env map[string]string) (agent.Options, error) {
	return cliagent.ParseOptions(args, env, iostreams.IOStreams{In: strings.NewReader(""), Out: &strings.Builder{}, ErrOut: &strings.Builder{}})
}

var capacity = []string{agentcmd.ControllerInterruption, agentcmd.ControllerProvisioner, agentcmd.ControllerScaleDown, agentcmd.ControllerReaper}

// Issue 16 item 6: `bosun up` runs exactly the controllers and flags each
// example cluster's rendered agent declares (the downscaler with the
// fleet's office hours on staging only, no janitor), plus the capacity
// controllers against the local cloud.
func TestUpRunsWhatTheRenderedAgentDeclares(t *testing.T) {
	f, clusters, err := localfleet.SelectClusters(localfleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := localfleet.RenderClusters(t.Context(), f, clusters)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"local-staging": append([]string{agentcmd.ControllerOverprovisioner, agentcmd.ControllerDownscaler}, capacity...),
		"local-prod":    append([]string{agentcmd.ControllerOverprovisioner}, capacity...),
	}
	for _, cl := range clusters {
		o, err := localfleet.AgentFor(rendered[cl.ID], parse, false)
		if err != nil {
			t.Fatalf("%s: %v", cl.ID, err)
		}
		if !sameSet(o.Controllers, want[cl.ID]) {
			t.Errorf("%s: controllers %v, want %v", cl.ID, o.Controllers, want[cl.ID])
		}
		if o.Overprovisioner != "overprovisioning/overprovisioning" {
			t.Errorf("%s: overprovisioner ConfigMap %q, want overprovisioning/overprovisioning", cl.ID, o.Overprovisioner)
		}
		if cl.ID == "local-staging" && o.Downscaler.Uptime != "Mon-Fri 07:00-20:00 Europe/Berlin" {
			t.Errorf("%s: downscaler uptime %q, want the fleet's office hours", cl.ID, o.Downscaler.Uptime)
		}
		// The agent runs in kube-system: its own namespace is excluded as
		// the in-cluster agent's would be.
		if !slices.Contains(o.Downscaler.ExcludeNamespaces, "kube-system") {
			t.Errorf("%s: downscaler excludes %v", cl.ID, o.Downscaler.ExcludeNamespaces)
		}
		ca, err := localfleet.AgentFor(rendered[cl.ID], parse, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{agentcmd.ControllerProvisioner, agentcmd.ControllerScaleDown, agentcmd.ControllerReaper} {
			if slices.Contains(ca.Controllers, c) {
				t.Errorf("%s with cluster-autoscaler: runs %s, which would fight it over the node groups", cl.ID, c)
			}
		}
	}
}

func TestAgentFor(t *testing.T) {
	agentDeployment := func(env map[string]string, args ...string) *render.Object {
		envs := []any{map[string]any{"name": "POD_NAMESPACE", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.namespace"}}}}
		for k, v := range env {
			envs = append(envs, map[string]any{"name": k, "value": v})
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "bosun-agent", "namespace": "platform"},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "agent", "args": toAny(args), "env": envs},
			}}}},
		}}
		return &render.Object{Object: u}
	}
	for _, c := range []struct {
		name        string
		objs        []*render.Object
		controllers []string
		check       func(agent.Options) string
		err         string
	}{
		{name: "no agent: the capacity controllers only", controllers: capacity},
		{name: "the agent's default controllers", objs: []*render.Object{agentDeployment(nil, "agent")},
			controllers: append([]string{agentcmd.ControllerDownscaler}, capacity...),
			check: func(o agent.Options) string {
				if o.Downscaler.Uptime != "always" {
					return "uptime " + o.Downscaler.Uptime + ", want always (the agent's default)"
				}
				return ""
			}},
		{name: "janitor and the schedule from the environment", objs: []*render.Object{agentDeployment(map[string]string{"DEFAULT_UPTIME": "Mon-Fri 08:00-18:00 UTC"}, "agent", "--controllers=janitor,downscaler", "--janitor-max-deletions=7")},
			controllers: append([]string{agentcmd.ControllerJanitor, agentcmd.ControllerDownscaler}, capacity...),
			check: func(o agent.Options) string {
				if o.Downscaler.Uptime != "Mon-Fri 08:00-18:00 UTC" || o.Janitor.MaxDeletionsPerPass != 7 {
					return "uptime " + o.Downscaler.Uptime + ", janitor options not taken"
				}
				if !slices.Contains(o.Downscaler.ExcludeNamespaces, "platform") {
					return "the agent's own namespace is not excluded"
				}
				return ""
			}},
		{name: "declared capacity controllers are not run twice", objs: []*render.Object{agentDeployment(nil, "agent", "--controllers=provisioner,downscaler", "--provider=local", "--local-cloud=/nowhere", "--cluster=c")},
			controllers: append([]string{agentcmd.ControllerDownscaler}, capacity...)},
		{name: "a schedule the agent cannot parse", objs: []*render.Object{agentDeployment(nil, "agent", "--default-uptime=Mon-Fri 25:00-26:00 UTC")},
			err: "Deployment platform/bosun-agent runs the agent with arguments bosun up cannot run"},
		{name: "an unknown flag", objs: []*render.Object{agentDeployment(nil, "agent", "--no-such-flag")},
			err: "unknown flag: --no-such-flag"},
		{name: "a malformed overprovisioner ConfigMap", objs: []*render.Object{agentDeployment(nil, "agent", "--controllers=overprovisioner", "--overprovisioner-configmap=rules")},
			err: "expected namespace/name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := localfleet.AgentFor(&render.Result{Objects: c.objs}, parse, false)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameSet(o.Controllers, c.controllers) {
				t.Errorf("controllers %v, want %v", o.Controllers, c.controllers)
			}
			if c.check != nil {
				if msg := c.check(o); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
