package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/removedapi"
	"github.com/bosun-platform/bosun/internal/render"
)

// ErrRemovedAPIs wraps the refusal of an upgrade over removed APIs (L30).
var ErrRemovedAPIs = errors.New("objects are served only by APIs the target version removes")

// upgradeGate refuses a Kubernetes upgrade (the spec's version above the
// API server's) while live objects are served only by API versions the
// target release removes, or the rendered manifests use one. The removal
// table is k8s.io/api's generated lifecycle data (internal/removedapi).
func upgradeGate(ctx context.Context, conn *Conn, res *render.Result, want string) error {
	target, err := removedapi.ParseVersion(want)
	if err != nil {
		return err
	}
	info, err := conn.Kube.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("reading the API server's version, %w", err)
	}
	current, err := removedapi.ParseVersion(info.Major + "." + info.Minor)
	if err != nil {
		if current, err = removedapi.ParseVersion(info.GitVersion); err != nil {
			return fmt.Errorf("the API server's version (%q): %w", info.GitVersion, err)
		}
	}
	if !current.Less(target) {
		return nil
	}
	objs := make([]*unstructured.Unstructured, 0, len(res.Objects))
	for _, o := range res.Objects {
		objs = append(objs, o.Object)
	}
	findings := removedapi.CheckObjects(objs, target)
	if conn.Dynamic == nil {
		return fmt.Errorf("upgrade from %s to %s: no client to scan the cluster for removed APIs", current, target)
	}
	live, err := removedapi.Scan(ctx, conn.Kube.Discovery(), conn.Dynamic, target)
	if err != nil {
		return fmt.Errorf("upgrade from %s to %s: scanning for removed APIs, %w", current, target, err)
	}
	findings = append(findings, live...)
	if len(findings) == 0 {
		return nil
	}
	msgs := make([]string, len(findings))
	for i, f := range findings {
		msgs[i] = f.String()
	}
	return fmt.Errorf("upgrade from %s to %s refused: %w: %s", current, target, ErrRemovedAPIs, strings.Join(msgs, "; "))
}
