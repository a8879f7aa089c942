package console

import (
	"context"
	"time"

	"github.com/bosun-platform/bosun/internal/agent/access"
)

// AccessNamespace is where `bosun access` records requests and the agent's
// access controller reads them (its --access-namespace default).
const AccessNamespace = "bosun-system"

// AccessView is one emergency access request as the fleet page shows it
// (L47, L56): who has what, why and until when.
type AccessView struct {
	Name      string    `json:"name"`
	Requester string    `json:"requester"`
	Approver  string    `json:"approver,omitempty"`
	Role      string    `json:"role"`
	Namespace string    `json:"namespace,omitempty"`
	Incident  string    `json:"incident"`
	Reason    string    `json:"reason"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Message   string    `json:"message,omitempty"`
}

// Scope is the namespace of the grant, or "cluster-wide".
func (v AccessView) Scope() string {
	if v.Namespace == "" {
		return "cluster-wide"
	}
	return v.Namespace
}

// readAccess reads the cluster's emergency access requests (one LIST of
// labelled ConfigMaps, after each successful health probe). Only the
// requests that are pending or active are kept: the fleet page shows who
// has, or is about to have, write access; `bosun access list` shows the
// history. A failure is shown on the page.
func (c *cluster) readAccess(ctx context.Context) {
	if c.statusClient == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reqs, err := access.List(rctx, c.statusClient, AccessNamespace)
	var views []AccessView
	for _, r := range reqs {
		if r.State != access.StatePending && r.State != access.StateActive {
			continue
		}
		views = append(views, AccessView{
			Name: r.Name, Requester: r.Requester, Approver: r.Approver, Role: r.Role, Namespace: r.Namespace,
			Incident: r.Incident, Reason: r.Reason, State: string(r.State), ExpiresAt: r.ExpiresAt, Message: r.Message,
		})
	}
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	c.mu.Lock()
	c.access, c.accessErr = views, errText
	c.mu.Unlock()
}
