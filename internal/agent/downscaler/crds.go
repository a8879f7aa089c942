package downscaler

import (
	"context"
	"fmt"
	"math"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Kinds from CRDs the downscaler handles when their CRDs exist.
var (
	// RolloutsResource is Argo Rollouts' Rollout: spec.replicas, like a
	// Deployment.
	RolloutsResource = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	// ScaledObjectsResource is KEDA's ScaledObject: held down through
	// KEDA's own pause annotation, so KEDA and its HPA do not fight back.
	ScaledObjectsResource = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
)

// AnnotationKEDAPausedReplicas is KEDA's annotation that scales the target
// to a fixed count and stops autoscaling while it is set.
const AnnotationKEDAPausedReplicas = "autoscaling.keda.sh/paused-replicas"

// CRDKinds are the optional kinds: informers and a client for those whose
// CRDs exist in the cluster.
type CRDKinds struct {
	dynamic       dynamic.Interface
	rollouts      cache.GenericLister
	scaledObjects cache.GenericLister
}

// DiscoverCRDKinds asks discovery (once) which optional kinds the cluster
// serves and registers informers for them with factory; the caller starts
// the factory. A cluster without them gets an empty CRDKinds.
func DiscoverCRDKinds(disc discovery.DiscoveryInterface, dyn dynamic.Interface, factory dynamicinformer.DynamicSharedInformerFactory) (*CRDKinds, error) {
	k := &CRDKinds{dynamic: dyn}
	for _, gvr := range []schema.GroupVersionResource{RolloutsResource, ScaledObjectsResource} {
		served, err := serves(disc, gvr)
		if err != nil {
			return nil, err
		}
		if !served {
			continue
		}
		inf := factory.ForResource(gvr)
		inf.Informer()
		switch gvr {
		case RolloutsResource:
			k.rollouts = inf.Lister()
		case ScaledObjectsResource:
			k.scaledObjects = inf.Lister()
		}
	}
	return k, nil
}

func serves(disc discovery.DiscoveryInterface, gvr schema.GroupVersionResource) (bool, error) {
	list, err := disc.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		if discovery.IsGroupDiscoveryFailedError(err) || isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("discovering %s, %w", gvr.GroupVersion(), err)
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

func isNotFound(err error) bool {
	type statusErr interface{ Status() metav1.Status }
	if se, ok := err.(statusErr); ok {
		return se.Status().Code == 404
	}
	return false
}

// list returns the CRD-backed workloads from the caches.
func (k *CRDKinds) list() ([]workload, error) { return k.appendTo(nil) }

// appendTo appends the CRD-backed workloads from the caches to out.
func (k *CRDKinds) appendTo(out []workload) ([]workload, error) {
	if k == nil {
		return out, nil
	}
	if k.rollouts != nil {
		objs, err := k.rollouts.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing rollouts, %w", err)
		}
		for _, o := range objs {
			if u, ok := o.(*unstructured.Unstructured); ok {
				out = append(out, k.fromRollout(u))
			}
		}
	}
	if k.scaledObjects != nil {
		objs, err := k.scaledObjects.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing scaledobjects, %w", err)
		}
		for _, o := range objs {
			if u, ok := o.(*unstructured.Unstructured); ok {
				out = append(out, k.fromScaledObject(u))
			}
		}
	}
	return out, nil
}

// rollout returns a Rollout's annotations, for HPAs that target one.
func (k *CRDKinds) rolloutAnnotations(ns, name string) (map[string]string, bool) {
	if k == nil || k.rollouts == nil {
		return nil, false
	}
	o, err := k.rollouts.ByNamespace(ns).Get(name)
	if err != nil {
		return nil, false
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil, false
	}
	return u.GetAnnotations(), true
}

// patchDynamic patches an optional kind through the dynamic client.
func patchDynamic(gvr schema.GroupVersionResource) func(context.Context, kubernetes.Interface, *workload, []byte) error {
	return func(ctx context.Context, _ kubernetes.Interface, w *workload, body []byte) error {
		_, err := w.crds.dynamic.Resource(gvr).Namespace(w.obj.GetNamespace()).Patch(ctx, w.obj.GetName(), types.MergePatchType, body, metav1.PatchOptions{})
		return err
	}
}

// The optional kinds' patch functions, built once.
var (
	patchRollout      = patchDynamic(RolloutsResource)
	patchScaledObject = patchDynamic(ScaledObjectsResource)
)

func (k *CRDKinds) fromRollout(u *unstructured.Unstructured) workload {
	replicas := int32(1)
	if r, found, err := unstructured.NestedInt64(u.Object, "spec", "replicas"); err == nil && found {
		replicas = int32(min(max(r, 0), math.MaxInt32)) // a CR's value is anyone's: clamp, never wrap
	}
	return workload{kind: "Rollout", obj: u, replicas: replicas, spec: replicasSpec, patch: patchRollout, crds: k}
}

// fromScaledObject: "replicas" is the paused count when KEDA's pause
// annotation is set, else maxReplicaCount (KEDA may scale up to it). Down
// sets the pause annotation; restore removes it. The spec is not touched.
func (k *CRDKinds) fromScaledObject(u *unstructured.Unstructured) workload {
	replicas := int32(100) // KEDA's default maxReplicaCount
	if r, found, err := unstructured.NestedInt64(u.Object, "spec", "maxReplicaCount"); err == nil && found {
		replicas = int32(min(max(r, 0), math.MaxInt32)) // a CR's value is anyone's: clamp, never wrap
	}
	if v, ok := u.GetAnnotations()[AnnotationKEDAPausedReplicas]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
			replicas = int32(n)
		}
	}
	return workload{
		kind: "ScaledObject", obj: u, replicas: replicas, noSavings: true,
		spec:     func(int32) map[string]any { return nil },
		annotate: pauseAnnotation, patch: patchScaledObject, crds: k,
	}
}

// pauseAnnotation sets KEDA's pause annotation to r, or removes it on
// restore.
func pauseAnnotation(r int32, restore bool) map[string]*string {
	if restore {
		return map[string]*string{AnnotationKEDAPausedReplicas: nil}
	}
	return map[string]*string{AnnotationKEDAPausedReplicas: ptr(strconv.Itoa(int(r)))}
}

// scaledObjectTarget returns the annotations of a ScaledObject's target,
// which it inherits like an HPA.
func (c *Controller) scaledObjectTarget(u *unstructured.Unstructured) (map[string]string, bool) {
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "kind")
	name, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
	if kind == "" {
		kind = "Deployment"
	}
	return c.targetAnnotations(u.GetNamespace(), kind, name)
}
