package lint

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// L37: the restricted pod security profile, plus a read-only root file
// system and no service account token for pods that do not need one.
func checkPodSecurity(ctx *clusterContext, r *Rule) {
	for _, w := range ctx.workloads {
		if problems := podSecurityProblems(&w.pod.Spec); len(problems) > 0 {
			ctx.object(r, w.obj, "%s", strings.Join(problems, "; "))
		}
	}
}

func podSecurityProblems(spec *corev1.PodSpec) []string {
	var out []string
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		out = append(out, "uses host namespaces")
	}
	sa := spec.ServiceAccountName
	if (sa == "" || sa == "default") && (spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken) {
		out = append(out, "mounts the default service account's token (set automountServiceAccountToken: false)")
	}
	podNonRoot := psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	podSeccomp := seccompOK(psc.SeccompProfile)
	for _, c := range allContainers(spec) {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		var p []string
		if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			p = append(p, "runAsNonRoot is not true")
		}
		if sc.Privileged != nil && *sc.Privileged {
			p = append(p, "is privileged")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p = append(p, "allowPrivilegeEscalation is not false")
		}
		if !dropsAll(sc.Capabilities) {
			p = append(p, "does not drop ALL capabilities")
		}
		if extra := addedCapabilities(sc.Capabilities); extra != "" {
			p = append(p, "adds capabilities "+extra)
		}
		if !podSeccomp && !seccompOK(sc.SeccompProfile) {
			p = append(p, "has no RuntimeDefault seccomp profile")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p = append(p, "root file system is writable")
		}
		if len(p) > 0 {
			out = append(out, fmt.Sprintf("container %s: %s", c.Name, strings.Join(p, ", ")))
		}
	}
	return out
}

func seccompOK(p *corev1.SeccompProfile) bool {
	return p != nil && (p.Type == corev1.SeccompProfileTypeRuntimeDefault || p.Type == corev1.SeccompProfileTypeLocalhost)
}

func dropsAll(c *corev1.Capabilities) bool {
	if c == nil {
		return false
	}
	for _, d := range c.Drop {
		if strings.EqualFold(string(d), "ALL") {
			return true
		}
	}
	return false
}

func addedCapabilities(c *corev1.Capabilities) string {
	if c == nil {
		return ""
	}
	var extra []string
	for _, a := range c.Add {
		if a != "NET_BIND_SERVICE" {
			extra = append(extra, string(a))
		}
	}
	return strings.Join(extra, ", ")
}

// writeClusterRoles are the built-in ClusterRoles that write.
var writeClusterRoles = map[string]bool{"edit": true, "admin": true, "cluster-admin": true}

// writeVerbs change the cluster or widen access.
var writeVerbs = map[string]bool{"*": true, "create": true, "update": true, "patch": true, "delete": true, "deletecollection": true, "bind": true, "escalate": true, "impersonate": true}

// L56: in production people are read-only; changes go through the
// pipeline, and emergencies through a time-bound, approved request (L47,
// `bosun access`), never through a standing binding.
func checkHumanWriteAccess(ctx *clusterContext, r *Rule) {
	if !ctx.production() {
		return
	}
	roles := map[string][]string{} // kind/namespace/name → write verbs
	for _, o := range ctx.res.Objects {
		kind := o.Object.GetKind()
		if (kind != "Role" && kind != "ClusterRole") || !strings.HasPrefix(o.Object.GetAPIVersion(), "rbac.authorization.k8s.io/") {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object.Object, "rules")
		var verbs []string
		for _, rule := range rules {
			m, _ := rule.(map[string]any)
			vs, _, _ := unstructured.NestedStringSlice(m, "verbs")
			for _, v := range vs {
				if writeVerbs[strings.ToLower(v)] {
					verbs = append(verbs, v)
				}
			}
		}
		if len(verbs) > 0 {
			roles[kind+"/"+o.Object.GetNamespace()+"/"+o.Object.GetName()] = verbs
		}
	}
	for _, o := range ctx.res.Objects {
		kind := o.Object.GetKind()
		if (kind != "RoleBinding" && kind != "ClusterRoleBinding") || !strings.HasPrefix(o.Object.GetAPIVersion(), "rbac.authorization.k8s.io/") {
			continue
		}
		refKind, _, _ := unstructured.NestedString(o.Object.Object, "roleRef", "kind")
		refName, _, _ := unstructured.NestedString(o.Object.Object, "roleRef", "name")
		var why string
		ns := ""
		if refKind == "Role" {
			ns = o.Object.GetNamespace()
		}
		switch {
		case refKind == "ClusterRole" && writeClusterRoles[refName]:
			why = "ClusterRole " + refName
		case roles[refKind+"/"+ns+"/"+refName] != nil:
			why = fmt.Sprintf("%s %s (which can %s)", refKind, refName, strings.Join(roles[refKind+"/"+ns+"/"+refName], ", "))
		default:
			continue
		}
		if humans := humanSubjects(o.Object); len(humans) > 0 {
			ctx.object(r, o, "gives %s the %s in production; people are read-only there", strings.Join(humans, ", "), why)
		}
	}
}

// humanSubjects lists the User and Group subjects of a binding, except
// the API server's own (system:...).
func humanSubjects(o *unstructured.Unstructured) []string {
	subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
	var out []string
	for _, s := range subjects {
		m, _ := s.(map[string]any)
		kind, _ := m["kind"].(string)
		name, _ := m["name"].(string)
		if (kind == "User" || kind == "Group") && !strings.HasPrefix(name, "system:") {
			out = append(out, kind+" "+name)
		}
	}
	return out
}
