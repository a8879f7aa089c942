package lifecycle

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// The pure decisions of the controller, kept apart from its I/O (like
// internal/agent/downscaler/policy.go): what one pass does to a cluster
// given what it observed, and when a failing cluster is tried again.

// Observed is what a pass learned about one cluster before changing it.
type Observed struct {
	// LintErrors are the names of the rules with unsuppressed errors for
	// the cluster (L02: a change that fails lint goes nowhere).
	LintErrors []string
	// FileBlock is the cluster file's updateBlock, LiveBlock the reason
	// `bosun block` set on the live cluster.
	FileBlock, LiveBlock string
	// Desired is the cluster's render version.
	Desired string
	// Last is the status the controller wrote last.
	Last Status
	// Hold, when set, says why a production cluster waits before moving
	// to a new channel revision: non-production clusters of its channel
	// have not reached it yet (L43).
	Hold string
}

// Decision is what a pass does to a cluster.
type Decision struct {
	// Stop: make no change (lint errors or an update block); Phase and
	// Reason say why.
	Stop   bool
	Phase  Phase
	Reason string
	// ApplyManifests: the manifests of Desired were not applied and
	// found healthy yet.
	ApplyManifests bool
}

// Decide says what a pass does. Lint errors stop the cluster before an
// update block does (both are reported; lint is what must be fixed).
// Infrastructure and rolls are checked on every pass that is not stopped:
// their state is read from the cloud and the nodes, not from the status.
func Decide(o Observed) Decision {
	if len(o.LintErrors) > 0 {
		rules := append([]string(nil), o.LintErrors...)
		sort.Strings(rules)
		return Decision{Stop: true, Phase: PhaseLintFailed, Reason: "lint errors: " + strings.Join(dedupe(rules), ", ")}
	}
	var blocks []string
	if b := strings.TrimSpace(o.FileBlock); b != "" {
		blocks = append(blocks, "updateBlock in the cluster file: "+b)
	}
	if b := strings.TrimSpace(o.LiveBlock); b != "" {
		blocks = append(blocks, "blocked with bosun block: "+b)
	}
	if len(blocks) > 0 {
		return Decision{Stop: true, Phase: PhaseBlocked, Reason: strings.Join(blocks, "; ")}
	}
	if o.Hold != "" {
		return Decision{Stop: true, Phase: PhaseWaiting, Reason: o.Hold}
	}
	return Decision{ApplyManifests: o.Last.ManifestsVersion != o.Desired}
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// Next returns the status a pass records, from the last one: Since moves
// only when the phase or a version changes.
func Next(last, now Status, at time.Time) Status {
	now.Since = last.Since
	if last.Phase != now.Phase || last.AppliedVersion != now.AppliedVersion ||
		last.DesiredVersion != now.DesiredVersion || last.ManifestsVersion != now.ManifestsVersion || last.Since.IsZero() {
		now.Since = at
	}
	return now
}

// Backoff is the wait before a cluster whose last failures passes in a
// row failed is tried again: the interval doubled per further failure,
// at most max. A cluster that never failed waits one interval.
func Backoff(failures int, interval, limit time.Duration) time.Duration {
	d := interval
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, max(limit, interval))
}

// DrainDeadline is how long a roll drains a node through the Eviction API,
// respecting PDBs, before it deletes the remaining pods (L45): the config
// item ConfigDrainDeadline, else 3 days in production and 8 hours
// elsewhere.
func DrainDeadline(environment string, items map[string]string) (time.Duration, error) {
	if v, ok := items[ConfigDrainDeadline]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("config item %s %q: expected a positive duration such as 72h or 30m", ConfigDrainDeadline, v)
		}
		return d, nil
	}
	if environment == "production" {
		return 72 * time.Hour, nil
	}
	return 8 * time.Hour, nil
}

// Config items that tune rolls.
const (
	// ConfigDrainDeadline is the drain deadline (a Go duration).
	ConfigDrainDeadline = "node_drain_deadline"
	// ConfigMaxSurge is how many new nodes a pool's roll adds before
	// draining old ones (default: one per zone of the pool).
	ConfigMaxSurge = "node_roll_max_surge"
	// ConfigMaxNotReady is how many NotReady nodes a cluster may have
	// before its roll pauses (default: 10% of its nodes, at least 1).
	ConfigMaxNotReady = "node_roll_max_not_ready"
)
