package lint

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
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
