package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/render"
)

// E2E results live beside the controller's status, in their own data key
// of the same ConfigMap and owned by their own field manager, so that
// neither writer removes the other's data (L40, L43).
const (
	// E2EKey is the data key of the status ConfigMap holding the last e2e
	// run as JSON.
	E2EKey = "e2e"
	// E2EFieldManager owns data.e2e.
	E2EFieldManager = "bosun-e2e"
)

// Check outcomes.
const (
	CheckPassed  = "passed"
	CheckFailed  = "failed"
	CheckSkipped = "skipped"
)

// E2EResult is one run of `bosun e2e` against a cluster (L43).
type E2EResult struct {
	// Cluster is the fleet cluster ID.
	Cluster string `json:"cluster"`
	// Revision is the fleet revision the cluster ran during the suite
	// (its status's channelRevision), Version its applied version.
	Revision string `json:"revision,omitempty"`
	Version  string `json:"version,omitempty"`
	// Passed: no check failed (skipped checks do not fail the suite).
	Passed bool `json:"passed"`
	// Started is when the suite began; Duration how long it ran.
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	// Checks are the suite's checks in the order they ran.
	Checks []CheckResult `json:"checks"`
}

// CheckResult is the outcome of one check of the suite.
type CheckResult struct {
	// Name of the check, e.g. "deployment-rollout".
	Name string `json:"name"`
	// Result is passed, failed or skipped.
	Result string `json:"result"`
	// Message says what failed or why the check was skipped.
	Message  string `json:"message,omitempty"`
	Duration string `json:"duration"`
}

// WriteE2E records an e2e run in the cluster's status ConfigMap (data.e2e,
// field manager E2EFieldManager); the controller's data.status stays.
func WriteE2E(ctx context.Context, cs kubernetes.Interface, r E2EResult) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding e2e result, %w", err)
	}
	cm := applycorev1.ConfigMap(StatusName, StatusNamespace).WithData(map[string]string{E2EKey: string(data)})
	return applyStatusMap(ctx, cs, cm, E2EFieldManager)
}

// RenderedUnhealthy returns the rendered Deployments, DaemonSets and
// StatefulSets of res that have not rolled out (with why), empty when
// every one has.
func RenderedUnhealthy(ctx context.Context, cs kubernetes.Interface, res *render.Result) ([]string, error) {
	return unhealthy(ctx, cs, workloads(res))
}
