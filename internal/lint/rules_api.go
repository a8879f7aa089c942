package lint

import (
	"fmt"
	"strconv"
	"strings"
)

// apiChange is when Kubernetes deprecated or removed one kind in one API
// version, by minor release of 1.x.
type apiChange struct {
	deprecated, removed int
	replacement         string
}

// apiChanges lists the served API versions Kubernetes removed, by
// apiVersion and kind (from the upstream deprecation guide).
var apiChanges = map[string]apiChange{
	"extensions/v1beta1/Deployment":                                       {9, 16, "apps/v1"},
	"extensions/v1beta1/DaemonSet":                                        {9, 16, "apps/v1"},
	"extensions/v1beta1/ReplicaSet":                                       {9, 16, "apps/v1"},
	"extensions/v1beta1/NetworkPolicy":                                    {9, 16, "networking.k8s.io/v1"},
	"extensions/v1beta1/PodSecurityPolicy":                                {10, 16, "policy/v1beta1 (itself removed in 1.25)"},
	"apps/v1beta1/Deployment":                                             {9, 16, "apps/v1"},
	"apps/v1beta1/StatefulSet":                                            {9, 16, "apps/v1"},
	"apps/v1beta2/Deployment":                                             {9, 16, "apps/v1"},
	"apps/v1beta2/StatefulSet":                                            {9, 16, "apps/v1"},
	"apps/v1beta2/DaemonSet":                                              {9, 16, "apps/v1"},
	"apps/v1beta2/ReplicaSet":                                             {9, 16, "apps/v1"},
	"extensions/v1beta1/Ingress":                                          {14, 22, "networking.k8s.io/v1"},
	"networking.k8s.io/v1beta1/Ingress":                                   {19, 22, "networking.k8s.io/v1"},
	"networking.k8s.io/v1beta1/IngressClass":                              {19, 22, "networking.k8s.io/v1"},
	"rbac.authorization.k8s.io/v1beta1/ClusterRole":                       {17, 22, "rbac.authorization.k8s.io/v1"},
	"rbac.authorization.k8s.io/v1beta1/ClusterRoleBinding":                {17, 22, "rbac.authorization.k8s.io/v1"},
	"rbac.authorization.k8s.io/v1beta1/Role":                              {17, 22, "rbac.authorization.k8s.io/v1"},
	"rbac.authorization.k8s.io/v1beta1/RoleBinding":                       {17, 22, "rbac.authorization.k8s.io/v1"},
	"apiextensions.k8s.io/v1beta1/CustomResourceDefinition":               {16, 22, "apiextensions.k8s.io/v1"},
	"admissionregistration.k8s.io/v1beta1/MutatingWebhookConfiguration":   {16, 22, "admissionregistration.k8s.io/v1"},
	"admissionregistration.k8s.io/v1beta1/ValidatingWebhookConfiguration": {16, 22, "admissionregistration.k8s.io/v1"},
	"apiregistration.k8s.io/v1beta1/APIService":                           {19, 22, "apiregistration.k8s.io/v1"},
	"scheduling.k8s.io/v1beta1/PriorityClass":                             {14, 22, "scheduling.k8s.io/v1"},
	"storage.k8s.io/v1beta1/StorageClass":                                 {19, 22, "storage.k8s.io/v1"},
	"storage.k8s.io/v1beta1/CSIDriver":                                    {19, 22, "storage.k8s.io/v1"},
	"storage.k8s.io/v1beta1/CSINode":                                      {17, 22, "storage.k8s.io/v1"},
	"storage.k8s.io/v1beta1/VolumeAttachment":                             {19, 22, "storage.k8s.io/v1"},
	"coordination.k8s.io/v1beta1/Lease":                                   {19, 22, "coordination.k8s.io/v1"},
	"certificates.k8s.io/v1beta1/CertificateSigningRequest":               {19, 22, "certificates.k8s.io/v1"},
	"batch/v1beta1/CronJob":                                               {21, 25, "batch/v1"},
	"discovery.k8s.io/v1beta1/EndpointSlice":                              {21, 25, "discovery.k8s.io/v1"},
	"events.k8s.io/v1beta1/Event":                                         {21, 25, "events.k8s.io/v1"},
	"autoscaling/v2beta1/HorizontalPodAutoscaler":                         {22, 25, "autoscaling/v2"},
	"policy/v1beta1/PodDisruptionBudget":                                  {21, 25, "policy/v1"},
	"policy/v1beta1/PodSecurityPolicy":                                    {21, 25, "Pod Security Admission"},
	"node.k8s.io/v1beta1/RuntimeClass":                                    {20, 25, "node.k8s.io/v1"},
	"autoscaling/v2beta2/HorizontalPodAutoscaler":                         {23, 26, "autoscaling/v2"},
	"flowcontrol.apiserver.k8s.io/v1beta1/FlowSchema":                     {23, 26, "flowcontrol.apiserver.k8s.io/v1"},
	"flowcontrol.apiserver.k8s.io/v1beta1/PriorityLevelConfiguration":     {23, 26, "flowcontrol.apiserver.k8s.io/v1"},
	"storage.k8s.io/v1beta1/CSIStorageCapacity":                           {24, 27, "storage.k8s.io/v1"},
	"flowcontrol.apiserver.k8s.io/v1beta2/FlowSchema":                     {26, 29, "flowcontrol.apiserver.k8s.io/v1"},
	"flowcontrol.apiserver.k8s.io/v1beta2/PriorityLevelConfiguration":     {26, 29, "flowcontrol.apiserver.k8s.io/v1"},
	"flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema":                     {29, 32, "flowcontrol.apiserver.k8s.io/v1"},
	"flowcontrol.apiserver.k8s.io/v1beta3/PriorityLevelConfiguration":     {29, 32, "flowcontrol.apiserver.k8s.io/v1"},
}

// L30: an upgrade must not find manifests of removed APIs; deprecated ones
// and those removed in the next minor are warned about ahead of time.
func checkDeprecatedAPIs(ctx *clusterContext, r *Rule) {
	minor, err := clusterMinor(ctx.cluster.KubernetesVersion)
	if err != nil {
		return
	}
	for _, o := range ctx.res.Objects {
		key := o.Object.GetAPIVersion() + "/" + o.Object.GetKind()
		ch, ok := apiChanges[key]
		if !ok {
			continue
		}
		gv := o.Object.GetAPIVersion()
		switch {
		case minor >= ch.removed:
			ctx.object(r, o, "%s %s was removed in Kubernetes 1.%d; the cluster runs %s; use %s", gv, o.Object.GetKind(), ch.removed, ctx.cluster.KubernetesVersion, ch.replacement)
		case minor+1 >= ch.removed:
			ctx.objectSeverity(r, SeverityWarning, o, "%s %s is removed in Kubernetes 1.%d, the next minor; use %s", gv, o.Object.GetKind(), ch.removed, ch.replacement)
		case minor >= ch.deprecated:
			ctx.objectSeverity(r, SeverityWarning, o, "%s %s is deprecated since Kubernetes 1.%d and removed in 1.%d; use %s", gv, o.Object.GetKind(), ch.deprecated, ch.removed, ch.replacement)
		}
	}
}

func clusterMinor(v string) (int, error) {
	_, minor, ok := strings.Cut(v, ".")
	if !ok {
		return 0, fmt.Errorf("version %q: expected major.minor", v)
	}
	n, err := strconv.Atoi(minor)
	if err != nil {
		return 0, fmt.Errorf("version %q, %w", v, err)
	}
	return n, nil
}
