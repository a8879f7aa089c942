package lint

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/render"
)

// Lint reads the agent's command line the way `bosun agent` does.
func TestAgentCommandLine(t *testing.T) {
	for _, c := range []struct {
		name            string
		command, args   []string
		agent           bool
		overprovisioner bool
		downscaler      bool
	}{
		{"the image's entrypoint, one list", nil, []string{"agent", "--controllers=downscaler,overprovisioner"}, true, true, true},
		{"bosun as the command, value as the next argument", []string{"/usr/local/bin/bosun"}, []string{"agent", "--controllers", "overprovisioner"}, true, true, false},
		{"the flag repeated", []string{"bosun", "agent"}, []string{"--controllers=janitor", "--controllers=overprovisioner"}, true, true, false},
		{"no --controllers: the downscaler alone", nil, []string{"agent", "--once"}, true, false, true},
		{"after --, nothing is a flag", nil, []string{"agent", "--", "--controllers=overprovisioner"}, true, false, true},
		{"a subcommand", nil, []string{"agent", "manifests", "--controllers=overprovisioner"}, false, false, false},
		{"another program", []string{"/cluster-autoscaler"}, []string{"--controllers=overprovisioner"}, false, false, false},
	} {
		args, ok := agentArgs(&corev1.Container{Command: c.command, Args: c.args})
		if ok != c.agent {
			t.Errorf("%s: agent %v, want %v", c.name, ok, c.agent)
			continue
		}
		if !ok {
			continue
		}
		if got := runsController(args, overprovisionerController); got != c.overprovisioner {
			t.Errorf("%s: overprovisioner %v, want %v", c.name, got, c.overprovisioner)
		}
		if got := runsController(args, downscalerController); got != c.downscaler {
			t.Errorf("%s: downscaler %v, want %v", c.name, got, c.downscaler)
		}
	}
}

func TestAgentNamespace(t *testing.T) {
	deployment := &unstructured.Unstructured{}
	deployment.SetKind("Deployment")
	deployment.SetNamespace("kube-system")
	w := &workload{obj: &render.Object{Object: deployment}}
	fromPod := corev1.EnvVar{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}
	for _, c := range []struct {
		env  []corev1.EnvVar
		want string
	}{
		{nil, "bosun-system"},
		{[]corev1.EnvVar{{Name: "POD_NAMESPACE", Value: "platform"}}, "platform"},
		{[]corev1.EnvVar{fromPod}, "kube-system"},
	} {
		if got := agentNamespace(w, &corev1.Container{Env: c.env}); got != c.want {
			t.Errorf("env %v: namespace %q, want %q", c.env, got, c.want)
		}
	}
}
