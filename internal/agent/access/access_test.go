package access

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bosun-platform/bosun/internal/agent/controller"
)

var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

func pending() *Request {
	return &Request{Name: "access-inc-123-abcde", Incident: "INC-123", Reason: "checkout down", Role: "edit",
		Duration: 2 * time.Hour, Requester: "alice", RequestedAt: t0, State: StatePending}
}

// L47: what the controller does with a request, as a pure function.
func TestDecide(t *testing.T) {
	prod, staging, selfOK := Config{Production: true}, Config{}, Config{AllowSelfApproval: true}
	with := func(f func(r *Request)) *Request { r := pending(); f(r); return r }
	for _, c := range []struct {
		name   string
		r      *Request
		now    time.Time
		cfg    Config
		action Action
		msg    string
		next   time.Time
	}{
		{"pending waits for approval", pending(), t0.Add(time.Minute), prod, Wait, "", t0.Add(PendingTTL)},
		{"unapproved for too long is refused", pending(), t0.Add(PendingTTL), prod, Refuse, "not approved within", time.Time{}},
		{"approved by another person is granted", with(func(r *Request) { r.Approver = "bob" }), t0.Add(time.Minute), prod, Grant, "", t0.Add(time.Minute + 2*time.Hour)},
		{"self-approval refused in production", with(func(r *Request) { r.Approver = "alice" }), t0, prod, Refuse, "production requires a second approver (L47)", time.Time{}},
		{"self-approval refused where not allowed", with(func(r *Request) { r.Approver = "alice" }), t0, staging, Refuse, "does not allow self-approval", time.Time{}},
		{"self-approval granted where allowed", with(func(r *Request) { r.Approver = "alice" }), t0, selfOK, Grant, "", t0.Add(2 * time.Hour)},
		{"no incident is refused", with(func(r *Request) { r.Incident = ""; r.Approver = "bob" }), t0, prod, Refuse, `incident "": expected an incident ID`, time.Time{}},
		{"cluster-admin is refused", with(func(r *Request) { r.Role = "cluster-admin"; r.Approver = "bob" }), t0, prod, Refuse, `role "cluster-admin": expected one of edit, admin`, time.Time{}},
		{"too long is refused", with(func(r *Request) { r.Duration = 24 * time.Hour; r.Approver = "bob" }), t0, prod, Refuse, "at most 12h", time.Time{}},
		{"active waits for its expiry", with(func(r *Request) { r.State, r.ExpiresAt = StateActive, t0.Add(time.Hour) }), t0, prod, Wait, "", t0.Add(time.Hour)},
		{"active expires", with(func(r *Request) { r.State, r.ExpiresAt = StateActive, t0.Add(time.Hour) }), t0.Add(time.Hour), prod, Expire, "expired at", time.Time{}},
		{"expired stays expired", with(func(r *Request) { r.State = StateExpired }), t0, prod, Wait, "", time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.r, c.now, c.cfg)
			if d.Action != c.action || !strings.Contains(d.Message, c.msg) || !d.Next.Equal(c.next) {
				t.Fatalf("got %+v; expected action %d, message containing %q, next %s", d, c.action, c.msg, c.next)
			}
			if d.Action == Grant && !d.ExpiresAt.Equal(c.now.Add(c.r.Duration)) {
				t.Fatalf("expires %s; expected %s", d.ExpiresAt, c.now.Add(c.r.Duration))
			}
		})
	}
}

// L47: a production agent cannot be configured to allow self-approval.
func TestConfigRefusesSelfApprovalInProduction(t *testing.T) {
	if err := (Config{Production: true, AllowSelfApproval: true}).Validate(); err == nil || !strings.Contains(err.Error(), "production") {
		t.Fatalf("got %v", err)
	}
	if _, err := New(controller.Deps{Client: fake.NewClientset(), Clock: clocktesting.NewFakeClock(t0), Recorder: record.NewFakeRecorder(1)}, Options{Config: Config{Production: true, AllowSelfApproval: true}}); err == nil {
		t.Fatal("New accepted self-approval in production")
	}
}

func TestConfigMapRoundTrip(t *testing.T) {
	r := pending()
	r.Namespace = "shop"
	cm := r.ConfigMap(DefaultNamespace)
	cm.Name = r.Name
	got, err := FromConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *r {
		t.Fatalf("got %+v; want %+v", got, r)
	}
	cm.Data[keyDuration] = "two hours"
	if _, err := FromConfigMap(cm); err == nil || !strings.Contains(err.Error(), "data.duration") {
		t.Fatalf("got %v; expected an error naming data.duration", err)
	}
}

// L47: the controller grants an approved request with a binding labelled
// with the incident; a new controller (a restart) with its clock past the
// expiry removes it, marks the request expired and says so in Events.
func TestControllerGrantsAndExpiresAcrossRestart(t *testing.T) {
	ctx := context.Background()
	r := pending()
	r.Approver, r.ApprovedAt = "bob", t0
	cm := r.ConfigMap(DefaultNamespace)
	cm.Name, cm.GenerateName = r.Name, ""
	client := fake.NewClientset(cm)
	clk := clocktesting.NewFakeClock(t0.Add(time.Minute))
	events := record.NewFakeRecorder(10)
	c, err := New(controller.Deps{Client: client, Clock: clk, Recorder: events}, Options{Config: Config{Production: true}})
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(2 * time.Hour); !next.Equal(want) {
		t.Errorf("next pass %s; expected the expiry %s", next, want)
	}
	b, err := client.RbacV1().ClusterRoleBindings().Get(ctx, BindingName(r.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Labels[IncidentLabel] != "INC-123" || b.RoleRef.Name != "edit" || len(b.Subjects) != 1 || b.Subjects[0].Name != "alice" || b.Subjects[0].Kind != "User" {
		t.Fatalf("binding %+v", b)
	}
	if e := <-events.Events; !strings.Contains(e, ReasonGranted) || !strings.Contains(e, "INC-123") || !strings.Contains(e, "bob") {
		t.Errorf("event %q", e)
	}
	got, _ := client.CoreV1().ConfigMaps(DefaultNamespace).Get(ctx, r.Name, metav1.GetOptions{})
	if got.Labels[StateLabel] != string(StateActive) || got.Data[keyExpiresAt] != "2026-12-03T10:01:00Z" {
		t.Fatalf("request after the grant: %v %v", got.Labels, got.Data)
	}

	// Restart: a new controller, later.
	clk2 := clocktesting.NewFakeClock(t0.Add(3 * time.Hour))
	c2, err := New(controller.Deps{Client: client, Clock: clk2, Recorder: events}, Options{Config: Config{Production: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Get(ctx, BindingName(r.Name), metav1.GetOptions{}); err == nil {
		t.Fatal("binding still there after expiry")
	}
	got, _ = client.CoreV1().ConfigMaps(DefaultNamespace).Get(ctx, r.Name, metav1.GetOptions{})
	if got.Labels[StateLabel] != string(StateExpired) {
		t.Fatalf("request state %q; expected expired", got.Labels[StateLabel])
	}
	if e := <-events.Events; !strings.Contains(e, ReasonExpired) {
		t.Errorf("event %q", e)
	}
}

// A binding whose request was deleted is removed: deleting the request
// ends the grant.
func TestControllerRemovesOrphanBindings(t *testing.T) {
	ctx := context.Background()
	r := pending()
	r.Namespace, r.Approver = "shop", "bob"
	cm := r.ConfigMap(DefaultNamespace)
	cm.Name, cm.GenerateName = r.Name, ""
	client := fake.NewClientset(cm, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	c, err := New(controller.Deps{Client: client, Clock: clocktesting.NewFakeClock(t0), Recorder: record.NewFakeRecorder(10)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().RoleBindings("shop").Get(ctx, BindingName(r.Name), metav1.GetOptions{}); err != nil {
		t.Fatalf("no RoleBinding in shop: %v", err)
	}
	if err := client.CoreV1().ConfigMaps(DefaultNamespace).Delete(ctx, r.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().RoleBindings("shop").Get(ctx, BindingName(r.Name), metav1.GetOptions{}); err == nil {
		t.Fatal("RoleBinding kept after its request was deleted")
	}
}

// Run wakes up at the grant's expiry (not only at the resync) and
// removes the binding; it returns when its context ends.
func TestRunRemovesAtExpiry(t *testing.T) {
	r := pending()
	r.Approver, r.Duration = "bob", 10*time.Minute
	cm := r.ConfigMap(DefaultNamespace)
	cm.Name, cm.GenerateName = r.Name, ""
	client := fake.NewClientset(cm)
	clk := clocktesting.NewFakeClock(t0)
	c, err := New(controller.Deps{Client: client, Clock: clk, Recorder: record.NewFakeRecorder(10)}, Options{Resync: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	exists := func() bool {
		_, err := client.RbacV1().ClusterRoleBindings().Get(context.Background(), BindingName(r.Name), metav1.GetOptions{})
		return err == nil
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; i < 500 && !cond(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if !cond() {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	waitFor("the grant", func() bool { return exists() && clk.HasWaiters() })
	clk.Step(10 * time.Minute)
	waitFor("the binding's removal at expiry", func() bool { return !exists() })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// In dry-run the controller reports the grant it would make and changes
// nothing: no binding, the request still pending.
func TestPassDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	r := pending()
	r.Approver = "bob"
	cm := r.ConfigMap(DefaultNamespace)
	cm.Name, cm.GenerateName = r.Name, ""
	client := fake.NewClientset(cm)
	c, err := New(controller.Deps{Client: client, Clock: clocktesting.NewFakeClock(t0), DryRun: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !strings.Contains(changes[0], "grant edit cluster-wide to alice for INC-123") {
		t.Fatalf("changes %q; expected the grant it would make", changes)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Get(ctx, BindingName(r.Name), metav1.GetOptions{}); err == nil {
		t.Fatal("dry-run created a binding")
	}
	got, _ := client.CoreV1().ConfigMaps(DefaultNamespace).Get(ctx, r.Name, metav1.GetOptions{})
	if got.Labels[StateLabel] != string(StatePending) {
		t.Fatalf("dry-run changed the request to %q", got.Labels[StateLabel])
	}
}

// A pass that grants asks the agent for another pass at the expiry
// (OnChange), so the binding does not outlive it by up to --interval.
func TestPassAsksForAPassAtExpiry(t *testing.T) {
	r := pending()
	r.Approver, r.Duration = "bob", 10*time.Minute
	cm := r.ConfigMap(DefaultNamespace)
	cm.Name, cm.GenerateName = r.Name, ""
	clk := clocktesting.NewFakeClock(t0)
	c, err := New(controller.Deps{Client: fake.NewClientset(cm), Clock: clk}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kicked := make(chan struct{}, 1)
	if err := c.OnChange(func() { kicked <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && !clk.HasWaiters(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-kicked:
		t.Fatal("kicked before the expiry")
	default:
	}
	clk.Step(10 * time.Minute)
	select {
	case <-kicked:
	case <-time.After(10 * time.Second):
		t.Fatal("no kick at the expiry")
	}
}
