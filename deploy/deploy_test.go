package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// The shipped manifests decode as Kubernetes objects, and the RBAC is least
// privilege: no wildcards, no secrets, deletes only in the janitor's role.
func TestAgentManifests(t *testing.T) {
	docs, err := AgentManifests()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, d := range docs {
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(d.YAML, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", d.Source, err)
		}
		kinds[gvk.Kind]++
		cr, ok := obj.(*rbacv1.ClusterRole)
		if !ok {
			continue
		}
		for _, r := range cr.Rules {
			for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups} {
				for _, v := range list {
					if v == "*" {
						t.Errorf("%s: ClusterRole %s uses a wildcard", d.Source, cr.Name)
					}
				}
			}
			for _, v := range r.Verbs {
				// The access controller removes the bindings it granted at
				// their expiry (L47): it deletes bindings, nothing else.
				accessBindings := cr.Name == "bosun-agent-access" && slices.Equal(r.Resources, []string{"clusterrolebindings", "rolebindings"})
				if v == "delete" && cr.Name != "bosun-agent-janitor" && !accessBindings {
					t.Errorf("%s: ClusterRole %s may delete; only the janitor deletes (and the access controller its bindings)", d.Source, cr.Name)
				}
			}
			for _, res := range r.Resources {
				// The certificate watch lists TLS Secrets (L27), and only
				// lists: it cannot find them otherwise.
				// So do the scheduled backups (L29), to encrypt them.
				if res == "secrets" && ((cr.Name != "bosun-agent-certwatch" && cr.Name != "bosun-agent-backupschedule") || strings.Join(r.Verbs, ",") != "list") {
					t.Errorf("%s: ClusterRole %s can read every secret in the cluster", d.Source, cr.Name)
				}
			}
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Deployment"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the agent manifests", k)
		}
	}
}

func TestRenderAgent(t *testing.T) {
	out, err := RenderAgent(AgentOptions{Controllers: []string{"downscaler"}, RBAC: []string{"agent/20-rbac-downscaler.yaml"}, Namespace: "platform", Image: "registry.example/bosun:1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"name: bosun-agent-downscaler", "namespace: platform", "image: registry.example/bosun:1.2.3", "--controllers=downscaler\n", "kind: Namespace\nmetadata:\n  name: platform"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered manifests lack %q", want)
		}
	}
	for _, unwanted := range []string{"bosun-agent-janitor", "bosun-system"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("rendered manifests contain %q", unwanted)
		}
	}
	for i, doc := range strings.Split(text, "\n---\n") {
		doc = strings.TrimPrefix(doc, "---\n")
		if _, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil); err != nil {
			t.Errorf("document %d does not decode: %v\n%s", i, err, doc)
		}
	}
	if _, err := RenderAgent(AgentOptions{Controllers: []string{"autoscaler"}, RBAC: []string{"agent/20-rbac-autoscaler.yaml"}}); err == nil {
		t.Error("an RBAC file that does not exist accepted")
	}
	if _, err := RenderAgent(AgentOptions{Controllers: []string{"downscaler"}, RBAC: []string{"agent/40-deployment.yaml"}}); err == nil {
		t.Error("a file without RBAC accepted as RBAC")
	}
}

// Extra arguments land in the agent's command line, quoted: a flag the
// shipped Deployment already passes is replaced in place (the last value of
// a flag wins, so an override appended before the shipped
// --default-uptime=always used to be lost), other flags follow
// --controllers.
func TestRenderAgentArgs(t *testing.T) {
	out, err := RenderAgent(AgentOptions{Controllers: []string{"downscaler", "janitor"}, RBAC: []string{"agent/20-rbac-downscaler.yaml", "agent/30-rbac-janitor.yaml"}, Args: []string{"--default-uptime=Mon-Fri 07:30-20:30 Europe/Berlin", "--exclude-names=^keep-"}})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"name: bosun-agent-downscaler", "name: bosun-agent-janitor"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered manifests lack %q", want)
		}
	}
	got := agentContainerArgs(t, out)
	want := []string{"agent", "--controllers=downscaler,janitor", "--exclude-names=^keep-", "--default-uptime=Mon-Fri 07:30-20:30 Europe/Berlin", "--log-format=json"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("agent args\n got %q\nwant %q", got, want)
	}
	for _, bad := range [][]string{{"downscaler"}, {"--controllers=janitor"}, {"--"}} {
		if _, err := RenderAgent(AgentOptions{Controllers: []string{"downscaler"}, Args: bad}); err == nil {
			t.Errorf("--arg %q accepted", bad)
		}
	}
}

// agentContainerArgs decodes the rendered stream and returns the agent
// container's arguments.
func agentContainerArgs(t *testing.T, stream []byte) []string {
	t.Helper()
	for _, doc := range strings.Split(string(stream), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(strings.TrimPrefix(doc, "---\n")), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := obj.(*appsv1.Deployment); ok {
			return d.Spec.Template.Spec.Containers[0].Args
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

// The capacity controllers run in a pod only against AWS: with the local
// cloud (on the machine of `bosun up`) or without the AWS flags they are
// refused with what to do instead, rather than shipping a Deployment that
// fails.
func TestRenderAgentRefusesCapacityControllers(t *testing.T) {
	cloud := [][]string{{"provisioner"}, {"interruption"}, {"scale-down", "reaper"}}
	for i, controllers := range [][]string{{"provisioner"}, {"downscaler", "interruption"}, {"scale-down", "reaper"}} {
		out, err := RenderAgent(AgentOptions{Controllers: controllers, Cloud: cloud[i], Args: []string{"--cluster=prod-eu1", "--provider=local"}})
		if err == nil || !strings.Contains(err.Error(), "only the AWS provider") || !strings.Contains(err.Error(), "bosun agent --kubeconfig") {
			t.Errorf("controllers %v: error %v, output %d bytes; want a refusal that says where they run", controllers, err, len(out))
		}
	}
	_, err := RenderAgent(AgentOptions{Controllers: []string{"interruption"}, Cloud: []string{"interruption"}, Args: []string{"--provider=aws", "--cluster=prod-eu1"}})
	if err == nil || !strings.Contains(err.Error(), "--region, --aws-queue-url missing") {
		t.Errorf("aws without region and queue: %v", err)
	}
	if _, err := RenderAgent(AgentOptions{Controllers: []string{"downscaler"}, AWSRoleARN: "arn:aws:iam::1:role/x"}); err == nil {
		t.Error("an AWS role without --provider=aws accepted")
	}
}

// On AWS (docs/aws.md) the capacity controllers render with their RBAC,
// the AWS flags and the IRSA role on the service account.
func TestRenderAgentAWS(t *testing.T) {
	out, err := RenderAgent(AgentOptions{
		Controllers: []string{"provisioner", "interruption", "scale-down", "reaper"}, Namespace: "bosun-system",
		Cloud:      []string{"provisioner", "interruption", "scale-down", "reaper"},
		RBAC:       []string{"agent/60-rbac-provisioner.yaml", "agent/70-rbac-interruption.yaml", "agent/80-rbac-node-removal.yaml"},
		Args:       []string{"--provider=aws", "--cluster=prod-eu1", "--region=eu-central-1", "--aws-queue-url=https://sqs.eu-central-1.amazonaws.com/111111111111/bosun-prod-eu1"},
		AWSRoleARN: "arn:aws:iam::111111111111:role/bosun-agent",
	})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"name: bosun-agent-provisioner", "name: bosun-agent-interruption", "name: bosun-agent-node-removal",
		"  annotations:\n    eks.amazonaws.com/role-arn: \"arn:aws:iam::111111111111:role/bosun-agent\"\n",
		"- --controllers=provisioner,interruption,scale-down,reaper\n        - \"--provider=aws\"\n        - \"--cluster=prod-eu1\"\n        - \"--region=eu-central-1\"\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered manifests lack %q", want)
		}
	}
	for i, doc := range strings.Split(text, "\n---\n") {
		doc = strings.TrimPrefix(doc, "---\n")
		if _, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil); err != nil {
			t.Errorf("document %d does not decode: %v\n%s", i, err, doc)
		}
	}
}

// Applied as shipped, the agent scales nothing down on its own: the
// default uptime is "always" (as the CLI's and kube-downscaler's), so office
// hours are something a cluster opts into (L24), never a surprise.
func TestShippedAgentKeepsEverythingUp(t *testing.T) {
	for _, controllers := range [][]string{{"downscaler"}, {"downscaler", "janitor"}} {
		out, err := RenderAgent(AgentOptions{Controllers: controllers, RBAC: []string{"agent/20-rbac-downscaler.yaml"}})
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
