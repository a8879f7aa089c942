package agent

import (
	"reflect"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/agent/access"
)

// The shipped RBAC of the access controller is exactly access.PolicyRules
// (L47): cluster-wide, bindings and `bind` on edit and admin only; in its
// namespace, the requests. A rule added to one and not the other fails.
func TestAccessRBACMatchesPolicyRules(t *testing.T) {
	docs, err := deploy.AgentManifests()
	if err != nil {
		t.Fatal(err)
	}
	var cluster, namespaced []rbacv1.PolicyRule
	for _, d := range docs {
		if !strings.HasPrefix(d.Source, "agent/95-rbac-access.yaml#") {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(d.YAML, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", d.Source, err)
		}
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			cluster = append(cluster, o.Rules...)
		case *rbacv1.Role:
			if o.Namespace != access.DefaultNamespace {
				t.Errorf("Role %s in %s; expected the requests' namespace %s", o.Name, o.Namespace, access.DefaultNamespace)
			}
			namespaced = append(namespaced, o.Rules...)
		}
	}
	wantCluster, wantNamespaced := access.PolicyRules()
	if !reflect.DeepEqual(cluster, wantCluster) {
		t.Errorf("ClusterRole rules\n%+v\nexpected access.PolicyRules\n%+v", cluster, wantCluster)
	}
	if !reflect.DeepEqual(namespaced, wantNamespaced) {
		t.Errorf("Role rules\n%+v\nexpected access.PolicyRules\n%+v", namespaced, wantNamespaced)
	}
}
