package lint

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/render"
)

// Stabilization windows for L15, in seconds.
const (
	minScaleDownStabilization      = 600
	expectedScaleDownStabilization = 1800
)

func hpas(ctx *clusterContext) []*render.Object {
	var out []*render.Object
	for _, o := range ctx.res.Objects {
		if o.Object.GetKind() == "HorizontalPodAutoscaler" {
			out = append(out, o)
		}
	}
	return out
}

// L14: a CPU target of 60-80% leaves room to absorb a peak while new pods
// start; higher targets saturate, lower ones waste.
func checkHPATarget(ctx *clusterContext, r *Rule) {
	for _, o := range hpas(ctx) {
		u := o.Object.Object
		if v, found, _ := unstructured.NestedInt64(u, "spec", "targetCPUUtilizationPercentage"); found {
			checkTarget(ctx, r, o, v)
		}
		metrics, _, _ := unstructured.NestedSlice(u, "spec", "metrics")
		for _, m := range metrics {
			mm, ok := m.(map[string]any)
			if !ok {
				continue
			}
			name, _, _ := unstructured.NestedString(mm, "resource", "name")
			if name != "cpu" {
				continue
			}
			// autoscaling/v2 and v2beta2 nest the target; v2beta1 does not.
			if v, found, _ := unstructured.NestedInt64(mm, "resource", "target", "averageUtilization"); found {
				checkTarget(ctx, r, o, v)
			} else if v, found, _ := unstructured.NestedInt64(mm, "resource", "targetAverageUtilization"); found {
				checkTarget(ctx, r, o, v)
			}
		}
	}
}

func checkTarget(ctx *clusterContext, r *Rule, o *render.Object, v int64) {
	if v < 60 || v > 80 {
		ctx.object(r, o, "CPU target is %d%%; expected 60-80%%", v)
	}
}

// L15: scaling down fast leaves a recovering service without backends.
func checkHPAScaleDown(ctx *clusterContext, r *Rule) {
	for _, o := range hpas(ctx) {
		v, found, _ := unstructured.NestedInt64(o.Object.Object, "spec", "behavior", "scaleDown", "stabilizationWindowSeconds")
		switch {
		case !found:
			ctx.object(r, o, "no behavior.scaleDown.stabilizationWindowSeconds; the default of 300s scales down too soon")
		case v < minScaleDownStabilization:
			ctx.object(r, o, "scale-down stabilization is %ds; at least %ds", v, minScaleDownStabilization)
		case v < expectedScaleDownStabilization:
			ctx.objectSeverity(r, SeverityWarning, o, "scale-down stabilization is %ds; %ds is expected", v, expectedScaleDownStabilization)
		}
	}
}
