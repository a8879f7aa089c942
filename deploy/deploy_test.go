package deploy

import (
	"strings"
	"testing"

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
				if v == "delete" && cr.Name != "bosun-agent-janitor" {
					t.Errorf("%s: ClusterRole %s may delete; only the janitor deletes", d.Source, cr.Name)
				}
			}
			for _, res := range r.Resources {
				// The certificate watch lists TLS Secrets (L27), and only
				// lists: it cannot find them otherwise.
				if res == "secrets" && (cr.Name != "bosun-agent-certwatch" || strings.Join(r.Verbs, ",") != "list") {
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

// Extra arguments land in the agent's command line, quoted, after
// --controllers.
func TestRenderAgentArgs(t *testing.T) {
	out, err := RenderAgent(AgentOptions{Controllers: []string{"downscaler", "janitor"}, RBAC: []string{"agent/20-rbac-downscaler.yaml", "agent/30-rbac-janitor.yaml"}, Args: []string{"--default-uptime=Mon-Fri 07:30-20:30 Europe/Berlin", "--exclude-names=^keep-"}})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"- --controllers=downscaler,janitor\n        - \"--default-uptime=Mon-Fri 07:30-20:30 Europe/Berlin\"\n        - \"--exclude-names=^keep-\"\n", "name: bosun-agent-downscaler", "name: bosun-agent-janitor"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered manifests lack %q", want)
		}
	}
}
