package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Where the status lives in each cluster (L40): a ConfigMap survives any
// crash of the controller and needs no database of its own.
const (
	// StatusNamespace and StatusName locate the status ConfigMap.
	StatusNamespace = "bosun-system"
	// StatusName is the name of the status ConfigMap.
	StatusName = "bosun-status"
	// StatusKey is the data key holding the status as JSON.
	StatusKey = "status"
	// AnnotationBlock on the status ConfigMap is an update block set on the
	// live cluster by `bosun block` (its value is the reason); the
	// controller reads it and never writes it.
	AnnotationBlock = "lifecycle.bosun.dev/update-block"
	// FieldManager is the controller's server-side apply field manager;
	// it owns data.status.
	FieldManager = "bosun-controller"
	// BlockFieldManager is the field manager of `bosun block`; it owns the
	// block annotation.
	BlockFieldManager = "bosun-block"
)

// Phase is where a cluster is in its lifecycle.
type Phase string

// Phases.
const (
	// PhaseReconciled: the cluster is at its desired version.
	PhaseReconciled Phase = "Reconciled"
	// PhaseApplying: infrastructure or manifests are being changed, or
	// the controller waits for what changed to become healthy.
	PhaseApplying Phase = "Applying"
	// PhaseRolling: node pools are being replaced (L44).
	PhaseRolling Phase = "Rolling"
	// PhaseBlocked: an update block stops every change (still reported).
	PhaseBlocked Phase = "Blocked"
	// PhaseLintFailed: lint errors for the cluster stop every change.
	PhaseLintFailed Phase = "LintFailed"
	// PhaseWaiting: a production cluster waits until the non-production
	// clusters of its channel reached the channel's new revision (L43).
	PhaseWaiting Phase = "Waiting"
	// PhaseFailed: the last pass failed (LastError); retried with backoff.
	PhaseFailed Phase = "Failed"
	// PhaseUnreachable is never written: `bosun clusters` shows it for a
	// cluster whose API cannot be reached.
	PhaseUnreachable Phase = "Unreachable"
)

// Status is what the controller records in each cluster.
type Status struct {
	// Cluster is the fleet cluster ID.
	Cluster string `json:"cluster"`
	// DesiredVersion is the render version of the cluster (manifests and
	// spec) the fleet wants.
	DesiredVersion string `json:"desiredVersion"`
	// AppliedVersion is the last version fully reached: infrastructure
	// applied, manifests applied and healthy, node pools rolled.
	AppliedVersion string `json:"appliedVersion,omitempty"`
	// ManifestsVersion is the version whose manifests were applied and
	// found healthy (may be ahead of AppliedVersion during a roll).
	ManifestsVersion string `json:"manifestsVersion,omitempty"`
	// Channel and ChannelRevision: the release channel the cluster
	// follows and the fleet revision it was last rendered from (a commit
	// hash; HEAD's hash with "-dirty" for a working tree with changes;
	// "working-tree" for a fleet outside git). A stopped cluster keeps
	// the revision it had.
	Channel         string `json:"channel,omitempty"`
	ChannelRevision string `json:"channelRevision,omitempty"`
	// Phase is where the cluster is.
	Phase Phase `json:"phase"`
	// LastError is the last pass's error, empty after a success.
	LastError string `json:"lastError,omitempty"`
	// BlockedReason says why the cluster is not changed: an update block
	// or lint errors (naming the rules).
	BlockedReason string `json:"blockedReason,omitempty"`
	// Roll is the progress of the node pool roll, nil when none runs.
	Roll *RollProgress `json:"roll,omitempty"`
	// Since is when the phase or a version last changed.
	Since time.Time `json:"since"`
}

// RollProgress is the state of a node pool roll as status shows it; the
// roll's own state lives on the nodes (see roll.go).
type RollProgress struct {
	// Pool being rolled (one at a time per cluster).
	Pool string `json:"pool"`
	// Outdated counts the pool's nodes still on an older template;
	// Total all of its nodes.
	Outdated int `json:"outdated"`
	Total    int `json:"total"`
	// PoolsLeft counts the pools with outdated nodes, this one included.
	PoolsLeft int `json:"poolsLeft"`
	// Message says what the roll does or waits for.
	Message string `json:"message,omitempty"`
}

// String is a one-line summary, e.g. "default 2/5 outdated: draining x".
func (r *RollProgress) String() string {
	if r == nil {
		return ""
	}
	s := fmt.Sprintf("%s %d/%d outdated", r.Pool, r.Outdated, r.Total)
	if r.Message != "" {
		s += ": " + r.Message
	}
	return s
}

// sameContent reports whether two statuses differ only in Since: the
// controller writes a status only when its content changed, so a pass
// with nothing to do writes nothing.
func sameContent(a, b Status) bool {
	a.Since, b.Since = time.Time{}, time.Time{}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Live is what a cluster's status ConfigMap holds.
type Live struct {
	// Found is false when there is no status ConfigMap yet.
	Found bool
	// Status is the last status the controller wrote.
	Status Status
	// Block is the reason of an update block set by `bosun block`.
	Block string
	// Invalid, when set, says why data.status could not be read; the
	// controller then writes a fresh status.
	Invalid string
	// E2E is the last `bosun e2e` run (nil: none, or data.e2e not valid
	// JSON, said in E2EInvalid).
	E2E        *E2EResult
	E2EInvalid string
}

// ReadStatus reads a cluster's status ConfigMap.
func ReadStatus(ctx context.Context, cs kubernetes.Interface) (Live, error) {
	cm, err := cs.CoreV1().ConfigMaps(StatusNamespace).Get(ctx, StatusName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Live{}, nil
	}
	if err != nil {
		return Live{}, fmt.Errorf("reading %s/%s, %w", StatusNamespace, StatusName, err)
	}
	live := Live{Found: true, Block: strings.TrimSpace(cm.Annotations[AnnotationBlock])}
	if data, ok := cm.Data[StatusKey]; ok {
		if err := json.Unmarshal([]byte(data), &live.Status); err != nil {
			live.Invalid = fmt.Sprintf("%s/%s data.%s is not valid JSON: %v", StatusNamespace, StatusName, StatusKey, err)
			live.Status = Status{}
		}
	}
	if data, ok := cm.Data[E2EKey]; ok {
		var r E2EResult
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			live.E2EInvalid = fmt.Sprintf("%s/%s data.%s is not valid JSON: %v", StatusNamespace, StatusName, E2EKey, err)
		} else {
			live.E2E = &r
		}
	}
	return live, nil
}

// WriteStatus records st in the cluster (server-side apply of data.status
// by FieldManager), creating the namespace if needed.
func WriteStatus(ctx context.Context, cs kubernetes.Interface, st Status) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding status, %w", err)
	}
	cm := applycorev1.ConfigMap(StatusName, StatusNamespace).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": FieldManager}).
		WithData(map[string]string{StatusKey: string(data)})
	return applyStatusMap(ctx, cs, cm, FieldManager)
}

// SetBlock sets (reason non-empty) or clears the live update block of a
// cluster: the annotation AnnotationBlock on its status ConfigMap, owned
// by BlockFieldManager. The controller's data is left as it is.
func SetBlock(ctx context.Context, cs kubernetes.Interface, reason string) error {
	cm := applycorev1.ConfigMap(StatusName, StatusNamespace)
	if reason = strings.TrimSpace(reason); reason != "" {
		cm.WithAnnotations(map[string]string{AnnotationBlock: reason})
	}
	return applyStatusMap(ctx, cs, cm, BlockFieldManager)
}

func applyStatusMap(ctx context.Context, cs kubernetes.Interface, cm *applycorev1.ConfigMapApplyConfiguration, manager string) error {
	opts := metav1.ApplyOptions{FieldManager: manager, Force: true}
	_, err := cs.CoreV1().ConfigMaps(StatusNamespace).Apply(ctx, cm, opts)
	if apierrors.IsNotFound(err) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: StatusNamespace}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s, %w", StatusNamespace, err)
		}
		_, err = cs.CoreV1().ConfigMaps(StatusNamespace).Apply(ctx, cm, opts)
	}
	if err != nil {
		return fmt.Errorf("writing %s/%s, %w", StatusNamespace, StatusName, err)
	}
	return nil
}
