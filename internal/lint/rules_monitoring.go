package lint

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bosun-platform/bosun/internal/render"
)

// ScraperLabel marks a pod template as a metrics scraper for L16 when its
// image is not one lint recognises.
const ScraperLabel = "bosun.dev/scraper"

// scraperImages are the image names (the last path element, without tag
// or digest) of metrics scrapers: Prometheus, VictoriaMetrics' vmagent,
// Grafana Agent and Alloy, the OpenTelemetry Collector.
var scraperImages = map[string]bool{
	"prometheus": true, "vmagent": true, "alloy": true,
	"opentelemetry-collector": true, "opentelemetry-collector-contrib": true,
}

// spreadKeys are the topology keys that keep scraper replicas apart.
var spreadKeys = map[string]bool{corev1.LabelHostname: true, corev1.LabelTopologyZone: true}

// isScraper tells whether a workload scrapes metrics: by the image of one
// of its containers or by the bosun.dev/scraper label.
func isScraper(w *workload) bool {
	if w.pod.Labels[ScraperLabel] == "true" {
		return true
	}
	for _, c := range w.pod.Spec.Containers {
		if scraperImages[imageName(c.Image)] || strings.HasSuffix(repository(c.Image), "grafana/agent") {
			return true
		}
	}
	return false
}

// repository is an image reference without tag or digest.
func repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// imageName is the last path element of an image's repository.
func imageName(image string) string {
	r := repository(image)
	return r[strings.LastIndex(r, "/")+1:]
}

// L16: a single scraper loses metrics (and alerts) whenever its node goes;
// production runs at least two, kept apart by required anti-affinity.
func checkRedundantScrapers(ctx *clusterContext, r *Rule) {
	if !ctx.production() {
		return
	}
	for _, w := range ctx.workloads {
		if !isScraper(w) || (w.kind != "Deployment" && w.kind != "StatefulSet") {
			continue
		}
		replicas, found, _ := unstructured.NestedInt64(w.obj.Object.Object, "spec", "replicas")
		if !found {
			replicas = 1
		}
		if replicas < 2 {
			ctx.object(r, w.obj, "metrics scraper with %d replica(s); production runs at least 2", replicas)
		}
		if !requiredAntiAffinity(w.pod.Spec.Affinity, w.pod.Labels) {
			ctx.object(r, w.obj, "metrics scraper without required pod anti-affinity against its own pods (topologyKey %s or %s)", corev1.LabelHostname, corev1.LabelTopologyZone)
		}
	}
	for _, o := range ctx.res.Objects {
		u := o.Object
		if !strings.HasPrefix(u.GetAPIVersion(), "monitoring.coreos.com/") || (u.GetKind() != "Prometheus" && u.GetKind() != "PrometheusAgent") {
			continue
		}
		replicas, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
		if !found {
			replicas = 1
		}
		if replicas < 2 {
			ctx.object(r, o, "%s with %d replica(s); production runs at least 2", u.GetKind(), replicas)
		}
		var aff corev1.Affinity
		raw, _, _ := unstructured.NestedMap(u.Object, "spec", "affinity")
		if raw != nil {
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &aff)
		}
		// The operator labels the pods it makes; a term selecting them by
		// the operator's labels counts.
		own := map[string]string{"app.kubernetes.io/name": strings.ToLower(u.GetKind()), "prometheus": u.GetName(), "app.kubernetes.io/instance": u.GetName()}
		if !requiredAntiAffinity(&aff, own) {
			ctx.object(r, o, "%s without required pod anti-affinity against its own pods (spec.affinity, topologyKey %s or %s)", u.GetKind(), corev1.LabelHostname, corev1.LabelTopologyZone)
		}
	}
}

// requiredAntiAffinity tells whether a required anti-affinity term spreads
// pods carrying own over hosts or zones.
func requiredAntiAffinity(a *corev1.Affinity, own map[string]string) bool {
	if a == nil || a.PodAntiAffinity == nil {
		return false
	}
	for _, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		if !spreadKeys[term.TopologyKey] || term.LabelSelector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(own)) {
			return true
		}
	}
	return false
}

// platformNamespaces hold platform components.
var platformNamespaces = map[string]bool{"kube-system": true, "monitoring": true}

// isPlatform tells whether a workload is a platform component: it runs in
// kube-system or monitoring, or fits only system pools (L07).
func (ctx *clusterContext) isPlatform(w *workload) bool {
	if platformNamespaces[w.namespace()] {
		return true
	}
	if len(w.pools) == 0 {
		return false
	}
	for _, p := range w.pools {
		if p.Role != "system" {
			return false
		}
	}
	return true
}

// vpaKey names a VPA's target.
type vpaKey struct{ namespace, kind, name string }

// L50: platform components are sized from measurements: requests set on
// every container, or a VerticalPodAutoscaler that sets them. A VPA whose
// target is not rendered sizes nothing.
func checkPlatformRightSized(ctx *clusterContext, r *Rule) {
	vpas := map[vpaKey]*render.Object{}
	var order []vpaKey
	for _, o := range ctx.res.Objects {
		u := o.Object
		if u.GetKind() != "VerticalPodAutoscaler" || !strings.HasPrefix(u.GetAPIVersion(), "autoscaling.k8s.io/") {
			continue
		}
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "kind")
		name, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "name")
		if kind == "" || name == "" {
			ctx.object(r, o, "spec.targetRef needs kind and name")
			continue
		}
		key := vpaKey{u.GetNamespace(), kind, name}
		vpas[key] = o
		order = append(order, key)
	}
	targets := map[vpaKey]bool{}
	for _, w := range ctx.workloads {
		key := vpaKey{w.namespace(), w.kind, w.obj.Object.GetName()}
		targets[key] = true
		if !ctx.isPlatform(w) {
			continue
		}
		if vpa, ok := vpas[key]; ok {
			mode, _, _ := unstructured.NestedString(vpa.Object.Object, "spec", "updatePolicy", "updateMode")
			if mode != "Off" {
				continue // the VPA sets the requests
			}
		}
		for _, c := range allContainers(&w.pod.Spec) {
			var missing []string
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[res]; !ok {
					missing = append(missing, string(res))
				}
			}
			if len(missing) > 0 {
				ctx.object(r, w.obj, "platform container %s has no %s request and no VerticalPodAutoscaler (updateMode other than Off) sizes it", c.Name, strings.Join(missing, " or "))
			}
		}
	}
	for _, key := range order {
		if o := vpas[key]; !targets[key] {
			ctx.object(r, o, "targets %s %s/%s, which is not rendered for this cluster: it sizes nothing", key.kind, key.namespace, key.name)
		}
	}
}
