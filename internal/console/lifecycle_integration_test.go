//go:build integration

package console_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// The fleet page shows each cluster's lifecycle status from its ConfigMap
// bosun-system/bosun-status (L40): phase, applied vs desired version,
// channel revision, a live block, roll progress and the last e2e run;
// it follows the ConfigMap as it changes.
func TestIntegrationFleetPageLifecycle(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	t.Cleanup(func() {
		_ = env.Client.CoreV1().ConfigMaps(lifecycle.StatusNamespace).Delete(context.Background(), lifecycle.StatusName, metav1.DeleteOptions{})
	})
	st := lifecycle.Status{
		Cluster: "alpha", DesiredVersion: "v-new", AppliedVersion: "v-old", ManifestsVersion: "v-new",
		Channel: "beta", ChannelRevision: "0123456789abcdef0123456789abcdef01234567", Phase: lifecycle.PhaseRolling,
		Roll: &lifecycle.RollProgress{Pool: "workers", Outdated: 2, Total: 4, PoolsLeft: 1, Message: "draining node-1"},
	}
	if err := lifecycle.WriteStatus(ctx, env.Client, st); err != nil {
		t.Fatal(err)
	}
	if err := lifecycle.SetBlock(ctx, env.Client, "incident 4711"); err != nil {
		t.Fatal(err)
	}
	if err := lifecycle.WriteE2E(ctx, env.Client, lifecycle.E2EResult{Cluster: "alpha", Revision: st.ChannelRevision, Passed: true}); err != nil {
		t.Fatal(err)
	}

	kubeconfig := writeKubeconfig(t, map[string]*rest.Config{"alpha": env.RESTConfig()})
	srcs, err := console.ClustersFromKubeconfig(kubeconfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Options{Clusters: srcs, ProbeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(ctx)
	h, err := c.Handler(console.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	var rows []console.FleetRow
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		get(t, srv.URL+"/api/fleet", &rows)
		return len(rows) == 1 && rows[0].Lifecycle != nil, nil
	}, "the lifecycle status on /api/fleet")
	lc := rows[0].Lifecycle
	if lc.Phase != "Rolling" || lc.AppliedVersion != "v-old" || lc.DesiredVersion != "v-new" || lc.Blocked != "bosun block: incident 4711" ||
		lc.Roll != "workers 2/4 outdated: draining node-1" || lc.E2E != "passed at 0123456789ab" || lc.ChannelRevision != st.ChannelRevision {
		t.Errorf("lifecycle view %+v", lc)
	}
	page := get(t, srv.URL+"/fleet", nil)
	for _, want := range []string{`<span class="phase Rolling">Rolling</span>`, "applied v-old → desired v-new", "bosun block: incident 4711",
		"roll: workers 2/4 outdated: draining node-1", "e2e passed at 0123456789ab", "@0123456789ab"} {
		if !strings.Contains(page, want) {
			t.Errorf("fleet page lacks %q", want)
		}
	}

	// The controller finishes: the page follows.
	st.Phase, st.AppliedVersion, st.Roll = lifecycle.PhaseReconciled, "v-new", nil
	if err := lifecycle.WriteStatus(ctx, env.Client, st); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		page = get(t, srv.URL+"/fleet", nil)
		return strings.Contains(page, `<span class="phase Reconciled">`) && strings.Contains(page, "applied v-new</div>") && !strings.Contains(page, "roll:"), nil
	}, "the fleet page to show the reconciled cluster")
}
