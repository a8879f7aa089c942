package apply

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bosun-platform/bosun/internal/render"
)

// inventory is what the last apply recorded: the cluster, the version and
// every object applied. It lives in a ConfigMap so it survives a crash of
// Bosun (state in the API, not in memory).
type inventory struct {
	Cluster string `json:"cluster"`
	Version string `json:"version"`
	Objects []ref  `json:"objects"`
}

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

func (a *Applier) readInventory(ctx context.Context, cluster string) (*inventory, error) {
	u, err := a.dyn.Resource(configMaps).Namespace(InventoryNamespace).Get(ctx, InventoryName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading inventory %s/%s, %w", InventoryNamespace, InventoryName, err)
	}
	var cm corev1.ConfigMap
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cm); err != nil {
		return nil, fmt.Errorf("reading inventory, %w", err)
	}
	inv := &inventory{}
	if err := json.Unmarshal([]byte(cm.Data["inventory"]), inv); err != nil {
		return nil, fmt.Errorf("inventory %s/%s: data.inventory is not valid, %w", InventoryNamespace, InventoryName, err)
	}
	if inv.Cluster != cluster {
		return nil, fmt.Errorf("this API server holds the inventory of cluster %q, not %q: refusing to apply to the wrong cluster", inv.Cluster, cluster)
	}
	return inv, nil
}

// stale returns the recorded objects whose keys are not in current.
func (inv *inventory) stale(current map[string]bool) []ref {
	var out []ref
	for _, r := range inv.Objects {
		if !current[r.key()] {
			out = append(out, r)
		}
	}
	sortRefs(out)
	return out
}

func (a *Applier) writeInventory(ctx context.Context, res *render.Result, objs []object) error {
	inv := inventory{Cluster: res.Cluster.ID, Version: res.Version}
	for _, o := range objs {
		inv.Objects = append(inv.Objects, refOf(o.u))
	}
	sortRefs(inv.Objects)
	data, err := json.MarshalIndent(inv, "", " ")
	if err != nil {
		return fmt.Errorf("encoding inventory, %w", err)
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{
			"name": InventoryName, "namespace": InventoryNamespace,
			"labels": map[string]any{LabelManagedBy: FieldManager, LabelCluster: res.Cluster.ID},
		},
		"data": map[string]any{"inventory": string(data), "version": res.Version},
	}}
	body, err := json.Marshal(cm.Object)
	if err != nil {
		return fmt.Errorf("encoding inventory, %w", err)
	}
	force := true
	_, err = a.dyn.Resource(configMaps).Namespace(InventoryNamespace).Patch(ctx, InventoryName, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("writing inventory %s/%s, %w", InventoryNamespace, InventoryName, err)
	}
	return nil
}
