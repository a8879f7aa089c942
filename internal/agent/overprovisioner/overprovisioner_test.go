package overprovisioner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/lint"
)

// The pause pods meet the restricted Pod Security Standard, so namespaces
// that enforce it admit them.
func TestPausePodsRestricted(t *testing.T) {
	d := deployment("overprovisioning", &target{name: "cluster"}, 1, resource.MustParse("100m"), resource.MustParse("128Mi"), true)
	spec := d.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v: want runAsNonRoot, a non-root user and the RuntimeDefault seccomp profile", psc)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
			t.Errorf("container %s security context %+v: want allowPrivilegeEscalation false and capabilities drop ALL", c.Name, sc)
		}
	}
	if d.Name != agentapi.DeploymentName("cluster") || spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("deployment %s: want %s without a service account token", d.Name, agentapi.DeploymentName("cluster"))
	}
}

// L55: production clusters admit only pods labelled with an application
// and a team (lint's rule and its ValidatingAdmissionPolicy), so the pause
// pods carry both; the Deployment's selector stays the target label alone,
// as selectors cannot change on existing Deployments.
func TestPausePodsOwned(t *testing.T) {
	d := deployment("overprovisioning", &target{name: "pool-checkout"}, 1, resource.MustParse("100m"), resource.MustParse("128Mi"), false)
	for _, l := range lint.OwnershipLabels {
		if d.Spec.Template.Labels[l] == "" {
			t.Errorf("pause pod template lacks label %s (L55): %v", l, d.Spec.Template.Labels)
		}
	}
	if got := d.Spec.Selector.MatchLabels; len(got) != 1 || got[LabelManaged] != "pool-checkout" {
		t.Errorf("selector = %v, want only %s=pool-checkout", got, LabelManaged)
	}
}
