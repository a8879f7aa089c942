package downscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// workload adapts one kind to the downscaler's view: a replica count that
// can be lowered and restored, with the original kept in an annotation.
type workload struct {
	kind string
	obj  interface {
		metav1.Object
		runtime.Object
	}
	// replicas is the current count (CronJob: 0 suspended, 1 running; HPA:
	// minReplicas).
	replicas int32
	// floor is the lowest count the kind allows during downtime (HPA: 1).
	floor int32
	// template gives per-replica requests for the savings metrics.
	template *corev1.PodTemplateSpec
	// patch writes a merge patch with the object's resourceVersion, so a
	// stale cache fails with a conflict instead of overwriting. It and the
	// functions below are the kind's, the same for every object: a pass
	// builds no closures per object.
	patch func(ctx context.Context, c kubernetes.Interface, w *workload, body []byte) error
	// spec builds the spec part of the patch for a replica count.
	spec func(replicas int32) map[string]any
	// annotate, when set, adds kind-specific annotations to the patch
	// (KEDA's pause annotation); restore says which direction.
	annotate func(replicas int32, restore bool) map[string]*string
	// crds holds the dynamic client of the optional kinds (nil otherwise).
	crds *CRDKinds
	// noSavings leaves the object out of the replicas-saved metrics, where
	// its "replicas" are not pods (KEDA).
	noSavings bool
}

func (w *workload) key() string { return w.kind + " " + w.obj.GetNamespace() + "/" + w.obj.GetName() }

// originalReplicas returns the stored original and whether there is one.
func (w *workload) originalReplicas() (int32, bool, error) {
	v, ok := w.obj.GetAnnotations()[AnnotationOriginalReplicas]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0, true, fmt.Errorf("%s %q: expected a non-negative integer", AnnotationOriginalReplicas, v)
	}
	return int32(n), true, nil
}

// buildPatch returns a merge patch setting replicas and annotations (nil
// value: remove) guarded by the cached resourceVersion. Replicas and the
// original-replicas annotation change in one write, so a crash between
// objects never separates them.
func (w *workload) buildPatch(spec map[string]any, annos map[string]*string) ([]byte, error) {
	meta := map[string]any{"resourceVersion": w.obj.GetResourceVersion()}
	if len(annos) > 0 {
		a := map[string]any{}
		for k, v := range annos {
			if v == nil {
				a[k] = nil
			} else {
				a[k] = *v
			}
		}
		meta["annotations"] = a
	}
	body := map[string]any{"metadata": meta}
	if spec != nil {
		body["spec"] = spec
	}
	return json.Marshal(body)
}

func ptr[T any](v T) *T { return &v }

func replicasOr1(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// replicasSpec is the spec part of a patch for kinds with spec.replicas.
func replicasSpec(r int32) map[string]any { return map[string]any{"replicas": r} }

// suspendSpec is the spec part of a patch for kinds that suspend.
func suspendSpec(r int32) map[string]any { return map[string]any{"suspend": r == 0} }

func patchDeployment(ctx context.Context, c kubernetes.Interface, w *workload, body []byte) error {
	_, err := c.AppsV1().Deployments(w.obj.GetNamespace()).Patch(ctx, w.obj.GetName(), types.MergePatchType, body, metav1.PatchOptions{})
	return err
}

func patchStatefulSet(ctx context.Context, c kubernetes.Interface, w *workload, body []byte) error {
	_, err := c.AppsV1().StatefulSets(w.obj.GetNamespace()).Patch(ctx, w.obj.GetName(), types.MergePatchType, body, metav1.PatchOptions{})
	return err
}

func patchCronJob(ctx context.Context, c kubernetes.Interface, w *workload, body []byte) error {
	_, err := c.BatchV1().CronJobs(w.obj.GetNamespace()).Patch(ctx, w.obj.GetName(), types.MergePatchType, body, metav1.PatchOptions{})
	return err
}

func patchJob(ctx context.Context, c kubernetes.Interface, w *workload, body []byte) error {
	_, err := c.BatchV1().Jobs(w.obj.GetNamespace()).Patch(ctx, w.obj.GetName(), types.MergePatchType, body, metav1.PatchOptions{})
	return err
}

func patchHPA(ctx context.Context, c kubernetes.Interface, w *workload, body []byte) error {
	_, err := c.AutoscalingV2().HorizontalPodAutoscalers(w.obj.GetNamespace()).Patch(ctx, w.obj.GetName(), types.MergePatchType, body, metav1.PatchOptions{})
	return err
}

func fromDeployment(d *appsv1.Deployment) workload {
	return workload{
		kind: "Deployment", obj: d, replicas: replicasOr1(d.Spec.Replicas), template: &d.Spec.Template,
		spec: replicasSpec, patch: patchDeployment,
	}
}

func fromStatefulSet(s *appsv1.StatefulSet) workload {
	return workload{
		kind: "StatefulSet", obj: s, replicas: replicasOr1(s.Spec.Replicas), template: &s.Spec.Template,
		spec: replicasSpec, patch: patchStatefulSet,
	}
}

func fromCronJob(cj *batchv1.CronJob) workload {
	running := int32(1)
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		running = 0
	}
	return workload{kind: "CronJob", obj: cj, replicas: running, spec: suspendSpec, patch: patchCronJob}
}

// fromJob treats a Job like a CronJob: 1 running, 0 suspended. Jobs owned
// by a CronJob are left to their CronJob.
func fromJob(j *batchv1.Job) workload {
	running := int32(1)
	if j.Spec.Suspend != nil && *j.Spec.Suspend {
		running = 0
	}
	return workload{kind: "Job", obj: j, replicas: running, spec: suspendSpec, patch: patchJob}
}

// fromHPA treats minReplicas as the replica count. During downtime the HPA
// is pinned (minReplicas = maxReplicas = downtime replicas, at least 1) so
// that it cannot scale its target back up while the downscaler holds it
// down: the HPA-vs-downscaler fight kube-downscaler users report.
func fromHPA(h *autoscalingv2.HorizontalPodAutoscaler) workload {
	return workload{
		kind: "HorizontalPodAutoscaler", obj: h, replicas: replicasOr1(h.Spec.MinReplicas), floor: 1,
		spec:  func(r int32) map[string]any { return map[string]any{"minReplicas": r} },
		patch: patchHPA,
	}
}
