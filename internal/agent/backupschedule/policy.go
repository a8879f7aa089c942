package backupschedule

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the status ConfigMap's data.
const (
	keyLastSuccessID   = "lastSuccessID"
	keyLastSuccessTime = "lastSuccessTime"
	keyLastAttemptTime = "lastAttemptTime"
	keyLastError       = "lastError"
	keyNextDue         = "nextDue"
	keyFailures        = "consecutiveFailures"
)

// Status is what survives a restart (L29): when the last backup
// succeeded, when one was last tried and why it failed. It lives in a
// ConfigMap, never in the agent's memory, so a restarted agent neither
// backs up again early nor skips a backup that is due.
type Status struct {
	// LastSuccessID and LastSuccessTime are of the newest backup written.
	LastSuccessID   string
	LastSuccessTime time.Time
	// LastAttemptTime is when the last backup was tried (success or not).
	LastAttemptTime time.Time
	// LastError is why the last attempt failed ("" after a success).
	LastError string
	// Failures counts attempts failed in a row.
	Failures int
	// NextDue is when the next backup is due (for people; Due decides
	// from the times above).
	NextDue time.Time
}

// RetryAfter bounds the wait after a failed backup: a failure is retried
// sooner than the full period, at most this long after the attempt.
const RetryAfter = 10 * time.Minute

// Due reports whether a backup is due at now, and when the next one is
// due (now when it is due now). The first backup is due at once; after a
// success the next is due every later; after a failure, min(every,
// RetryAfter) after the failed attempt, so that one failure does not
// leave the cluster without a backup for a whole period.
func Due(s Status, now time.Time, every time.Duration) (bool, time.Time) {
	var next time.Time
	switch {
	case s.LastSuccessTime.IsZero() && s.LastAttemptTime.IsZero():
		return true, now
	case s.LastError != "" || s.LastSuccessTime.IsZero():
		next = s.LastAttemptTime.Add(min(every, RetryAfter))
	default:
		next = s.LastSuccessTime.Add(every)
	}
	if !now.Before(next) {
		return true, now
	}
	return false, next
}

// statusFrom reads a Status from the status ConfigMap (nil: none yet).
// A field that does not parse is an error naming the ConfigMap and the
// key, so that a hand-edited status stops the schedule loudly instead of
// backing up at the wrong time.
func statusFrom(cm *corev1.ConfigMap) (Status, error) {
	var s Status
	if cm == nil {
		return s, nil
	}
	d := cm.Data
	s.LastSuccessID, s.LastError = d[keyLastSuccessID], d[keyLastError]
	for key, dst := range map[string]*time.Time{keyLastSuccessTime: &s.LastSuccessTime, keyLastAttemptTime: &s.LastAttemptTime, keyNextDue: &s.NextDue} {
		if d[key] == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, d[key])
		if err != nil {
			return s, fmt.Errorf("ConfigMap %s/%s: data.%s %q: expected an RFC 3339 time", cm.Namespace, cm.Name, key, d[key])
		}
		*dst = t
	}
	if d[keyFailures] != "" {
		n, err := strconv.Atoi(d[keyFailures])
		if err != nil || n < 0 {
			return s, fmt.Errorf("ConfigMap %s/%s: data.%s %q: expected a count", cm.Namespace, cm.Name, keyFailures, d[keyFailures])
		}
		s.Failures = n
	}
	return s, nil
}

// data renders s as the status ConfigMap's data.
func (s Status) data() map[string]string {
	d := map[string]string{keyFailures: strconv.Itoa(s.Failures)}
	set := func(k string, t time.Time) {
		if !t.IsZero() {
			d[k] = t.UTC().Format(time.RFC3339)
		}
	}
	set(keyLastSuccessTime, s.LastSuccessTime)
	set(keyLastAttemptTime, s.LastAttemptTime)
	set(keyNextDue, s.NextDue)
	if s.LastSuccessID != "" {
		d[keyLastSuccessID] = s.LastSuccessID
	}
	if s.LastError != "" {
		d[keyLastError] = s.LastError
	}
	return d
}
