package lifecycle

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// PromotionInput is the observed state of one cluster of the lower
// channel, for a promotion.
type PromotionInput struct {
	// Cluster is the fleet cluster ID.
	Cluster string
	// Live is its status ConfigMap; Err is set when it could not be read.
	Live Live
	Err  error
}

// ErrPromotionRefused wraps every refusal of CheckPromotion.
var ErrPromotionRefused = errors.New("promotion refused")

// CheckPromotion says whether revision rev of channel from may be promoted
// (L43): every cluster of that channel must run rev fully (status
// channelRevision rev, applied version = desired version) and have passed
// `bosun e2e` at rev and at the version it runs. The error names each
// cluster that stops it and why; a channel with no cluster has nothing
// that tested rev and is refused too.
func CheckPromotion(from, rev string, clusters []PromotionInput) error {
	if len(clusters) == 0 {
		return fmt.Errorf("%w: no cluster follows channel %s, so nothing ran the e2e suite at %s", ErrPromotionRefused, from, rev)
	}
	var why []string
	for _, c := range clusters {
		st, e := c.Live.Status, c.Live.E2E
		var reason string
		switch {
		case c.Err != nil:
			reason = "status not readable: " + c.Err.Error()
		case !c.Live.Found:
			reason = "no status: the controller has not reached it"
		case st.ChannelRevision != rev:
			reason = fmt.Sprintf("runs revision %q, not %s", st.ChannelRevision, rev)
		case st.AppliedVersion == "" || st.AppliedVersion != st.DesiredVersion:
			reason = fmt.Sprintf("not fully applied (phase %s, applied %q, desired %q)", st.Phase, st.AppliedVersion, st.DesiredVersion)
		case c.Live.E2EInvalid != "":
			reason = c.Live.E2EInvalid
		case e == nil:
			reason = "no e2e result: run bosun e2e --cluster " + c.Cluster
		case e.Revision != rev || e.Version != st.AppliedVersion:
			reason = fmt.Sprintf("the last e2e ran at revision %q, version %q (%s), not at %s, version %s", e.Revision, e.Version, e.Started.Format("2006-01-02T15:04Z07:00"), rev, st.AppliedVersion)
		case !e.Passed:
			var failed []string
			for _, ch := range e.Checks {
				if ch.Result == CheckFailed {
					failed = append(failed, ch.Name)
				}
			}
			reason = "the e2e suite failed at this revision: " + strings.Join(failed, ", ")
		}
		if reason != "" {
			why = append(why, c.Cluster+": "+reason)
		}
	}
	if len(why) > 0 {
		sort.Strings(why)
		return fmt.Errorf("%w: revision %s of channel %s has not passed e2e on every cluster of the channel:\n  %s", ErrPromotionRefused, rev, from, strings.Join(why, "\n  "))
	}
	return nil
}
