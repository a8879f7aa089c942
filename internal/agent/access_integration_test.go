//go:build integration

package agent

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/agent/access"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// The agent runs the access controller under its shipped RBAC
// (deploy/agent/95-rbac-access.yaml) as the bosun-agent service account
// (L47, L56): it grants an approved request with a RoleBinding to admin in
// a namespace (the API server lets it only through `bind` on admin), removes
// it at the expiry without waiting for --interval, and removes a grant
// that expired while the agent was stopped as soon as it is back.
func TestAccessGrantsAndExpiresUnderShippedRBAC(t *testing.T) {
	env := testenv.Get(t)
	applyShippedRBAC(t, env)
	ns := env.Namespace(t)
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:bosun-system:bosun-agent"}
	start := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			// An hour between passes: only the controller's wake-up at the
			// expiry can remove the binding in time.
			done <- Run(ctx, Options{
				RESTConfig: cfg, Controllers: []string{agentcmd.ControllerAccess}, Interval: time.Hour, Logger: quiet,
				Access: access.Options{Namespace: access.DefaultNamespace, Config: access.Config{Production: true}},
			})
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}
	request := func(name string, d time.Duration) {
		t.Helper()
		now := time.Now()
		r := &access.Request{Name: name, Incident: "INC-42", Reason: "checkout down", Role: "admin", Namespace: ns, Duration: d,
			Requester: "alice", RequestedAt: now, Approver: "bob", ApprovedAt: now, State: access.StatePending}
		cm := r.ConfigMap(access.DefaultNamespace)
		cm.Name, cm.GenerateName = name, ""
		if _, err := env.Client.CoreV1().ConfigMaps(access.DefaultNamespace).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	binding := func(name string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			b, err := env.Client.RbacV1().RoleBindings(ns).Get(ctx, access.BindingName(name), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if b.RoleRef.Name != "admin" || b.Labels[access.IncidentLabel] != "INC-42" || b.Subjects[0].Name != "alice" {
				t.Fatalf("binding %v %v %v", b.RoleRef, b.Labels, b.Subjects)
			}
			return true, nil
		}
	}
	gone := func(name string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			ok, err := binding(name)(ctx)
			return !ok && err == nil, err
		}
	}
	state := func(name string) string {
		cm, err := env.Client.CoreV1().ConfigMaps(access.DefaultNamespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Labels[access.StateLabel]
	}

	stop := start()
	request("access-inc-42-short", 5*time.Second)
	testenv.Eventually(t, 30*time.Second, binding("access-inc-42-short"), "the RoleBinding to admin granted by the agent")
	testenv.Eventually(t, 30*time.Second, gone("access-inc-42-short"), "the RoleBinding removed at its expiry")
	if s := state("access-inc-42-short"); s != string(access.StateExpired) {
		t.Errorf("request state %q; expected expired", s)
	}

	// A grant that expires while the agent is down is removed when it is
	// back (all state is in the API).
	// An hour between passes: a request approved now waits for the next
	// pass, which a restart makes at once.
	request("access-inc-42-restart", 4*time.Second)
	stop()
	stop = start()
	testenv.Eventually(t, 30*time.Second, binding("access-inc-42-restart"), "the second grant")
	stop()
	time.Sleep(5 * time.Second) // past the expiry, with no agent running
	if ok, err := binding("access-inc-42-restart")(context.Background()); err != nil || !ok {
		t.Fatalf("binding gone with no agent running (%v): the test proves nothing", err)
	}
	stop = start()
	defer stop()
	testenv.Eventually(t, 30*time.Second, gone("access-inc-42-restart"), "the expired grant removed after the restart")
	if s := state("access-inc-42-restart"); s != string(access.StateExpired) {
		t.Errorf("request state %q; expected expired", s)
	}
}
