//go:build integration

package lifecycle_test

import (
	"context"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/e2e"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/render"
)

// L43: once the cluster reached the fleet's version, the controller runs
// the real e2e suite against it and the suite records its result in the
// cluster's status, at that version, where `bosun promote` reads it; the
// next pass, with nothing changed, does not run it again.
func TestIntegrationControllerRunsE2E(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "e2e", "m5.xlarge", "", 2, 1)
	runs := 0
	w.e2e = func(ctx context.Context, cl *fleet.Cluster, conn *lifecycle.Conn, res *render.Result) (lifecycle.E2EResult, error) {
		runs++
		return e2e.Run(ctx, e2e.Options{
			Cluster: cl.ID, Kube: conn.Kube, Config: conn.Config, Rendered: res, Record: true,
			SkipProvisioner: "no provisioner runs in this test", Timeout: time.Minute,
		})
	}
	c := w.controller(nil)
	var st lifecycle.Status
	for i := 0; i < 10 && runs == 0; i++ {
		res, err := c.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st = res[0].Status
		time.Sleep(500 * time.Millisecond)
	}
	if runs != 1 {
		t.Fatalf("e2e runs %d after the cluster reconciled (status %+v), want 1", runs, st)
	}
	live, err := lifecycle.ReadStatus(ctx, w.env.Client)
	if err != nil {
		t.Fatal(err)
	}
	if live.E2E == nil || !live.E2E.Passed || live.E2E.Version != live.Status.AppliedVersion {
		t.Fatalf("recorded e2e %+v at applied version %s, want passed there", live.E2E, live.Status.AppliedVersion)
	}
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Errorf("e2e ran again with nothing changed (%d runs)", runs)
	}
}
