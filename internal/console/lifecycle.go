package console

import (
	"context"
	"time"

	"github.com/bosun-platform/bosun/internal/lifecycle"
)

// LifecycleView is a cluster's lifecycle status as the fleet page shows
// it: what `bosun controller` recorded in the cluster's ConfigMap
// bosun-system/bosun-status (L40), and the last `bosun e2e` run.
type LifecycleView struct {
	Phase           string    `json:"phase,omitempty"`
	DesiredVersion  string    `json:"desiredVersion,omitempty"`
	AppliedVersion  string    `json:"appliedVersion,omitempty"`
	Channel         string    `json:"channel,omitempty"`
	ChannelRevision string    `json:"channelRevision,omitempty"`
	Blocked         string    `json:"blocked,omitempty"`
	Roll            string    `json:"roll,omitempty"`
	LastError       string    `json:"lastError,omitempty"`
	Since           time.Time `json:"since,omitzero"`
	// E2E is "passed" or "failed" with the revision, empty without a run.
	E2E string `json:"e2e,omitempty"`
	// Error says why the status could not be read.
	Error string `json:"error,omitempty"`
}

// UpToDate reports whether the applied version is the desired one.
func (v *LifecycleView) UpToDate() bool {
	return v != nil && v.DesiredVersion != "" && v.DesiredVersion == v.AppliedVersion
}

// ShortRevision is the channel revision cut to 12 characters.
func (v *LifecycleView) ShortRevision() string {
	if len(v.ChannelRevision) > 12 {
		return v.ChannelRevision[:12]
	}
	return v.ChannelRevision
}

// newLifecycleView turns the status ConfigMap into the page's view; nil
// when the cluster has none.
func newLifecycleView(live lifecycle.Live) *LifecycleView {
	if !live.Found {
		return nil
	}
	st := live.Status
	v := &LifecycleView{
		Phase: string(st.Phase), DesiredVersion: st.DesiredVersion, AppliedVersion: st.AppliedVersion,
		Channel: st.Channel, ChannelRevision: st.ChannelRevision, Blocked: st.BlockedReason,
		Roll: st.Roll.String(), LastError: st.LastError, Since: st.Since, Error: live.Invalid,
	}
	if live.Block != "" && v.Blocked == "" {
		v.Blocked = "bosun block: " + live.Block
	}
	if e := live.E2E; e != nil {
		v.E2E = "failed"
		if e.Passed {
			v.E2E = "passed"
		}
		if e.Revision != "" {
			rev := e.Revision
			if len(rev) > 12 {
				rev = rev[:12]
			}
			v.E2E += " at " + rev
		}
	}
	return v
}

// readLifecycle reads the cluster's lifecycle status (one GET, after each
// successful health probe). A failure is shown on the page, not treated
// as the cluster being down.
func (c *cluster) readLifecycle(ctx context.Context) {
	if c.statusClient == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	live, err := lifecycle.ReadStatus(rctx, c.statusClient)
	var v *LifecycleView
	if err != nil {
		v = &LifecycleView{Error: err.Error()}
	} else {
		v = newLifecycleView(live)
	}
	c.mu.Lock()
	c.lifecycle = v
	c.mu.Unlock()
}
