// Package access implements emergency access (L47, L56): people are
// read-only by default; in an incident one asks for edit or admin for a
// bounded time, naming the incident and a reason, and another person
// approves (in production always another person). Requests are ConfigMaps
// in the agent's namespace (bosun-system), so that their state survives
// any restart; the controller here grants an approved request with a
// time-bound RoleBinding or ClusterRoleBinding labelled with the incident,
// removes it at expiry and emits Events.
//
// Identities are the API server's: the CLI asks SelfSubjectReview who is
// calling, and the admission policy shipped with the fleet
// (examples/fleet/manifests/access) refuses a request or approval whose
// requester or approver is not the authenticated user, so the fields
// cannot be forged by editing the ConfigMap.
//
// The package has a pure part (Decide: what to do with a request at a
// given time) and a thin loop (Controller.Run) that applies it.
package access

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels, annotations and data keys of requests and the bindings they
// grant.
const (
	// RequestLabel marks a ConfigMap as an access request.
	RequestLabel = "access.bosun.dev/request"
	// IncidentLabel carries the incident on requests and bindings.
	IncidentLabel = "access.bosun.dev/incident"
	// StateLabel is the request's state, for selectors.
	StateLabel = "access.bosun.dev/state"
	// ExpiresAnnotation on a granted binding is when the controller
	// removes it (RFC 3339), also when its request is gone.
	ExpiresAnnotation = "access.bosun.dev/expires-at"
	// ManagedByLabel marks bindings the controller made.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedBy is its value.
	ManagedBy = "bosun-access"

	// DefaultNamespace holds the requests.
	DefaultNamespace = "bosun-system"
	// MaxDuration bounds a request.
	MaxDuration = 12 * time.Hour
	// PendingTTL is how long a request waits for approval.
	PendingTTL = time.Hour
)

// Data keys.
const (
	keyIncident    = "incident"
	keyReason      = "reason"
	keyRole        = "role"
	keyNamespace   = "namespace"
	keyDuration    = "duration"
	keyRequester   = "requester"
	keyRequestedAt = "requestedAt"
	keyApprover    = "approver"
	keyApprovedAt  = "approvedAt"
	keyGrantedAt   = "grantedAt"
	keyExpiresAt   = "expiresAt"
	keyMessage     = "message"
)

// State of a request.
type State string

// States.
const (
	StatePending State = "pending"
	StateActive  State = "active"
	StateExpired State = "expired"
	StateRefused State = "refused"
)

// Roles a request may ask for: the built-in ClusterRoles.
var Roles = []string{"edit", "admin"}

// incidentPattern is an incident ID such as INC-123.
var incidentPattern = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[0-9]+$`)

// IncidentPattern is the incident syntax, for messages and policies.
const IncidentPattern = `^[A-Z][A-Z0-9]*-[0-9]+$`

// Request is one access request.
type Request struct {
	// Name of its ConfigMap.
	Name string
	// Incident is the incident ID, e.g. INC-123.
	Incident string
	// Reason says why.
	Reason string
	// Role is edit or admin.
	Role string
	// Namespace scopes the grant to one namespace (a RoleBinding); empty
	// grants it cluster-wide (a ClusterRoleBinding).
	Namespace string
	// Duration is how long the grant lasts from when it is granted.
	Duration time.Duration
	// Requester is the user who asked and who gets the role.
	Requester string
	// RequestedAt is when.
	RequestedAt time.Time
	// Approver is the user who approved; empty while pending.
	Approver string
	// ApprovedAt is when.
	ApprovedAt time.Time
	// State is the controller's view.
	State State
	// GrantedAt and ExpiresAt are set when the binding is made.
	GrantedAt, ExpiresAt time.Time
	// Message says why the request was refused or expired.
	Message string
}

// Validate checks what a person supplies; errors name the field and what
// was expected.
func (r *Request) Validate() error {
	var errs []error
	if !incidentPattern.MatchString(r.Incident) {
		errs = append(errs, fmt.Errorf("incident %q: expected an incident ID such as INC-123 (%s)", r.Incident, IncidentPattern))
	}
	if strings.TrimSpace(r.Reason) == "" {
		errs = append(errs, errors.New("reason: expected why access is needed"))
	}
	if !validRole(r.Role) {
		errs = append(errs, fmt.Errorf("role %q: expected one of %s", r.Role, strings.Join(Roles, ", ")))
	}
	if r.Duration <= 0 || r.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %s: expected more than 0 and at most %s", r.Duration, MaxDuration))
	}
	if r.Requester == "" {
		errs = append(errs, errors.New("requester: expected the requesting user"))
	}
	return errors.Join(errs...)
}

func validRole(role string) bool {
	for _, r := range Roles {
		if r == role {
			return true
		}
	}
	return false
}

// ConfigMap returns the request as a new ConfigMap in ns (named with a
// generated suffix), with every field that is set.
func (r *Request) ConfigMap(ns string) *corev1.ConfigMap {
	data := map[string]string{
		keyIncident:    r.Incident,
		keyReason:      r.Reason,
		keyRole:        r.Role,
		keyDuration:    r.Duration.String(),
		keyRequester:   r.Requester,
		keyRequestedAt: r.RequestedAt.UTC().Format(time.RFC3339),
	}
	for key, v := range map[string]string{keyNamespace: r.Namespace, keyApprover: r.Approver, keyMessage: r.Message} {
		if v != "" {
			data[key] = v
		}
	}
	for key, t := range map[string]time.Time{keyApprovedAt: r.ApprovedAt, keyGrantedAt: r.GrantedAt, keyExpiresAt: r.ExpiresAt} {
		if !t.IsZero() {
			data[key] = t.UTC().Format(time.RFC3339)
		}
	}
	state := r.State
	if state == "" {
		state = StatePending
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "access-" + strings.ToLower(r.Incident) + "-",
			Namespace:    ns,
			Labels:       map[string]string{RequestLabel: "true", IncidentLabel: r.Incident, StateLabel: string(state)},
		},
		Data: data,
	}
}

// FromConfigMap parses a request. Times and durations that do not parse
// are errors naming the ConfigMap and the key.
func FromConfigMap(cm *corev1.ConfigMap) (*Request, error) {
	d := cm.Data
	r := &Request{
		Name: cm.Name, Incident: d[keyIncident], Reason: d[keyReason], Role: d[keyRole],
		Namespace: d[keyNamespace], Requester: d[keyRequester], Approver: d[keyApprover],
		State: State(cm.Labels[StateLabel]), Message: d[keyMessage],
	}
	if r.State == "" {
		r.State = StatePending
	}
	var err error
	if r.Duration, err = time.ParseDuration(d[keyDuration]); err != nil {
		return r, fmt.Errorf("ConfigMap %s/%s: data.%s %q: expected a duration such as 2h", cm.Namespace, cm.Name, keyDuration, d[keyDuration])
	}
	for key, t := range map[string]*time.Time{keyRequestedAt: &r.RequestedAt, keyApprovedAt: &r.ApprovedAt, keyGrantedAt: &r.GrantedAt, keyExpiresAt: &r.ExpiresAt} {
		if d[key] == "" {
			continue
		}
		if *t, err = time.Parse(time.RFC3339, d[key]); err != nil {
			return r, fmt.Errorf("ConfigMap %s/%s: data.%s %q: expected an RFC 3339 time", cm.Namespace, cm.Name, key, d[key])
		}
	}
	return r, nil
}

// BindingName is the name of the binding a request grants.
func BindingName(request string) string { return "bosun-" + request }

// Config is the controller's policy.
type Config struct {
	// AllowSelfApproval lets the requester approve their own request.
	// Never in production: the agent refuses the option there.
	AllowSelfApproval bool
	// Production marks the cluster as production.
	Production bool
}

// Validate refuses self-approval in production.
func (c Config) Validate() error {
	if c.Production && c.AllowSelfApproval {
		return errors.New("access: self-approval is not allowed in production (L47): expected a second approver")
	}
	return nil
}

// Action is what the controller does with a request.
type Action int

// Actions.
const (
	// Wait: nothing to do until Next.
	Wait Action = iota
	// Grant: create the binding, mark the request active until ExpiresAt.
	Grant
	// Expire: remove the binding, mark the request expired.
	Expire
	// Refuse: mark the request refused (no binding), with a message.
	Refuse
)

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Message explains a refusal or an expiry.
	Message string
	// ExpiresAt is when a grant ends.
	ExpiresAt time.Time
	// Next is when to look again (zero: not before something changes).
	Next time.Time
}

// Decide says what to do with r at now under cfg. It is pure: the same
// request, time and config give the same decision, so that a restarted
// controller continues where the last one stopped.
func Decide(r *Request, now time.Time, cfg Config) Decision {
	switch r.State {
	case StateExpired, StateRefused:
		return Decision{Action: Wait}
	case StateActive:
		if !now.Before(r.ExpiresAt) {
			return Decision{Action: Expire, Message: fmt.Sprintf("expired at %s", r.ExpiresAt.UTC().Format(time.RFC3339))}
		}
		return Decision{Action: Wait, Next: r.ExpiresAt}
	}
	// Pending.
	if err := r.Validate(); err != nil {
		return Decision{Action: Refuse, Message: "invalid request: " + err.Error()}
	}
	if r.Approver == "" {
		deadline := r.RequestedAt.Add(PendingTTL)
		if !now.Before(deadline) {
			return Decision{Action: Refuse, Message: fmt.Sprintf("not approved within %s", PendingTTL)}
		}
		return Decision{Action: Wait, Next: deadline}
	}
	if r.Approver == r.Requester && (cfg.Production || !cfg.AllowSelfApproval) {
		why := "this cluster does not allow self-approval"
		if cfg.Production {
			why = "production requires a second approver (L47)"
		}
		return Decision{Action: Refuse, Message: fmt.Sprintf("approved by the requester %s: %s", r.Requester, why)}
	}
	return Decision{Action: Grant, ExpiresAt: now.Add(r.Duration), Next: now.Add(r.Duration)}
}
