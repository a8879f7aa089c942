// Package interruption handles spot interruption notices (L19): when the
// provider announces that an instance will be reclaimed, the node is
// tainted and cordoned at once, so nothing new lands on it, and drained
// through the Eviction API (PodDisruptionBudgets respected) within the
// notice. The evicted pods turn pending and the provisioner finds them
// capacity; the local cloud and AWS's capacity rebalancing also launch a
// replacement instance as soon as the notice is out.
package interruption

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/drain"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/provider"
)

// TaintKey marks a node whose instance has an interruption notice.
const TaintKey = "bosun.dev/spot-interruption"

// AnnotationTermination holds the node's announced termination time.
const AnnotationTermination = "bosun.dev/termination-time"

// Name is the interruption handler's name in --controllers, logs and
// metrics.
const Name = agentcmd.ControllerInterruption

// Options configure the interruption handler; it has none of its own yet
// (the cloud, the cluster whose notices it handles, the client, clock,
// logger and dry-run come with controller.Deps).
type Options struct{}

// Controller polls the provider for notices and acts on each once.
type Controller struct {
	deps controller.Deps

	mu      sync.Mutex
	since   time.Time
	handled map[string]bool // acted on: cordoned, drain started
	acked   map[string]bool // acknowledged to the provider
	wg      sync.WaitGroup
}

// New returns the interruption handler. Deps.Provider and Deps.Client are
// required; with Deps.Cluster it handles only the notices of that
// cluster's node groups ("" = all).
//
// RBAC: nodes get, patch; pods list, get; pods/eviction create.
func New(deps controller.Deps, _ Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldProvider, controller.FieldClient); err != nil {
		return nil, err
	}
	return &Controller{deps: deps.WithDefaults(), handled: map[string]bool{}, acked: map[string]bool{}}, nil
}

// Name identifies the controller.
func (h *Controller) Name() string { return Name }

// Pass polls for notices once (Poll): the drains it starts run on.
func (h *Controller) Pass(ctx context.Context) ([]string, error) {
	return nil, h.Poll(ctx)
}

// Poll reads new notices and starts handling each one not yet handled;
// drains run in the background. Once a notice is acted on (node cordoned and
// its drain started, or no node to act on) it is acknowledged to a provider
// that implements provider.InterruptionAcker (AWS deletes the SQS message
// then, not before: L19). A cordon that fails is retried on the next poll,
// and so is an acknowledgement that fails, without acting twice. Handling is
// idempotent: a notice seen again after a restart (the queue redelivers an
// unacknowledged message) taints and drains an already drained node
// harmlessly. A dry run acts on nothing and acknowledges nothing.
func (h *Controller) Poll(ctx context.Context) error {
	h.mu.Lock()
	since := h.since
	h.mu.Unlock()
	notices, err := h.deps.Provider.Interruptions(ctx, since)
	if err != nil {
		return fmt.Errorf("reading interruption notices, %w", err)
	}
	held := false // a notice not done with holds the poll window back
	for _, n := range notices {
		if h.deps.Cluster != "" && !h.ownGroup(ctx, n.Group) {
			continue
		}
		h.mu.Lock()
		acted, acked := h.handled[n.InstanceID], h.acked[n.InstanceID]
		h.mu.Unlock()
		if acked {
			continue
		}
		if !acted {
			if n.NodeName != "" {
				if err := h.cordon(ctx, n); err != nil {
					h.deps.Logger.Warn("cordoning interrupted node; retrying on the next poll", "node", n.NodeName, "instance", n.InstanceID, "error", err)
					held = true
					continue
				}
				h.wg.Add(1)
				go func(n provider.InterruptionNotice) {
					defer h.wg.Done()
					if err := h.drain(ctx, n); err != nil {
						h.deps.Logger.Warn("draining interrupted node", "node", n.NodeName, "error", err)
					}
				}(n)
			}
			h.mu.Lock()
			h.handled[n.InstanceID] = true
			h.mu.Unlock()
		}
		if a, ok := h.deps.Provider.(provider.InterruptionAcker); ok && !h.deps.DryRun {
			if err := a.AckInterruption(ctx, n); err != nil {
				h.deps.Logger.Warn("acknowledging interruption notice; retrying on the next poll", "instance", n.InstanceID, "error", err)
				held = true
				continue
			}
		}
		// Only notices done with move the poll window on (notices come
		// oldest first), so one whose cordon or acknowledgement failed is
		// read again.
		h.mu.Lock()
		h.acked[n.InstanceID] = true
		if !held && n.Issued.After(h.since) {
			h.since = n.Issued
		}
		h.mu.Unlock()
	}
	return nil
}

func (h *Controller) ownGroup(ctx context.Context, id string) bool {
	g, err := h.deps.Provider.NodeGroup(ctx, id)
	return err == nil && g.Cluster == h.deps.Cluster
}

// cordon taints the node NoSchedule, marks it unschedulable and records
// the termination time, in one patch.
func (h *Controller) cordon(ctx context.Context, n provider.InterruptionNotice) error {
	node, err := h.deps.Client.CoreV1().Nodes().Get(ctx, n.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	h.deps.Logger.Info("interruption notice: cordoning", "node", n.NodeName, "terminates", n.TerminationTime, "dryRun", h.deps.DryRun)
	if h.deps.DryRun {
		return nil
	}
	taints := node.Spec.Taints
	has := false
	for _, t := range taints {
		if t.Key == TaintKey {
			has = true
		}
	}
	if !has {
		taints = append(append([]corev1.Taint(nil), taints...), corev1.Taint{Key: TaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule})
	}
	patch := map[string]any{
		"metadata": map[string]any{
			"annotations":     map[string]string{AnnotationTermination: n.TerminationTime.UTC().Format(time.RFC3339)},
			"resourceVersion": node.ResourceVersion,
		},
		"spec": map[string]any{"unschedulable": true, "taints": taints},
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = h.deps.Client.CoreV1().Nodes().Patch(ctx, n.NodeName, types.MergePatchType, data, metav1.PatchOptions{})
	return err
}

// drain evicts the node's pods (DaemonSet pods stay; PDBs respected) until
// a few seconds before the termination time.
func (h *Controller) drain(ctx context.Context, n provider.InterruptionNotice) error {
	if h.deps.DryRun {
		return nil
	}
	left := n.TerminationTime.Sub(h.deps.Clock.Now()) - 5*time.Second
	if left <= 0 {
		left = time.Second
	}
	// Bare pods too: the machine goes away regardless.
	if err := drain.Node(ctx, h.deps.Client, n.NodeName, drain.Options{Timeout: left, EvictBarePods: true}); err != nil {
		return fmt.Errorf("draining %s before %s, %w", n.NodeName, n.TerminationTime.Format(time.TimeOnly), err)
	}
	h.deps.Logger.Info("interrupted node drained", "node", n.NodeName)
	return nil
}

// Wait waits for the drains Poll started.
func (h *Controller) Wait() { h.wg.Wait() }

// Run polls every interval until ctx ends, then waits for running drains.
func (h *Controller) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := h.Poll(ctx); err != nil && ctx.Err() == nil {
			h.deps.Logger.Warn("interruption poll", "error", err)
		}
		select {
		case <-ctx.Done():
			h.wg.Wait()
			return
		case <-t.C:
		}
	}
}
