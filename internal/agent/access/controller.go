package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agentcmd"
)

// Event reasons.
const (
	ReasonGranted = "AccessGranted"
	ReasonExpired = "AccessExpired"
	ReasonRefused = "AccessRefused"
	ReasonRemoved = "AccessBindingRemoved"
)

// Options configure the controller.
type Options struct {
	// Namespace holds the requests (default bosun-system).
	Namespace string
	// Config is the approval policy.
	Config Config
	// Resync is the longest wait between passes of Run (default 30s); a
	// pass also runs when a grant or a pending request is due.
	Resync time.Duration
}

// Name is the access controller's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerAccess

// Controller grants approved requests and removes expired grants. All its
// state is in the API (requests and bindings), so a restarted controller
// removes what expired while it was down.
type Controller struct {
	client   kubernetes.Interface
	clock    clock.Clock
	recorder record.EventRecorder
	logger   *slog.Logger
	dryRun   bool
	opts     Options

	mu     sync.Mutex
	notify func()
	wake   time.Time
}

// New returns the access controller (L47, L56). Deps.Client is required;
// Deps.Clock, Recorder and Logger default as controller.Deps.WithDefaults
// says; in Deps.DryRun it reports what it would grant or remove and
// changes nothing. Its privileges are PolicyRules (RBAC in
// deploy/agent/95-rbac-access.yaml).
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldClient); err != nil {
		return nil, err
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	deps = deps.WithDefaults()
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	return &Controller{client: deps.Client, clock: deps.Clock, recorder: deps.Recorder, logger: deps.Logger, dryRun: deps.DryRun, opts: opts}, nil
}

// Name identifies the controller.
func (c *Controller) Name() string { return Name }

// OnChange registers f, which the controller calls when a grant expires
// or a pending request times out before the agent's next pass is due, so
// that a binding does not outlive its expiry by up to --interval.
func (c *Controller) OnChange(f func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notify = f
	return nil
}

// Pass makes one pass over the requests and the bindings (Reconcile) and
// reports what it changed, or in dry-run would change.
func (c *Controller) Pass(ctx context.Context) ([]string, error) {
	next, changes, err := c.reconcile(ctx)
	if !next.IsZero() {
		c.wakeAt(ctx, next)
	}
	return changes, err
}

// wakeAt asks for a pass at t (once per t) through the OnChange function.
func (c *Controller) wakeAt(ctx context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.notify == nil || c.wake.Equal(t) {
		return
	}
	c.wake = t
	f, clk := c.notify, c.clock
	go func() {
		select {
		case <-ctx.Done():
		case <-clk.After(max(t.Sub(clk.Now()), 0)):
			f()
		}
	}()
}

// Run reconciles until ctx is done; errors of one pass are logged and the
// pass retried at the next resync.
func (c *Controller) Run(ctx context.Context) error {
	for {
		next, err := c.Reconcile(ctx)
		if err != nil {
			c.logger.Error("access: reconcile", "err", err)
		}
		wait := c.opts.Resync
		if !next.IsZero() {
			if d := next.Sub(c.clock.Now()); d < wait {
				wait = max(d, 100*time.Millisecond)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(wait):
		}
	}
}

// Reconcile makes one pass over the requests and the bindings and
// returns when the next one is due (zero: only at the resync).
func (c *Controller) Reconcile(ctx context.Context) (time.Time, error) {
	next, _, err := c.reconcile(ctx)
	return next, err
}

func (c *Controller) reconcile(ctx context.Context) (time.Time, []string, error) {
	now := c.clock.Now()
	cms, err := c.client.CoreV1().ConfigMaps(c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: RequestLabel + "=true"})
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("listing access requests in %s: %w", c.opts.Namespace, err)
	}
	var next time.Time
	var errs []error
	var changes []string
	active := map[string]bool{}
	for i := range cms.Items {
		cm := &cms.Items[i]
		r, perr := FromConfigMap(cm)
		var d Decision
		if perr != nil {
			d = Decision{Action: Refuse, Message: perr.Error()}
			if r.State != StatePending {
				d = Decision{Action: Expire, Message: perr.Error()}
			}
		} else {
			d = Decide(r, now, c.opts.Config)
		}
		if change, err := c.act(ctx, cm, r, d, now); err != nil {
			errs = append(errs, err)
		} else if change != "" {
			changes = append(changes, change)
		}
		if (d.Action == Wait && r.State == StateActive) || d.Action == Grant {
			active[r.Name] = true
		}
		if !d.Next.IsZero() && (next.IsZero() || d.Next.Before(next)) {
			next = d.Next
		}
	}
	removed, err := c.sweep(ctx, now, active)
	if err != nil {
		errs = append(errs, err)
	}
	changes = append(changes, removed...)
	return next, changes, errors.Join(errs...)
}

// act carries out d on the request r and returns what it changed ("" for
// nothing); in dry-run it returns what it would change.
func (c *Controller) act(ctx context.Context, cm *corev1.ConfigMap, r *Request, d Decision, now time.Time) (string, error) {
	var change string
	switch d.Action {
	case Grant:
		change = fmt.Sprintf("grant %s %s to %s for %s until %s (request %s)", r.Role, scope(r), r.Requester, r.Incident, d.ExpiresAt.UTC().Format(time.RFC3339), r.Name)
	case Expire:
		change = fmt.Sprintf("remove %s %s of %s for %s (request %s): %s", r.Role, scope(r), r.Requester, r.Incident, r.Name, d.Message)
	case Refuse:
		change = fmt.Sprintf("refuse request %s: %s", r.Name, d.Message)
	default:
		return "", nil
	}
	if c.dryRun {
		return change, nil
	}
	switch d.Action {
	case Grant:
		if err := c.grant(ctx, r, d.ExpiresAt); err != nil {
			return "", err
		}
		cm = cm.DeepCopy()
		cm.Labels[StateLabel] = string(StateActive)
		cm.Data[keyGrantedAt] = now.UTC().Format(time.RFC3339)
		cm.Data[keyExpiresAt] = d.ExpiresAt.UTC().Format(time.RFC3339)
		if _, err := c.client.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return "", fmt.Errorf("marking request %s/%s active: %w", cm.Namespace, cm.Name, err)
		}
		c.recorder.Eventf(cm, corev1.EventTypeNormal, ReasonGranted, "granted %s %s to %s for %s until %s, approved by %s: %s",
			r.Role, scope(r), r.Requester, r.Incident, d.ExpiresAt.UTC().Format(time.RFC3339), r.Approver, r.Reason)
	case Expire:
		if err := c.deleteBinding(ctx, r.Namespace, BindingName(r.Name)); err != nil {
			return "", err
		}
		if err := c.finish(ctx, cm, StateExpired, d.Message); err != nil {
			return "", err
		}
		c.recorder.Eventf(cm, corev1.EventTypeNormal, ReasonExpired, "removed %s %s of %s for %s: %s", r.Role, scope(r), r.Requester, r.Incident, d.Message)
	case Refuse:
		if err := c.finish(ctx, cm, StateRefused, d.Message); err != nil {
			return "", err
		}
		c.recorder.Eventf(cm, corev1.EventTypeWarning, ReasonRefused, "refused %s %s for %s requested by %s: %s", r.Role, scope(r), r.Incident, r.Requester, d.Message)
	}
	return change, nil
}

func scope(r *Request) string {
	if r.Namespace == "" {
		return "cluster-wide"
	}
	return "in namespace " + r.Namespace
}

func (c *Controller) finish(ctx context.Context, cm *corev1.ConfigMap, s State, msg string) error {
	cm = cm.DeepCopy()
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Labels[StateLabel] = string(s)
	cm.Data[keyMessage] = msg
	if _, err := c.client.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("marking request %s/%s %s: %w", cm.Namespace, cm.Name, s, err)
	}
	return nil
}

// grant creates the binding, or updates the expiry of one left by a pass
// that stopped before it marked the request active.
func (c *Controller) grant(ctx context.Context, r *Request, expires time.Time) error {
	meta := metav1.ObjectMeta{
		Name:        BindingName(r.Name),
		Labels:      map[string]string{ManagedByLabel: ManagedBy, IncidentLabel: r.Incident, RequestLabel: r.Name},
		Annotations: map[string]string{ExpiresAnnotation: expires.UTC().Format(time.RFC3339), "access.bosun.dev/reason": r.Reason, "access.bosun.dev/approver": r.Approver},
	}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.Role}
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: r.Requester}}
	var err error
	if r.Namespace == "" {
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: ref, Subjects: subjects}
		_, err = c.client.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = c.client.RbacV1().ClusterRoleBindings().Update(ctx, b, metav1.UpdateOptions{})
		}
	} else {
		meta.Namespace = r.Namespace
		b := &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref, Subjects: subjects}
		_, err = c.client.RbacV1().RoleBindings(r.Namespace).Create(ctx, b, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = c.client.RbacV1().RoleBindings(r.Namespace).Update(ctx, b, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("granting request %s (%s %s to %s): %w", r.Name, r.Role, scope(r), r.Requester, err)
	}
	return nil
}

func (c *Controller) deleteBinding(ctx context.Context, ns, name string) error {
	var err error
	if ns == "" {
		err = c.client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
	} else {
		err = c.client.RbacV1().RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing binding %s: %w", name, err)
	}
	return nil
}

// sweep removes bindings the controller made whose request is gone or no
// longer active, or whose expiry passed: a deleted request ends its grant.
func (c *Controller) sweep(ctx context.Context, now time.Time, active map[string]bool) ([]string, error) {
	sel := labels.Set{ManagedByLabel: ManagedBy}.AsSelector().String()
	crbs, err := c.client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing access bindings: %w", err)
	}
	rbs, err := c.client.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing access bindings: %w", err)
	}
	var objs []metav1.Object
	for i := range crbs.Items {
		objs = append(objs, &crbs.Items[i])
	}
	for i := range rbs.Items {
		objs = append(objs, &rbs.Items[i])
	}
	var errs []error
	var removed []string
	for _, o := range objs {
		expires, perr := time.Parse(time.RFC3339, o.GetAnnotations()[ExpiresAnnotation])
		if active[o.GetLabels()[RequestLabel]] && perr == nil && now.Before(expires) {
			continue
		}
		change := fmt.Sprintf("remove binding %s (request %s gone, not active or expired)", path.Join(o.GetNamespace(), o.GetName()), o.GetLabels()[RequestLabel])
		if c.dryRun {
			removed = append(removed, change)
			continue
		}
		if err := c.deleteBinding(ctx, o.GetNamespace(), o.GetName()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, change)
		c.logger.Info("access: removed binding", "namespace", o.GetNamespace(), "name", o.GetName(), "request", o.GetLabels()[RequestLabel])
		if ro, ok := o.(runtime.Object); ok {
			c.recorder.Eventf(ro, corev1.EventTypeNormal, ReasonRemoved, "removed: its request %s is gone, not active or expired (expiry %s)", o.GetLabels()[RequestLabel], o.GetAnnotations()[ExpiresAnnotation])
		}
	}
	return removed, errors.Join(errs...)
}

// PolicyRules are the controller's least privileges: cluster-wide ones
// (bindings it makes and removes, bind on exactly the roles it grants)
// and those in its namespace (the requests, and Events about them).
func PolicyRules() (cluster, namespaced []rbacv1.PolicyRule) {
	cluster = []rbacv1.PolicyRule{
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings", "rolebindings"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, ResourceNames: Roles, Verbs: []string{"bind"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	namespaced = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "update"}},
	}
	return cluster, namespaced
}
