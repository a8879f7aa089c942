package janitor

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	agentcache "github.com/bosun-platform/bosun/internal/agent/cache"
)

// pvcIsNotMounted reads pods from the agent's shared, trimmed cache: the
// claims it finds mounted are the same as from the API's pods.
func TestMountedClaimsFromTrimmedCache(t *testing.T) {
	vol := func(name string, src corev1.VolumeSource) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: src}
	}
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: "shop"}, Spec: corev1.PodSpec{NodeName: "a", Volumes: []corev1.Volume{
			vol("data", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}),
			vol("token", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}),
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: "ci"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			vol("cache", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cache", ReadOnly: true}}),
			vol("scratch", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}),
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.PodSpec{NodeName: "b", Volumes: []corev1.Volume{
			vol("cfg", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}),
		}}},
	}
	claims := func(transform bool) map[string]bool {
		idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
		for _, p := range pods {
			var obj any = p.DeepCopy()
			if transform {
				var err error
				if obj, err = agentcache.CacheTransform(obj); err != nil {
					t.Fatal(err)
				}
			}
			if err := idx.Add(obj); err != nil {
				t.Fatal(err)
			}
		}
		c := &Controller{pods: corelisters.NewPodLister(idx)}
		out, err := c.mountedClaims()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, want := claims(true), claims(false)
	if !reflect.DeepEqual(got, want) || len(want) != 2 {
		t.Errorf("mounted claims from the cache %v, from the API %v", got, want)
	}
}
