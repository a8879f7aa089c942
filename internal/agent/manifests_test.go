package agent

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/bosun-platform/bosun/deploy"
)

// The registration table and deploy/agent agree: every controller's RBAC
// file ships, and every shipped RBAC file belongs to a controller (a
// controller added without its RBAC, or RBAC left behind by a removed
// one, fails here).
func TestRegistryRBACFiles(t *testing.T) {
	shipped, err := deploy.RBACFiles()
	if err != nil {
		t.Fatal(err)
	}
	named, err := RBACFiles(Names())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(named)
	if !slices.Equal(named, shipped) {
		t.Errorf("RBAC files named by the registration table %v, shipped in deploy/agent %v", named, shipped)
	}
	if _, err := RBACFiles([]string{"autoscaler"}); err == nil || !strings.Contains(err.Error(), "unknown controller") {
		t.Errorf("unknown controller: %v", err)
	}
}

// Unknown controllers are refused with the known ones listed.
func TestRenderManifestsUnknownController(t *testing.T) {
	_, err := RenderManifests(deploy.AgentOptions{Controllers: []string{"autoscaler"}})
	if err == nil || !strings.Contains(err.Error(), KnownControllers()) {
		t.Errorf("unknown controller: %v, want the known ones listed", err)
	}
}

// The capacity controllers cannot run in a pod yet: the only provider is
// the local cloud on the machine of `bosun up`. Rendering them is refused
// with what to do instead, rather than shipping a Deployment that fails.
func TestRenderManifestsRefusesCloudControllers(t *testing.T) {
	for _, controllers := range [][]string{{"provisioner"}, {"downscaler", "interruption"}, {"scale-down", "reaper"}} {
		out, err := RenderManifests(deploy.AgentOptions{Controllers: controllers, Args: []string{"--cluster=prod-eu1", "--provider=local"}})
		if err == nil || !strings.Contains(err.Error(), "no provider runs in a pod yet") || !strings.Contains(err.Error(), "bosun agent --kubeconfig") {
			t.Errorf("controllers %v: error %v, output %d bytes; want a refusal that says where they run", controllers, err, len(out))
		}
	}
}

// Applied as shipped, the agent scales nothing down on its own: the
// default uptime is "always" (as the CLI's and kube-downscaler's), so office
// hours are something a cluster opts into (L24), never a surprise.
func TestShippedAgentKeepsEverythingUp(t *testing.T) {
	for _, controllers := range [][]string{nil, {"downscaler"}} {
		out, err := RenderManifests(deploy.AgentOptions{Controllers: controllers})
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(out), "\n---\n") {
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(strings.TrimPrefix(doc, "---\n")), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := obj.(*appsv1.Deployment)
			if !ok {
				continue
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, a := range c.Args {
					name, value, _ := strings.Cut(a, "=")
					if (name == "--default-uptime" && value != "always") || (name == "--default-downtime" && value != "never") {
						t.Errorf("controllers %v: the shipped Deployment passes %s: it would scale every workload down outside those hours", controllers, a)
					}
				}
				for _, e := range c.Env {
					if e.Name == "DEFAULT_UPTIME" || e.Name == "DEFAULT_DOWNTIME" {
						t.Errorf("controllers %v: the shipped Deployment sets %s=%s", controllers, e.Name, e.Value)
					}
				}
			}
		}
	}
}
