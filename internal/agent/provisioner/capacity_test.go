package provisioner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// capEnv is a fake cluster over a fake provider: every instance of the
// groups has a Ready Node of 4 CPUs / 16 GiB with the group's labels.
type capEnv struct {
	t        *testing.T
	clk      *clocktesting.FakeClock
	fp       *fake.Provider
	cs       *k8sfake.Clientset
	factory  informers.SharedInformerFactory
	recorder *record.FakeRecorder
	// registry holds metrics, the controllers' shared CapacityMetrics.
	registry *prometheus.Registry
	// dryRun and logger are the controllers' Deps.DryRun and Logger
	// (nil: quietLog).
	dryRun  bool
	logger  *slog.Logger
	metrics *CapacityMetrics
	podSeq  int
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// appGroup puts groups in one application group (their spot and
// on-demand pools fall back to each other).
func appGroup(g provider.NodeGroup, app string) provider.NodeGroup {
	g.Labels = map[string]string{"pool": g.ID, LabelApplicationGroup: app}
	return g
}

func newCapEnv(t *testing.T, sizes map[string]int, groups ...provider.NodeGroup) *capEnv {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	var offerings []provider.Offering
	for _, g := range groups {
		for _, typ := range g.InstanceTypes {
			for _, z := range g.Zones {
				offerings = append(offerings, provider.Offering{InstanceType: typ, Zone: z, Lifecycle: g.Lifecycle})
			}
		}
	}
	e := &capEnv{t: t, clk: clk, fp: fake.New(groups, offerings, clk.Now), cs: k8sfake.NewSimpleClientset(), recorder: record.NewFakeRecorder(100)}
	e.registry = prometheus.NewRegistry()
	e.metrics, _ = NewCapacityMetrics(e.registry)
	// The fake clientset's evictions change nothing; the API's delete the
	// pod (PDBs allowing).
	e.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
		return true, nil, e.cs.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace(), name)
	})
	// The fake clientset ignores field selectors; the drain lists a node's
	// pods by spec.nodeName.
	testenv.FilterPodsByNodeName(e.cs)
	ids := make([]string, 0, len(sizes))
	for id := range sizes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e.scale(id, sizes[id])
	}
	e.factory = informers.NewSharedInformerFactory(e.cs, 0)
	return e
}

// deps are the Deps of a scale-down or reaper on the environment.
func (e *capEnv) deps() controller.Deps {
	logger := e.logger
	if logger == nil {
		logger = quietLog
	}
	return controller.Deps{
		Provider: e.fp, Cluster: "c1", Client: e.cs, Factory: e.factory, Clock: e.clk,
		Recorder: e.recorder, Registry: e.registry, Logger: logger, DryRun: e.dryRun,
	}
}

// scale sets the group's target and registers Nodes for new instances.
func (e *capEnv) scale(id string, size int) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.fp.SetTargetSize(ctx, id, size); err != nil {
		e.t.Fatal(err)
	}
	g, _ := e.fp.NodeGroup(ctx, id)
	ins, _ := e.fp.Instances(ctx, id)
	for _, in := range ins {
		if in.State != provider.Running {
			continue
		}
		if _, err := e.cs.CoreV1().Nodes().Get(ctx, in.NodeName, metav1.GetOptions{}); err == nil {
			continue
		}
		labels := map[string]string{"topology.kubernetes.io/zone": in.Zone, "karpenter.sh/capacity-type": string(g.Lifecycle)}
		for k, v := range g.Labels {
			labels[k] = v
		}
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: in.NodeName, Labels: labels},
			Spec:       corev1.NodeSpec{ProviderID: in.ProviderID, Taints: g.Taints},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			},
		}
		if _, err := e.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// nodes returns the node names of the group's running instances.
func (e *capEnv) nodes(id string) []string {
	e.t.Helper()
	ins, err := e.fp.Instances(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, in := range ins {
		if in.State == provider.Running {
			out = append(out, in.NodeName)
		}
	}
	return out
}

// pod puts a pod owned by a ReplicaSet on the node.
func (e *capEnv) pod(node, cpu string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	e.t.Helper()
	e.podSeq++
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("pod-%d", e.podSeq), Namespace: "default", UID: types.UID(fmt.Sprint("pod-uid-", e.podSeq)),
			Labels:          map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs", Controller: ptr.To(true)}},
		},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, m := range mutate {
		m(p)
	}
	created, err := e.cs.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return created
}

func (e *capEnv) pdb(name string, allowed int32) {
	e.t.Helper()
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(0)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
	if _, err := e.cs.PolicyV1().PodDisruptionBudgets("default").Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// start runs the informers the controllers asked for and waits for them.
func (e *capEnv) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	e.factory.Start(ctx.Done())
	for typ, ok := range e.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			e.t.Fatalf("syncing %v", typ)
		}
	}
}

// resync waits until the informers have seen every object of the
// clientset (after the test changed it).
func (e *capEnv) resync() {
	e.t.Helper()
	for i := 0; i < 200; i++ {
		nodes, _ := e.factory.Core().V1().Nodes().Lister().List(everything())
		pods, _ := e.factory.Core().V1().Pods().Lister().List(everything())
		wantNodes, _ := e.cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		wantPods, _ := e.cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
		if len(nodes) == len(wantNodes.Items) && len(pods) == len(wantPods.Items) && sameNodes(nodes, wantNodes.Items) {
			return
		}
		sleepBriefly()
	}
	e.t.Fatal("informers did not catch up")
}

// sameNodes compares what the controllers change (the fake clientset
// keeps no resourceVersions).
func sameNodes(cached []*corev1.Node, want []corev1.Node) bool {
	byName := map[string]*corev1.Node{}
	for _, n := range cached {
		byName[n.Name] = n
	}
	for _, n := range want {
		c, ok := byName[n.Name]
		if !ok || !reflect.DeepEqual(c.Annotations, n.Annotations) || !reflect.DeepEqual(c.Spec, n.Spec) {
			return false
		}
	}
	return true
}

func (e *capEnv) node(name string) *corev1.Node {
	e.t.Helper()
	n, err := e.cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *capEnv) target(id string) int {
	e.t.Helper()
	g, err := e.fp.NodeGroup(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return g.TargetSize
}

// writes counts the requests that changed something in the API.
func (e *capEnv) writes() int {
	n := 0
	for _, a := range e.cs.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
			n++
		}
	}
	return n
}

func everything() labels.Selector { return labels.Everything() }

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }
