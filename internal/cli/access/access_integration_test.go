//go:build integration

package access

import (
	"context"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	examplefleet "github.com/bosun-platform/bosun/examples/fleet"
	"github.com/bosun-platform/bosun/internal/agent/access"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// Pods: the controller-manager fills the aggregated ClusterRoles edit and
// admin that requests grant.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Pods: true}) }

// agentUser is the agent's identity the example fleet's policy trusts.
const agentUser = "system:serviceaccount:kube-system:bosun-agent"

var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

// setup applies the example fleet's access component as the production
// cluster local-prod renders it (policies, people's view and requester
// bindings), and the agent's least-privilege RBAC (access.PolicyRules).
// It runs once per package.
func setup(t *testing.T) *testenv.Env {
	t.Helper()
	env := testenv.Get(t)
	ctx := t.Context()
	_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: access.DefaultNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	f, err := fleet.LoadFS(examplefleet.FS, "examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Cluster(ctx, "local-prod")
	if err != nil {
		t.Fatal(err)
	}
	resources := map[string]schema.GroupVersionResource{
		"ValidatingAdmissionPolicy":        {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"},
		"ValidatingAdmissionPolicyBinding": {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"},
		"Role":                             {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
		"RoleBinding":                      {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
		"ClusterRoleBinding":               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	}
	for _, o := range res.Objects {
		if o.Component != "access" {
			continue
		}
		gvr, ok := resources[o.Object.GetKind()]
		if !ok {
			t.Fatalf("%s: unexpected kind %s", o.File, o.Object.GetKind())
		}
		if _, err := env.Dynamic.Resource(gvr).Namespace(o.Object.GetNamespace()).Apply(ctx, o.Object.GetName(), o.Object, metav1.ApplyOptions{FieldManager: "bosun-test", Force: true}); err != nil {
			t.Fatalf("applying %s %s: %v", o.Object.GetKind(), o.Object.GetName(), err)
		}
	}
	cluster, namespaced := access.PolicyRules()
	apply := func(err error) {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	subject := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: agentUser}}
	_, err = env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bosun-access"}, Rules: cluster}, metav1.CreateOptions{})
	apply(err)
	_, err = env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bosun-access"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bosun-access"}, Subjects: subject}, metav1.CreateOptions{})
	apply(err)
	_, err = env.Client.RbacV1().Roles(access.DefaultNamespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "bosun-access"}, Rules: namespaced}, metav1.CreateOptions{})
	apply(err)
	_, err = env.Client.RbacV1().RoleBindings(access.DefaultNamespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bosun-access"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "bosun-access"}, Subjects: subject}, metav1.CreateOptions{})
	apply(err)
	// The API server loads each policy asynchronously and independently:
	// wait until both are in force, each probed by a dry run it refuses.
	alice := as(t, env, "alice")
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Labels: map[string]string{access.RequestLabel: "true"}},
			Data: map[string]string{"reason": "r", "role": "edit", "requester": "alice", "duration": "1h"}}
		_, err := alice.CoreV1().ConfigMaps(access.DefaultNamespace).Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "incident"), nil
	}, "the access request policy is in force")
	probe, err := alice.CoreV1().ConfigMaps(access.DefaultNamespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Labels: map[string]string{access.RequestLabel: "true", access.StateLabel: string(access.StatePending)}},
		Data:       map[string]string{"incident": "INC-1", "reason": "r", "role": "edit", "requester": "alice", "duration": "1h"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("probe request: %v", err)
	}
	defer func() {
		if err := env.Client.CoreV1().ConfigMaps(access.DefaultNamespace).Delete(context.Background(), probe.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting the probe request: %v", err)
		}
	}()
	probe.Data["approver"] = "alice"
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := alice.CoreV1().ConfigMaps(access.DefaultNamespace).Update(ctx, probe, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "second person"), nil
	}, "the second-approver policy is in force")
	return env
}

// as returns a client that the API server authenticates as user, a member
// of the example fleet's human group bosun:sre (impersonation).
func as(t *testing.T, env *testenv.Env, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	cfg := env.RESTConfig()
	if len(groups) == 0 {
		groups = []string{"bosun:sre"}
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cli(t *testing.T, client kubernetes.Interface, args ...string) (string, error) {
	t.Helper()
	var out, errOut strings.Builder
	err := run(t.Context(), iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		&target{client: client, namespace: access.DefaultNamespace, now: func() time.Time { return t0 }}, args...)
	return out.String() + errOut.String(), err
}

// requestName pulls the request's name from `bosun access request`'s output.
func requestName(t *testing.T, out string) string {
	t.Helper()
	name, _, ok := strings.Cut(strings.TrimPrefix(out, "request "), ":")
	if !ok || !strings.HasPrefix(name, "access-") {
		t.Fatalf("no request name in %q", out)
	}
	return name
}

// L47: a request without an incident is refused, by the CLI and, when
// written directly, by the API server.
func TestRequestWithoutIncidentRefused(t *testing.T) {
	env := setup(t)
	alice := as(t, env, "alice")
	if out, err := cli(t, alice, "request", "--cluster", "local-prod", "--reason", "r", "--role", "edit", "--for", "1h"); err == nil || !strings.Contains(out+err.Error(), "incident") {
		t.Fatalf("no --incident: got %v, %q", err, out)
	}
	_, err := cli(t, alice, "request", "--cluster", "local-prod", "--incident", "urgent", "--reason", "r", "--role", "edit", "--for", "1h")
	if err == nil || !strings.Contains(err.Error(), `incident "urgent": expected an incident ID such as INC-123`) {
		t.Fatalf("bad incident: got %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "access-", Labels: map[string]string{access.RequestLabel: "true"}},
		Data: map[string]string{"reason": "r", "role": "edit", "requester": "alice", "duration": "1h", "requestedAt": t0.Format(time.RFC3339)}}
	_, err = alice.CoreV1().ConfigMaps(access.DefaultNamespace).Create(t.Context(), cm, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "L47: an access request names its incident") {
		t.Fatalf("direct write without incident: got %v", err)
	}
	// Nor can anyone file a request in another person's name.
	cm.Data["incident"], cm.Data["requester"] = "INC-1", "bob"
	_, err = alice.CoreV1().ConfigMaps(access.DefaultNamespace).Create(t.Context(), cm, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "data.requester must be the user creating the request") {
		t.Fatalf("request in bob's name: got %v", err)
	}
}

// L47: in production the requester cannot approve their own request (the
// API server refuses it), nor set the approver to someone else; another
// person can.
func TestSelfApprovalRefusedInProduction(t *testing.T) {
	env := setup(t)
	alice, bob := as(t, env, "alice"), as(t, env, "bob")
	out, err := cli(t, alice, "request", "--cluster", "local-prod", "--incident", "INC-7", "--reason", "payments stuck", "--role", "admin", "--namespace", "default", "--for", "30m")
	if err != nil {
		t.Fatal(err, out)
	}
	name := requestName(t, out)
	_, err = cli(t, alice, "approve", name, "--cluster", "local-prod")
	if err == nil || !strings.Contains(err.Error(), "L47: a second person must approve") {
		t.Fatalf("self-approval: got %v", err)
	}
	cm, err := alice.CoreV1().ConfigMaps(access.DefaultNamespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["approver"] = "carol"
	if _, err := alice.CoreV1().ConfigMaps(access.DefaultNamespace).Update(t.Context(), cm, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "data.approver must be the user approving") {
		t.Fatalf("forged approver: got %v", err)
	}
	out, err = cli(t, bob, "approve", name, "--cluster", "local-prod")
	if err != nil || !strings.Contains(out, "approved by bob") {
		t.Fatalf("bob's approval: %v %q", err, out)
	}
	// Only the agent marks a request active.
	cm, err = bob.CoreV1().ConfigMaps(access.DefaultNamespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Labels[access.StateLabel] = string(access.StateActive)
	cm.Data["expiresAt"] = "2099-01-01T00:00:00Z"
	if _, err := bob.CoreV1().ConfigMaps(access.DefaultNamespace).Update(t.Context(), cm, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "only the agent's access controller") {
		t.Fatalf("a person marking the request active: got %v", err)
	}
}

func canCreateDeployments(t *testing.T, c kubernetes.Interface, ns string) bool {
	t.Helper()
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(t.Context(), &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "apps", Resource: "deployments"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}

// L47: the agent's controller (least-privilege RBAC, the identity the
// policy trusts) grants the approved request with a binding labelled with
// the incident; a new controller after a restart, its clock past the
// expiry, removes it, marks the request expired and records Events;
// `bosun access list` shows who had what, why and until when.
func TestAccessExpiresAfterRestart(t *testing.T) {
	env := setup(t)
	ctx := t.Context()
	alice, bob := as(t, env, "alice"), as(t, env, "bob")
	if canCreateDeployments(t, alice, "default") {
		t.Fatal("alice can write before any grant; the example should give people view only")
	}
	out, err := cli(t, alice, "request", "--cluster", "local-prod", "--incident", "INC-123", "--reason", "checkout returns 500s", "--role", "edit", "--for", "2h")
	if err != nil {
		t.Fatal(err, out)
	}
	name := requestName(t, out)
	if out, err := cli(t, bob, "approve", name, "--cluster", "local-prod"); err != nil {
		t.Fatal(err, out)
	}

	agent := as(t, env, agentUser, "system:serviceaccounts")
	newController := func(clk *clocktesting.FakeClock) *access.Controller {
		b := record.NewBroadcaster()
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: agent.CoreV1().Events("")})
		t.Cleanup(b.Shutdown)
		c, err := access.New(controller.Deps{Client: agent, Clock: clk, Recorder: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "bosun-agent"})}, access.Options{Config: access.Config{Production: true}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := newController(clocktesting.NewFakeClock(t0.Add(time.Minute)))
	if _, err := first.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	crb, err := env.Client.RbacV1().ClusterRoleBindings().Get(ctx, access.BindingName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if crb.Labels[access.IncidentLabel] != "INC-123" || crb.RoleRef.Name != "edit" || crb.Subjects[0].Name != "alice" {
		t.Fatalf("binding %v %v %v", crb.Labels, crb.RoleRef, crb.Subjects)
	}
	// The authorizer's RBAC cache follows the binding within moments.
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		return canCreateDeployments(t, alice, "default"), nil
	}, "alice can write after the grant")
	out, err = cli(t, alice, "list", "--cluster", "local-prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{name, "active", "INC-123", "alice", "bob", "edit", "2026-12-03T10:01:00Z", "checkout returns 500s"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}

	// The agent restarts; when it comes back the grant has expired.
	second := newController(clocktesting.NewFakeClock(t0.Add(3 * time.Hour)))
	if _, err := second.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Get(ctx, access.BindingName(name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("binding after expiry: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, error) {
		return !canCreateDeployments(t, alice, "default"), nil
	}, "alice cannot write after the expiry")
	out, err = cli(t, alice, "list", "--cluster", "local-prod")
	if err != nil || !strings.Contains(out, "expired") {
		t.Fatalf("list after expiry: %v\n%s", err, out)
	}
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := env.Client.CoreV1().Events(access.DefaultNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, e := range evs.Items {
			seen[e.Reason] = true
		}
		return seen[access.ReasonGranted] && seen[access.ReasonExpired], nil
	}, "Events %s and %s on the request", access.ReasonGranted, access.ReasonExpired)
}
