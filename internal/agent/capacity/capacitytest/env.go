// Package capacitytest is the fake cluster the scale-down's and the
// reaper's tests run on: a fake provider whose instances register Ready
// Nodes in a fake clientset, informers over it, and the Deps the
// controllers are built from.
package capacitytest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/fake"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// Env is a fake cluster over a fake provider: every instance of the
// groups has a Ready Node of 4 CPUs / 16 GiB with the group's labels.
type Env struct {
	T        *testing.T
	Clock    *clocktesting.FakeClock
	Cloud    *fake.Provider
	Client   *k8sfake.Clientset
	Factory  informers.SharedInformerFactory
	Recorder *record.FakeRecorder
	// Registry holds Metrics, the controllers' shared CapacityMetrics.
	Registry *prometheus.Registry
	// DryRun and Logger are the controllers' Deps.DryRun and Logger
	// (nil: QuietLog).
	DryRun  bool
	Logger  *slog.Logger
	Metrics *capacity.CapacityMetrics
	podSeq  int
}

// QuietLog discards what the controllers log.
var QuietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// AppGroup puts groups in one application group (their spot and
// on-demand pools fall back to each other).
func AppGroup(g provider.NodeGroup, app string) provider.NodeGroup {
	g.Labels = map[string]string{"pool": g.ID, capacity.LabelApplicationGroup: app}
	return g
}

// NewEnv returns an Env with the groups at the sizes given (every
// instance a Ready Node); call Start once the test's objects exist.
func NewEnv(t *testing.T, sizes map[string]int, groups ...provider.NodeGroup) *Env {
	t.Helper()
	clk := clocktesting.NewFakeClock(T0)
	var offerings []provider.Offering
	for _, g := range groups {
		for _, typ := range g.InstanceTypes {
			for _, z := range g.Zones {
				offerings = append(offerings, provider.Offering{InstanceType: typ, Zone: z, Lifecycle: g.Lifecycle})
			}
		}
	}
	e := &Env{T: t, Clock: clk, Cloud: fake.New(groups, offerings, clk.Now), Client: k8sfake.NewSimpleClientset(), Recorder: record.NewFakeRecorder(100)}
	e.Registry = prometheus.NewRegistry()
	e.Metrics, _ = capacity.NewCapacityMetrics(e.Registry)
	// The fake clientset's evictions change nothing; the API's delete the
	// pod (PDBs allowing).
	e.Client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
		return true, nil, e.Client.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace(), name)
	})
	// The fake clientset ignores field selectors; the drain lists a node's
	// pods by spec.nodeName.
	testenv.FilterPodsByNodeName(e.Client)
	ids := make([]string, 0, len(sizes))
	for id := range sizes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e.Scale(id, sizes[id])
	}
	e.Factory = informers.NewSharedInformerFactory(e.Client, 0)
	return e
}

// Deps are the Deps of a scale-down or reaper on the environment.
func (e *Env) Deps() controller.Deps {
	logger := e.Logger
	if logger == nil {
		logger = QuietLog
	}
	return controller.Deps{
		Provider: e.Cloud, Cluster: "c1", Client: e.Client, Factory: e.Factory, Clock: e.Clock,
		Recorder: e.Recorder, Registry: e.Registry, Logger: logger, DryRun: e.DryRun,
	}
}

// Scale sets the group's target and registers Nodes for new instances.
func (e *Env) Scale(id string, size int) {
	e.T.Helper()
	ctx := context.Background()
	if err := e.Cloud.SetTargetSize(ctx, id, size); err != nil {
		e.T.Fatal(err)
	}
	g, _ := e.Cloud.NodeGroup(ctx, id)
	ins, _ := e.Cloud.Instances(ctx, id)
	for _, in := range ins {
		if in.State != provider.Running {
			continue
		}
		if _, err := e.Client.CoreV1().Nodes().Get(ctx, in.NodeName, metav1.GetOptions{}); err == nil {
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
		if _, err := e.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			e.T.Fatal(err)
		}
	}
}

// Nodes returns the node names of the group's running instances.
func (e *Env) Nodes(id string) []string {
	e.T.Helper()
	ins, err := e.Cloud.Instances(context.Background(), id)
	if err != nil {
		e.T.Fatal(err)
	}
	var out []string
	for _, in := range ins {
		if in.State == provider.Running {
			out = append(out, in.NodeName)
		}
	}
	return out
}

// Pod puts a pod owned by a ReplicaSet on the node.
func (e *Env) Pod(node, cpu string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	e.T.Helper()
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
	created, err := e.Client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return created
}

// PDB creates a PodDisruptionBudget over the pods labelled app=name that
// allows that many disruptions now.
func (e *Env) PDB(name string, allowed int32) {
	e.T.Helper()
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(0)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
	if _, err := e.Client.PolicyV1().PodDisruptionBudgets("default").Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// Start runs the informers the controllers asked for and waits for them.
func (e *Env) Start() {
	e.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.T.Cleanup(cancel)
	e.Factory.Start(ctx.Done())
	for typ, ok := range e.Factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			e.T.Fatalf("syncing %v", typ)
		}
	}
}

// Resync waits until the informers have seen every object of the
// clientset (after the test changed it).
func (e *Env) Resync() {
	e.T.Helper()
	for i := 0; i < 200; i++ {
		nodes, _ := e.Factory.Core().V1().Nodes().Lister().List(everything())
		pods, _ := e.Factory.Core().V1().Pods().Lister().List(everything())
		wantNodes, _ := e.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		wantPods, _ := e.Client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
		if len(nodes) == len(wantNodes.Items) && len(pods) == len(wantPods.Items) && sameNodes(nodes, wantNodes.Items) {
			return
		}
		sleepBriefly()
	}
	e.T.Fatal("informers did not catch up")
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

// Node returns the node as the API has it now.
func (e *Env) Node(name string) *corev1.Node {
	e.T.Helper()
	n, err := e.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return n
}

// Target is the group's target size at the provider.
func (e *Env) Target(id string) int {
	e.T.Helper()
	g, err := e.Cloud.NodeGroup(context.Background(), id)
	if err != nil {
		e.T.Fatal(err)
	}
	return g.TargetSize
}

// Writes counts the requests that changed something in the API.
func (e *Env) Writes() int {
	n := 0
	for _, a := range e.Client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
			n++
		}
	}
	return n
}

func everything() labels.Selector { return labels.Everything() }

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }

// T0 is the fake clock's start.
var T0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// Template is a node of 4 CPUs / 16 GiB (allocatable 3920m / 14.5 GiB)
// carrying the group's labels and taints.
func Template(g provider.NodeGroup) ([]*corev1.Node, error) {
	var out []*corev1.Node
	for _, z := range g.Zones {
		labels := map[string]string{"topology.kubernetes.io/zone": z, "karpenter.sh/capacity-type": string(g.Lifecycle)}
		for k, v := range g.Labels {
			labels[k] = v
		}
		out = append(out, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "template-" + g.ID, Labels: labels},
			Spec:       corev1.NodeSpec{Taints: g.Taints},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("3920m"), corev1.ResourceMemory: resource.MustParse("14848Mi"), corev1.ResourcePods: resource.MustParse("110"),
			}},
		})
	}
	return out, nil
}

// Group is a node group of cluster c1 with m5.xlarge in zones a and b.
func Group(id string, lc provider.Lifecycle, prio int) provider.NodeGroup {
	return provider.NodeGroup{ID: id, Cluster: "c1", Pool: id, Lifecycle: lc, Priority: prio,
		InstanceTypes: []string{"m5.xlarge"}, Zones: []string{"a", "b"}, MaxSize: 10,
		Labels: map[string]string{"pool": id}}
}

// Pass makes one pass of c and returns its actions; an error fails t.
func Pass(t *testing.T, c interface {
	Pass(context.Context) ([]string, error)
}) []string {
	t.Helper()
	actions, err := c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return actions
}

// Counter reads a counter's value (-1 when it cannot be read).
func Counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// Gauge reads a gauge's value (-1 when it cannot be read).
func Gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}
