package console

import (
	"context"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// Issue 18, item 5: Nodes and Namespaces are kept whole (trimmed) in the
// watch cache, so their detail pages are served from it without asking
// the API server; the YAML is what the live read showed, less the node's
// image list (dropped by trim), which the note says. A pod is still read
// live, one GET through the live client.
func TestDetailServedFromWatchCache(t *testing.T) {
	n := readyNode("n1", map[string]string{"pool": "spot"}, true)
	n.UID = "n-1"
	n.Annotations = map[string]string{"note": "kept", lastApplied: `{"LASTAPPLIED":1}`}
	n.Spec.ProviderID = "local://n1"
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"ghcr.io/acme/big-image:1"}, SizeBytes: 1 << 30}}
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "MANAGER"}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "ns-1", Labels: map[string]string{"team": "shop"}, Annotations: map[string]string{"owner": "shop-team"}},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	p := pod("shop", "web-1", "n1", "100m", "128Mi", map[string]string{"app": "web"})

	src := fakeCluster(t, "a", n.DeepCopy(), ns.DeepCopy(), p.DeepCopy())
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{podMetricsGVR: "PodMetricsList"},
		n.DeepCopy(), ns.DeepCopy(), p.DeepCopy())
	var mu sync.Mutex
	var gets []string
	dyn.PrependReactor("get", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		gets = append(gets, a.GetResource().Resource)
		return false, nil, nil
	})
	src.Dynamic = dyn
	c, _ := startFake(t, clocktesting.NewFakeClock(t0), src)

	// What the live read showed: the object as the API server has it,
	// rendered the same way, but for the node's image list.
	want := func(k Kind, obj runtime.Object) string {
		t.Helper()
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := m["status"].(map[string]any); ok {
			delete(st, "images")
		}
		y, err := renderYAML(k, m)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	nodeKind, _ := LookupKind("node")
	nsKind, _ := LookupKind("namespace")
	for _, tt := range []struct {
		kind, name string
		want       string
		note       string
	}{
		{"nodes", "n1", want(nodeKind, n), "status.images"},
		{"namespaces", "shop", want(nsKind, ns), "watch cache"},
	} {
		d, err := c.Detail(context.Background(), "a", tt.kind, "", tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if d.Live || !d.Cached || !strings.Contains(d.YAMLNote, tt.note) {
			t.Errorf("%s %s: live=%v cached=%v note=%q; want served from the watch cache, the note mentioning %q", tt.kind, tt.name, d.Live, d.Cached, d.YAMLNote, tt.note)
		}
		if d.YAML != tt.want {
			t.Errorf("%s %s YAML from the cache =\n%s\nwant the live object less the image list:\n%s", tt.kind, tt.name, d.YAML, tt.want)
		}
		for _, s := range []string{"LASTAPPLIED", "MANAGER", "big-image"} {
			if strings.Contains(d.YAML, s) {
				t.Errorf("%s %s YAML shows %s:\n%s", tt.kind, tt.name, s, d.YAML)
			}
		}
	}
	mu.Lock()
	if len(gets) != 0 {
		t.Errorf("node and namespace details read %v live, want nothing", gets)
	}
	mu.Unlock()

	d, err := c.Detail(context.Background(), "a", "pods", "shop", "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Live || d.Cached || !strings.Contains(d.YAML, "cpu: 100m") {
		t.Errorf("pod detail live=%v cached=%v, want the live object:\n%s", d.Live, d.Cached, d.YAML)
	}
	mu.Lock()
	if len(gets) != 1 || gets[0] != "pods" {
		t.Errorf("live reads = %v, want one GET of the pod", gets)
	}
	mu.Unlock()
}
