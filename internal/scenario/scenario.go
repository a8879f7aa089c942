// Package scenario plays timed scripts against the local fleet: capacity
// changes in the local cloud's market, spot interruptions, node group sizes
// and workload steps. `bosun sim run FILE` plays one; the provisioner's
// benchmarks use them to reproduce the seeds' spot outages (L11, L20, L23).
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Scenario is a scenario file.
type Scenario struct {
	// Name describes the scenario.
	Name string `json:"name"`
	// Steps run in order, each at its offset from the start.
	Steps []Step `json:"steps"`
}

// Step is one timed action; exactly one action field is set.
type Step struct {
	// At is the offset from the scenario's start, a Go duration ("90s").
	At string `json:"at"`
	// Capacity sets or clears a capacity limit in the market.
	Capacity *CapacityStep `json:"capacity,omitempty"`
	// Interrupt sends spot interruption notices.
	Interrupt *InterruptStep `json:"interrupt,omitempty"`
	// TargetSize sets a node group's size.
	TargetSize *TargetSizeStep `json:"targetSize,omitempty"`
	// Scale creates or scales a Deployment.
	Scale *ScaleStep `json:"scale,omitempty"`

	at time.Duration
}

// CapacityStep is localcloud.CapacityRequest in a scenario.
type CapacityStep struct {
	InstanceType string `json:"instanceType,omitempty"`
	Zone         string `json:"zone,omitempty"`
	Lifecycle    string `json:"lifecycle,omitempty"`
	Limit        int    `json:"limit,omitempty"`
	Clear        bool   `json:"clear,omitempty"`
}

// InterruptStep names a node, or a group and how many of its running
// instances to interrupt (newest first).
type InterruptStep struct {
	Node  string `json:"node,omitempty"`
	Group string `json:"group,omitempty"`
	Count int    `json:"count,omitempty"`
}

// TargetSizeStep sets a group's target size.
type TargetSizeStep struct {
	Group string `json:"group"`
	Size  int    `json:"size"`
}

// ScaleStep creates the Deployment if missing (pause pods with the given
// requests) and sets its replicas.
type ScaleStep struct {
	Cluster      string            `json:"cluster"`
	Namespace    string            `json:"namespace,omitempty"`
	Deployment   string            `json:"deployment"`
	Replicas     int32             `json:"replicas"`
	CPU          string            `json:"cpu,omitempty"`
	Memory       string            `json:"memory,omitempty"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario, %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes a scenario strictly (unknown fields are errors) and checks
// every step: a valid offset, offsets in order, exactly one action, and
// the action's own fields.
func Parse(data []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("parsing scenario, %w", err)
	}
	if len(s.Steps) == 0 {
		return nil, errors.New("scenario has no steps")
	}
	var prev time.Duration
	for i := range s.Steps {
		st := &s.Steps[i]
		where := fmt.Sprintf("steps[%d]", i)
		d, err := time.ParseDuration(st.At)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s.at %q: expected a duration from the start such as 30s or 2m", where, st.At)
		}
		if d < prev {
			return nil, fmt.Errorf("%s.at %s is before the previous step (%s): steps must be in time order", where, d, prev)
		}
		st.at, prev = d, d
		if err := st.validate(where); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func (st *Step) validate(where string) error {
	n := 0
	for _, set := range []bool{st.Capacity != nil, st.Interrupt != nil, st.TargetSize != nil, st.Scale != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%s: expected exactly one of capacity, interrupt, targetSize, scale; found %d", where, n)
	}
	switch {
	case st.Capacity != nil:
		if st.Capacity.Lifecycle != "" {
			if _, err := provider.ParseLifecycle(st.Capacity.Lifecycle); err != nil {
				return fmt.Errorf("%s.capacity.%w", where, err)
			}
		}
		if st.Capacity.Limit < 0 {
			return fmt.Errorf("%s.capacity.limit %d: expected 0 or more", where, st.Capacity.Limit)
		}
	case st.Interrupt != nil:
		if (st.Interrupt.Node == "") == (st.Interrupt.Group == "") {
			return fmt.Errorf("%s.interrupt: expected either node, or group with count", where)
		}
		if st.Interrupt.Group != "" && st.Interrupt.Count < 1 {
			return fmt.Errorf("%s.interrupt.count %d: expected 1 or more", where, st.Interrupt.Count)
		}
	case st.TargetSize != nil:
		if st.TargetSize.Group == "" || st.TargetSize.Size < 0 {
			return fmt.Errorf("%s.targetSize: expected a group and a size of 0 or more", where)
		}
	case st.Scale != nil:
		sc := st.Scale
		if sc.Cluster == "" || sc.Deployment == "" || sc.Replicas < 0 {
			return fmt.Errorf("%s.scale: expected cluster, deployment and replicas >= 0", where)
		}
		for field, q := range map[string]string{"cpu": sc.CPU, "memory": sc.Memory} {
			if q == "" {
				continue
			}
			if _, err := resource.ParseQuantity(q); err != nil {
				return fmt.Errorf("%s.scale.%s %q: expected a Kubernetes quantity such as 500m or 1Gi", where, field, q)
			}
		}
	}
	return nil
}

// Cloud is what a scenario needs of the local cloud (provider/local's
// Client implements it).
type Cloud interface {
	SetCapacity(ctx context.Context, req localcloud.CapacityRequest) ([]localcloud.CapacityLimit, error)
	Interrupt(ctx context.Context, node string) (provider.InterruptionNotice, error)
	Instances(ctx context.Context, group string) ([]provider.Instance, error)
	SetTargetSize(ctx context.Context, group string, size int) error
}

// Env is where a scenario plays.
type Env struct {
	Cloud Cloud
	// Clusters are clients by cluster ID, for scale steps.
	Clusters map[string]kubernetes.Interface
	Clock    clock.Clock
	Out      io.Writer
}

// Play runs the steps at their offsets and stops at the first failing step.
func Play(ctx context.Context, s *Scenario, env Env) error {
	start := env.Clock.Now()
	for i, st := range s.Steps {
		if wait := st.at - env.Clock.Since(start); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-env.Clock.After(wait):
			}
		}
		what, err := st.run(ctx, env)
		if err != nil {
			return fmt.Errorf("steps[%d] at %s: %w", i, st.at, err)
		}
		fmt.Fprintf(env.Out, "[%8s] %s\n", env.Clock.Since(start).Round(time.Millisecond), what)
	}
	return nil
}

func (st *Step) run(ctx context.Context, env Env) (string, error) {
	switch {
	case st.Capacity != nil:
		c := st.Capacity
		key := localcloud.OfferingKey{InstanceType: c.InstanceType, Zone: c.Zone}
		if c.Lifecycle != "" {
			key.Lifecycle, _ = provider.ParseLifecycle(c.Lifecycle) // checked by Parse
		}
		if _, err := env.Cloud.SetCapacity(ctx, localcloud.CapacityRequest{OfferingKey: key, Limit: c.Limit, Clear: c.Clear}); err != nil {
			return "", err
		}
		if c.Clear {
			return "capacity " + key.String() + ": limit cleared", nil
		}
		return fmt.Sprintf("capacity %s: limit %d", key, c.Limit), nil
	case st.Interrupt != nil:
		return st.interrupt(ctx, env)
	case st.TargetSize != nil:
		if err := env.Cloud.SetTargetSize(ctx, st.TargetSize.Group, st.TargetSize.Size); err != nil {
			return "", err
		}
		return fmt.Sprintf("group %s: target size %d", st.TargetSize.Group, st.TargetSize.Size), nil
	default:
		return st.scale(ctx, env)
	}
}

func (st *Step) interrupt(ctx context.Context, env Env) (string, error) {
	in := st.Interrupt
	if in.Node != "" {
		n, err := env.Cloud.Interrupt(ctx, in.Node)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("interrupt %s (terminates %s)", n.NodeName, n.TerminationTime.Format(time.TimeOnly)), nil
	}
	ins, err := env.Cloud.Instances(ctx, in.Group)
	if err != nil {
		return "", err
	}
	var names []string
	for i := len(ins) - 1; i >= 0 && len(names) < in.Count; i-- {
		if ins[i].State != provider.Running || ins[i].Interruption != nil {
			continue
		}
		if _, err := env.Cloud.Interrupt(ctx, ins[i].NodeName); err != nil {
			return "", err
		}
		names = append(names, ins[i].NodeName)
	}
	return fmt.Sprintf("interrupt %d of %s: %s", len(names), in.Group, strings.Join(names, ", ")), nil
}

func (st *Step) scale(ctx context.Context, env Env) (string, error) {
	sc := st.Scale
	cs, ok := env.Clusters[sc.Cluster]
	if !ok {
		return "", fmt.Errorf("scale: cluster %q is not running", sc.Cluster)
	}
	ns := sc.Namespace
	if ns == "" {
		ns = "default"
	}
	deps := cs.AppsV1().Deployments(ns)
	d, err := deps.Get(ctx, sc.Deployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = deps.Create(ctx, newDeployment(ns, sc), metav1.CreateOptions{})
		if err != nil {
			return "", fmt.Errorf("creating deployment %s/%s, %w", ns, sc.Deployment, err)
		}
		return fmt.Sprintf("created deployment %s/%s/%s with %d replicas", sc.Cluster, ns, sc.Deployment, sc.Replicas), nil
	}
	if err != nil {
		return "", fmt.Errorf("reading deployment %s/%s, %w", ns, sc.Deployment, err)
	}
	d.Spec.Replicas = ptr.To(sc.Replicas)
	if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("scaling deployment %s/%s, %w", ns, sc.Deployment, err)
	}
	return fmt.Sprintf("scaled deployment %s/%s/%s to %d", sc.Cluster, ns, sc.Deployment, sc.Replicas), nil
}

func newDeployment(ns string, sc *ScaleStep) *appsv1.Deployment {
	labels := map[string]string{"app": sc.Deployment}
	req := corev1.ResourceList{}
	if sc.CPU != "" {
		req[corev1.ResourceCPU] = resource.MustParse(sc.CPU)
	}
	if sc.Memory != "" {
		req[corev1.ResourceMemory] = resource.MustParse(sc.Memory)
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: sc.Deployment, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(sc.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: sc.NodeSelector,
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: req, Limits: req},
					}},
				},
			},
		},
	}
}
