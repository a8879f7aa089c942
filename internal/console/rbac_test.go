package console

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// The shipped role lets the console list and watch every kind it watches,
// except Secrets, whose data RBAC could not keep from it.
func TestRBACRoleCoversKindsButSecrets(t *testing.T) {
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(RBAC), &role); err != nil {
		t.Fatalf("parsing rbac.yaml: %v", err)
	}
	allowed := map[[2]string]map[string]bool{}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				verbs := map[string]bool{}
				for _, v := range r.Verbs {
					verbs[v] = true
				}
				allowed[[2]string{g, res}] = verbs
			}
		}
	}
	for _, k := range Kinds {
		verbs := allowed[[2]string{k.GVR.Group, k.GVR.Resource}]
		if k.Name == "Secret" {
			if verbs != nil {
				t.Errorf("the role grants %v on secrets; it must not", verbs)
			}
			continue
		}
		if !verbs["list"] || !verbs["watch"] || !verbs["get"] {
			t.Errorf("the role lacks get/list/watch on %s.%s", k.GVR.Resource, k.GVR.Group)
		}
	}
}
