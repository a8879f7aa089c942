package console

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind describes a resource the console watches.
type Kind struct {
	// Name is the Kind, e.g. Deployment.
	Name string
	// Plural is the resource, e.g. deployments; it is the URL segment.
	Plural string
	// GVR is the resource's group, version and resource.
	GVR schema.GroupVersionResource
	// Namespaced is false for Nodes and Namespaces.
	Namespaced bool
	// MetadataOnly kinds are watched as metadata (ConfigMaps, Secrets): the
	// console never receives their data.
	MetadataOnly bool
	// Short are kubectl's short names.
	Short []string
}

// APIVersion returns the apiVersion of the Kind's objects.
func (k Kind) APIVersion() string { return k.GVR.GroupVersion().String() }

// Kinds are the resources every cluster cache watches, in display order.
var Kinds = []Kind{
	{Name: "Namespace", Plural: "namespaces", GVR: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, Short: []string{"ns"}},
	{Name: "Node", Plural: "nodes", GVR: schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, Short: []string{"no"}},
	{Name: "Pod", Plural: "pods", GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespaced: true, Short: []string{"po"}},
	{Name: "Deployment", Plural: "deployments", GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Namespaced: true, Short: []string{"deploy"}},
	{Name: "StatefulSet", Plural: "statefulsets", GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, Namespaced: true, Short: []string{"sts"}},
	{Name: "DaemonSet", Plural: "daemonsets", GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, Namespaced: true, Short: []string{"ds"}},
	{Name: "ReplicaSet", Plural: "replicasets", GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, Namespaced: true, Short: []string{"rs"}},
	{Name: "Job", Plural: "jobs", GVR: schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, Namespaced: true},
	{Name: "CronJob", Plural: "cronjobs", GVR: schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, Namespaced: true, Short: []string{"cj"}},
	{Name: "Service", Plural: "services", GVR: schema.GroupVersionResource{Version: "v1", Resource: "services"}, Namespaced: true, Short: []string{"svc"}},
	{Name: "Ingress", Plural: "ingresses", GVR: schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}, Namespaced: true, Short: []string{"ing"}},
	{Name: "PersistentVolumeClaim", Plural: "persistentvolumeclaims", GVR: schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}, Namespaced: true, Short: []string{"pvc"}},
	{Name: "HorizontalPodAutoscaler", Plural: "horizontalpodautoscalers", GVR: schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}, Namespaced: true, Short: []string{"hpa"}},
	{Name: "PodDisruptionBudget", Plural: "poddisruptionbudgets", GVR: schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}, Namespaced: true, Short: []string{"pdb"}},
	{Name: "Event", Plural: "events", GVR: schema.GroupVersionResource{Version: "v1", Resource: "events"}, Namespaced: true, Short: []string{"ev"}},
	{Name: "ConfigMap", Plural: "configmaps", GVR: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, Namespaced: true, MetadataOnly: true, Short: []string{"cm"}},
	{Name: "Secret", Plural: "secrets", GVR: schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, Namespaced: true, MetadataOnly: true},
}

// kindIndex maps every spelling (Kind, plural, singular, short names; any
// case) to the Kind.
var kindIndex = func() map[string]Kind {
	m := map[string]Kind{}
	for _, k := range Kinds {
		m[strings.ToLower(k.Name)] = k
		m[k.Plural] = k
		for _, s := range k.Short {
			m[s] = k
		}
	}
	return m
}()

// LookupKind returns the Kind for any spelling kubectl accepts ("po",
// "pods", "Pod").
func LookupKind(s string) (Kind, bool) {
	k, ok := kindIndex[strings.ToLower(s)]
	return k, ok
}

// CanonicalKind returns the Kind name for any spelling, or s unchanged when
// it is unknown (so the filter simply matches nothing).
func CanonicalKind(s string) string {
	if k, ok := LookupKind(s); ok {
		return k.Name
	}
	return s
}
