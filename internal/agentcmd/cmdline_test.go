package agentcmd_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/agentcmd"
)

// A container's command line is read the way `bosun agent` parses it.
func TestParseCommandLine(t *testing.T) {
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
		{"spaces around the items", nil, []string{"agent", "--controllers= janitor , overprovisioner"}, true, true, false},
		{"no --controllers: the downscaler alone", nil, []string{"agent", "--once"}, true, false, true},
		{"no arguments at all", nil, []string{"agent"}, true, false, true},
		{"after --, nothing is a flag", nil, []string{"agent", "--", "--controllers=overprovisioner"}, true, false, true},
		{"a flag without its value", nil, []string{"agent", "--controllers"}, true, false, true},
		{"a subcommand", nil, []string{"agent", "manifests", "--controllers=overprovisioner"}, false, false, false},
		{"another bosun command", []string{"bosun"}, []string{"lint", "--controllers=overprovisioner"}, false, false, false},
		{"another program", []string{"/cluster-autoscaler"}, []string{"--controllers=overprovisioner"}, false, false, false},
		{"no command line", nil, nil, false, false, false},
	} {
		l, ok := agentcmd.ParseCommandLine(&corev1.Container{Command: c.command, Args: c.args}, "ns")
		if ok != c.agent {
			t.Errorf("%s: agent %v, want %v", c.name, ok, c.agent)
			continue
		}
		if !ok {
			continue
		}
		if got := l.Runs(agentcmd.ControllerOverprovisioner); got != c.overprovisioner {
			t.Errorf("%s: overprovisioner %v, want %v", c.name, got, c.overprovisioner)
		}
		if got := l.Runs(agentcmd.ControllerDownscaler); got != c.downscaler {
			t.Errorf("%s: downscaler %v, want %v", c.name, got, c.downscaler)
		}
	}
}

func TestCommandLineFlags(t *testing.T) {
	l, ok := agentcmd.ParseCommandLine(&corev1.Container{Args: []string{"agent",
		"--namespace", "shop", "--exclude-namespaces=a,b", "--exclude-namespaces", "c", "--namespace=web", "--", "--namespace=x"}}, "")
	if !ok {
		t.Fatal("not read as the agent")
	}
	if got := l.Flag("namespace"); !slices.Equal(got, []string{"shop", "web"}) {
		t.Errorf("--namespace: %q", got)
	}
	if got := l.List("exclude-namespaces", nil); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("--exclude-namespaces: %q", got)
	}
	if got := l.List("exclude-names", []string{"default"}); !slices.Equal(got, []string{"default"}) {
		t.Errorf("an absent list flag: %q, want its default", got)
	}
}

// The agent's own namespace and the overprovisioner's ConfigMap follow the
// flags' defaults: $POD_NAMESPACE or bosun-system, and the default name.
func TestCommandLineOverprovisionerConfigMap(t *testing.T) {
	fromPod := corev1.EnvVar{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}
	for _, c := range []struct {
		name      string
		args      []string
		env       []corev1.EnvVar
		namespace string
		configMap string
		explicit  bool
	}{
		{"no environment", nil, nil, "bosun-system", "bosun-system/overprovisioning", false},
		{"an empty value", nil, []corev1.EnvVar{{Name: "POD_NAMESPACE"}}, "bosun-system", "bosun-system/overprovisioning", false},
		{"a value", nil, []corev1.EnvVar{{Name: "POD_NAMESPACE", Value: "platform"}}, "platform", "platform/overprovisioning", false},
		{"the downward API", nil, []corev1.EnvVar{fromPod}, "kube-system", "kube-system/overprovisioning", false},
		{"the flag, last one wins", []string{"--overprovisioner-configmap=a/b", "--overprovisioner-configmap", "overprovisioning/rules"}, []corev1.EnvVar{fromPod}, "kube-system", "overprovisioning/rules", true},
	} {
		l, ok := agentcmd.ParseCommandLine(&corev1.Container{Args: append([]string{"agent", "--controllers=overprovisioner"}, c.args...), Env: c.env}, "kube-system")
		if !ok {
			t.Fatalf("%s: not read as the agent", c.name)
		}
		if l.Namespace != c.namespace {
			t.Errorf("%s: namespace %q, want %q", c.name, l.Namespace, c.namespace)
		}
		if cm, explicit := l.OverprovisionerConfigMap(); cm != c.configMap || explicit != c.explicit {
			t.Errorf("%s: ConfigMap %q (explicit %v), want %q (%v)", c.name, cm, explicit, c.configMap, c.explicit)
		}
	}
}

func TestSplitConfigMap(t *testing.T) {
	for _, c := range []struct {
		ref      string
		ns, name string
		ok       bool
	}{
		{"overprovisioning/rules", "overprovisioning", "rules", true},
		{"rules", "rules", "", false},
		{"/rules", "", "rules", false},
		{"overprovisioning/", "overprovisioning", "", false},
		{"", "", "", false},
	} {
		ns, name, ok := agentcmd.SplitConfigMap(c.ref)
		if ns != c.ns || name != c.name || ok != c.ok {
			t.Errorf("%q: %q %q %v, want %q %q %v", c.ref, ns, name, ok, c.ns, c.name, c.ok)
		}
	}
}

// A container's listen address is read as `bosun agent` chooses it: the
// last --listen-address, else :8080 in-cluster and loopback with
// --kubeconfig (issue 18 item 10).
func TestCommandLineListenAddress(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent"}, agentcmd.DefaultListenAddress},
		{[]string{"agent", "--kubeconfig", "/kc"}, agentcmd.WorkstationListenAddress},
		{[]string{"agent", "--kubeconfig=/kc", "--listen-address=:9090"}, ":9090"},
		{[]string{"agent", "--listen-address", ":1", "--listen-address", "127.0.0.1:2"}, "127.0.0.1:2"},
		{[]string{"agent", "--listen-address="}, ""},
	} {
		l, ok := agentcmd.ParseCommandLine(&corev1.Container{Args: c.args}, "ns")
		if !ok {
			t.Fatalf("%q: not read as the agent", c.args)
		}
		if got, why := l.ListenAddress(); got != c.want || why == "" {
			t.Errorf("%q: listen address %q (%s), want %q", c.args, got, why, c.want)
		}
	}
}
