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

// The capacity controllers (the registration table's cloud controllers)
// run in a pod only against AWS: with the local cloud on the machine of
// `bosun up` they are refused with what to do instead, rather than
// shipping a Deployment that fails; with --provider=aws and its flags they
// render with their RBAC.
func TestRenderManifestsCloudControllers(t *testing.T) {
	for _, controllers := range [][]string{{"provisioner"}, {"downscaler", "interruption"}, {"scale-down", "reaper"}} {
		out, err := RenderManifests(deploy.AgentOptions{Controllers: controllers, Args: []string{"--cluster=prod-eu1", "--provider=local"}})
		if err == nil || !strings.Contains(err.Error(), "only the AWS provider") || !strings.Contains(err.Error(), "bosun agent --kubeconfig") {
			t.Errorf("controllers %v: error %v, output %d bytes; want a refusal that says where they run", controllers, err, len(out))
		}
	}
	out, err := RenderManifests(deploy.AgentOptions{
		Controllers: []string{"provisioner", "interruption", "scale-down", "reaper"},
		Args:        []string{"--provider=aws", "--cluster=prod-eu1", "--region=eu-central-1", "--aws-queue-url=https://sqs.eu-central-1.amazonaws.com/111111111111/bosun-prod-eu1"},
		AWSRoleARN:  "arn:aws:iam::111111111111:role/bosun-agent",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: bosun-agent-provisioner", "name: bosun-agent-interruption", "name: bosun-agent-node-removal", "eks.amazonaws.com/role-arn"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("AWS manifests lack %q", want)
		}
	}
	if strings.Contains(string(out), "name: bosun-agent-downscaler") {
		t.Error("AWS manifests carry the downscaler's RBAC, not asked for")
	}
}

// The Helm chart knows every controller of the registration table, and
// renders each one's RBAC files only behind its own value
// (controllers.NAME.enabled).
func TestChartControllersMatchRegistry(t *testing.T) {
	var chart []string
	for _, c := range deploy.ChartControllers {
		chart = append(chart, c.Controller)
		files, err := RBACFiles([]string{c.Controller})
		if err != nil {
			t.Errorf("chart controller %s: %v", c.Controller, err)
			continue
		}
		for _, f := range files {
			if !strings.Contains(deploy.ChartCondition(f), ".Values.controllers."+c.Value+".enabled") {
				t.Errorf("chart controller %s: its RBAC %s is not behind controllers.%s.enabled", c.Controller, f, c.Value)
			}
		}
	}
	slices.Sort(chart)
	names := Names()
	slices.Sort(names)
	if !slices.Equal(chart, names) {
		t.Errorf("the chart knows controllers %v, the registration table %v", chart, names)
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
