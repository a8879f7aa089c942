package console

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// lastApplied is kubectl's client-side-apply annotation: a full second copy
// of the object, so it is dropped from the cache and from every page.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trim is the informers' transform: it runs before an object enters the
// cache and removes what no view or search needs, so memory per object
// stays bounded (managed fields alone are often half an object). Secret and
// ConfigMap data never arrive (they are watched as metadata), but a full
// Secret passed in is emptied anyway so a wiring mistake cannot leak it.
func trim(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			if _, ok := a[lastApplied]; ok {
				c := make(map[string]string, len(a)-1)
				for k, v := range a {
					if k != lastApplied {
						c[k] = v
					}
				}
				m.SetAnnotations(c)
			}
		}
	}
	switch o := obj.(type) {
	case *corev1.Node:
		// The image list of a node is long and shown nowhere.
		o.Status.Images = nil
	case *corev1.Secret:
		for k := range o.Data {
			o.Data[k] = nil
		}
		o.StringData = nil
	case *corev1.ConfigMap:
		o.Data, o.BinaryData = nil, nil
	}
	return obj, nil
}
