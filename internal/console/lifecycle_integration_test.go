//go:build integration

package console_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/agent/access"
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

	srv := alphaConsole(t, ctx, env)

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

// L47, L56: the fleet page and /api/fleet show who has emergency access,
// or waits for a second person's approval, with the incident, the reason
// and until when; a request that expired is no longer listed.
func TestIntegrationFleetPageEmergencyAccess(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: console.AccessNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	now := time.Now()
	req := access.Request{Incident: "INC-4242", Reason: "database failover stuck", Role: "edit", Namespace: "shop", Duration: 2 * time.Hour}
	r, err := access.Submit(ctx, env.Client, console.AccessNamespace, req, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().ConfigMaps(console.AccessNamespace).Delete(context.Background(), r.Name, metav1.DeleteOptions{})
	})

	srv := alphaConsole(t, ctx, env)

	var rows []console.FleetRow
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		get(t, srv.URL+"/api/fleet", &rows)
		return len(rows) == 1 && len(rows[0].Access) == 1, nil
	}, "the pending access request on /api/fleet")
	a := rows[0].Access[0]
	if a.Requester != r.Requester || a.Requester == "" || a.Incident != "INC-4242" || a.State != "pending" || a.Role != "edit" || a.Scope() != "shop" || a.Approver != "" {
		t.Errorf("access view %+v", a)
	}
	page := get(t, srv.URL+"/fleet", nil)
	for _, want := range []string{"Emergency access", "INC-4242", "database failover stuck", r.Requester, "waiting for a second person"} {
		if !strings.Contains(page, want) {
			t.Errorf("fleet page lacks %q", want)
		}
	}

	// Expired: off the page.
	cm, err := env.Client.CoreV1().ConfigMaps(console.AccessNamespace).Get(ctx, r.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := access.FromConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	expired.State, expired.Message = access.StateExpired, "expired"
	upd := expired.ConfigMap(console.AccessNamespace)
	upd.Name, upd.GenerateName, upd.ResourceVersion = cm.Name, "", cm.ResourceVersion
	if _, err := env.Client.CoreV1().ConfigMaps(console.AccessNamespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		rows = nil // fields left out of the JSON would keep their old values
		get(t, srv.URL+"/api/fleet", &rows)
		return len(rows) == 1 && len(rows[0].Access) == 0, nil
	}, "the expired request to leave /api/fleet")
	if page := get(t, srv.URL+"/fleet", nil); !strings.Contains(page, "Nobody has emergency access") {
		t.Error("fleet page does not say that nobody has emergency access")
	}
}

// alphaConsole serves a console over the test's control plane as the
// cluster "alpha", probing every 200 ms.
func alphaConsole(t *testing.T, ctx context.Context, env *testenv.Env) *httptest.Server {
	t.Helper()
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
	return srv
}
