package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
)

// RollOptions tune node pool rolls beyond the cluster's config items.
type RollOptions struct {
	// Disabled turns rolls off: outdated nodes are reported, not replaced.
	Disabled bool
}

func (o *RollOptions) defaults() {}

// Zone label of nodes and of PV node affinity.
const labelZone = "topology.kubernetes.io/zone"

// roll reads the cluster's pools and nodes, decides with PlanRoll and
// carries out this pass's steps. It returns the roll's progress, nil when
// every node is on its pool's template.
func (c *Controller) roll(ctx context.Context, conn *Conn, cl *fleet.Cluster, spec provider.ClusterSpec, p *pass) (*RollProgress, error) {
	items := spec.ConfigItems
	deadline, err := DrainDeadline(cl.Environment, items)
	if err != nil {
		return nil, err
	}
	surge, err := MaxSurge(items)
	if err != nil {
		return nil, err
	}
	list, err := conn.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes, %w", err)
	}
	maxNotReady, err := MaxNotReady(items, len(list.Items))
	if err != nil {
		return nil, err
	}
	in := RollInput{MaxNotReady: maxNotReady, MaxSurge: surge, Deadline: deadline, Now: c.opts.Clock.Now()}
	byPool := map[string][]*corev1.Node{}
	for i := range list.Items {
		n := &list.Items[i]
		terminated := n.Annotations[AnnotationTerminated] != ""
		if !nodeReady(n) && !terminated {
			in.NotReady++
		}
		if pool := n.Labels[fleet.LabelPool]; pool != "" {
			byPool[pool] = append(byPool[pool], n)
		}
	}
	for _, g := range spec.Groups {
		ng, err := conn.Cloud.NodeGroup(ctx, g.ID)
		if errors.Is(err, provider.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("node group %s, %w", g.ID, err)
		}
		pool := RollPool{Name: g.Pool, Group: g.ID, Hash: g.TemplateHash, Zones: g.Zones, TargetSize: ng.TargetSize}
		for _, n := range byPool[g.Pool] {
			rn, err := c.rollNode(ctx, conn.Kube, n, g.TemplateHash)
			if err != nil {
				return nil, err
			}
			pool.Nodes = append(pool.Nodes, rn)
		}
		in.Pools = append(in.Pools, pool)
	}
	plan := PlanRoll(in)
	if plan.Progress == nil || c.opts.Roll.Disabled {
		return plan.Progress, nil
	}
	if c.opts.DryRun {
		for _, s := range plan.Steps {
			p.changes = append(p.changes, fmt.Sprintf("roll: %s %s", s.Action, s.Node))
		}
		return plan.Progress, nil
	}
	refused := 0
	for _, s := range plan.Steps {
		n, err := c.step(ctx, conn, s, p)
		refused += n
		if err != nil {
			return plan.Progress, fmt.Errorf("%s %s, %w", s.Action, s.Node, err)
		}
	}
	if refused > 0 {
		plan.Progress.Message += fmt.Sprintf("; %d evictions refused by PodDisruptionBudgets, retried next pass", refused)
	}
	return plan.Progress, nil
}

// rollNode reads what the roll needs of a node: the pods to move and their
// zonal volumes only for nodes being replaced.
func (c *Controller) rollNode(ctx context.Context, cs kubernetes.Interface, n *corev1.Node, hash string) (RollNode, error) {
	rn := RollNode{
		Name: n.Name, Zone: n.Labels[labelZone], Hash: n.Labels[provider.LabelTemplateHash],
		Ready: nodeReady(n), Unschedulable: n.Spec.Unschedulable, Created: n.CreationTimestamp.Time,
	}
	for key, t := range map[string]*time.Time{AnnotationRollMarked: &rn.Marked, AnnotationDrainStarted: &rn.DrainStarted, AnnotationTerminated: &rn.Terminated} {
		v, ok := n.Annotations[key]
		if !ok {
			continue
		}
		parsed, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return rn, fmt.Errorf("node %s: annotation %s %q: expected an RFC 3339 time; fix or remove it", n.Name, key, v)
		}
		*t = parsed
	}
	if rn.Hash == hash || rn.Marked.IsZero() || !rn.Terminated.IsZero() {
		return rn, nil
	}
	pods, err := movablePods(ctx, cs, n.Name)
	if err != nil {
		return rn, err
	}
	rn.Pods = len(pods)
	if rn.DrainStarted.IsZero() {
		if rn.ZonalVolumes, err = zonalVolumes(ctx, cs, pods); err != nil {
			return rn, err
		}
	}
	return rn, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// movablePods are the pods a drain moves: not DaemonSet or mirror pods,
// not finished ones. Pods already terminating still count (the node is
// not empty yet) but are not evicted again.
func movablePods(ctx context.Context, cs kubernetes.Interface, node string) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s, %w", node, err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
			continue
		}
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "DaemonSet" {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// zonalVolumes returns the zones the pods' persistent volumes are pinned
// to by node affinity (L45).
func zonalVolumes(ctx context.Context, cs kubernetes.Interface, pods []corev1.Pod) ([]string, error) {
	seen := map[string]bool{}
	var zones []string
	for _, p := range pods {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			pvc, err := cs.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading PVC %s/%s, %w", p.Namespace, v.PersistentVolumeClaim.ClaimName, err)
			}
			if pvc.Spec.VolumeName == "" {
				continue
			}
			pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading PV %s, %w", pvc.Spec.VolumeName, err)
			}
			if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
				continue
			}
			for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
				for _, e := range term.MatchExpressions {
					if e.Key == labelZone && e.Operator == corev1.NodeSelectorOpIn {
						for _, z := range e.Values {
							if !seen[z] {
								seen[z] = true
								zones = append(zones, z)
							}
						}
					}
				}
			}
		}
	}
	return zones, nil
}

// step carries out one roll step and returns the evictions a PDB refused.
func (c *Controller) step(ctx context.Context, conn *Conn, s RollStep, p *pass) (int, error) {
	now := c.opts.Clock.Now().UTC().Format(time.RFC3339)
	cs := conn.Kube
	switch s.Action {
	case StepMark:
		// Surge first (L44): one more node in the group for this one.
		g, err := conn.Cloud.NodeGroup(ctx, s.Group)
		if err != nil {
			return 0, err
		}
		note := ""
		if err := conn.Cloud.SetTargetSize(ctx, s.Group, g.TargetSize+1); errors.Is(err, provider.ErrOutOfRange) {
			note = fmt.Sprintf(" (group at its maximum of %d: replaced without a surge)", g.MaxSize)
		} else if err != nil {
			return 0, err
		}
		if err := patchNode(ctx, cs, s.Node, map[string]string{AnnotationRollMarked: now}, false); err != nil {
			return 0, err
		}
		p.change("RollSurge", fmt.Sprintf("roll: node %s outdated, group %s surged%s", s.Node, s.Group, note))
		return 0, nil
	case StepDrain:
		if err := patchNode(ctx, cs, s.Node, map[string]string{AnnotationDrainStarted: now}, true); err != nil {
			return 0, err
		}
		p.change("RollDrain", fmt.Sprintf("roll: node %s cordoned, draining", s.Node))
		return evictAll(ctx, cs, s.Node)
	case StepEvict:
		return evictAll(ctx, cs, s.Node)
	case StepForce:
		pods, err := movablePods(ctx, cs, s.Node)
		if err != nil {
			return 0, err
		}
		for _, pod := range pods {
			if pod.DeletionTimestamp != nil {
				continue
			}
			if err := cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("deleting pod %s/%s, %w", pod.Namespace, pod.Name, err)
			}
		}
		if len(pods) > 0 {
			p.change("RollForce", fmt.Sprintf("roll: node %s: drain deadline passed, %d pods deleted despite PodDisruptionBudgets (L45)", s.Node, len(pods)))
		}
		return 0, nil
	case StepTerminate:
		instances, err := conn.Cloud.Instances(ctx, s.Group)
		if err != nil {
			return 0, err
		}
		id := ""
		for _, in := range instances {
			if in.NodeName == s.Node && (in.State == provider.Running || in.State == provider.Pending) {
				id = in.ID
			}
		}
		if id != "" {
			if err := conn.Cloud.DeleteInstances(ctx, s.Group, []string{id}); err != nil {
				return 0, err
			}
		} else if err := cs.CoreV1().Nodes().Delete(ctx, s.Node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			// No instance runs it any more: the Node object is all that is left.
			return 0, fmt.Errorf("deleting node %s, %w", s.Node, err)
		}
		if err := patchNode(ctx, cs, s.Node, map[string]string{AnnotationTerminated: now}, true); err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
		p.change("RollTerminate", fmt.Sprintf("roll: node %s drained, instance %s terminated", s.Node, id))
		return 0, nil
	}
	return 0, fmt.Errorf("unknown roll step %q", s.Action)
}

// evictAll asks once for the eviction of every movable pod of the node;
// PDB refusals (429) are counted and retried on the next pass.
func evictAll(ctx context.Context, cs kubernetes.Interface, node string) (int, error) {
	pods, err := movablePods(ctx, cs, node)
	if err != nil {
		return 0, err
	}
	refused := 0
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
		err := cs.CoreV1().Pods(pod.Namespace).EvictV1(ctx, ev)
		switch {
		case err == nil, apierrors.IsNotFound(err):
		case apierrors.IsTooManyRequests(err):
			refused++
		case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		default:
			return refused, fmt.Errorf("evicting %s/%s, %w", pod.Namespace, pod.Name, err)
		}
	}
	return refused, nil
}

// patchNode sets annotations (and cordons the node) with a merge patch.
func patchNode(ctx context.Context, cs kubernetes.Interface, node string, annotations map[string]string, cordon bool) error {
	patch := map[string]any{"metadata": map[string]any{"annotations": annotations}}
	if cordon {
		patch["spec"] = map[string]any{"unschedulable": true}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, data, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("patching node %s, %w", node, err)
	}
	return nil
}
