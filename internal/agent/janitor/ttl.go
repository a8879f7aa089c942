package janitor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bosun-platform/bosun/internal/schedule"
)

// Annotation keys, kube-janitor's names so clusters can switch (L52).
const (
	// AnnotationTTL is a lifetime counted from creation: 30s, 45m, 2h, 7d,
	// 2w, or "forever".
	AnnotationTTL = "janitor/ttl"
	// AnnotationExpires is an absolute expiry: RFC 3339, YYYY-MM-DDTHH:MM or
	// YYYY-MM-DD (UTC).
	AnnotationExpires = "janitor/expires"
	// AnnotationNotifiedAt records when the deletion notice was sent; the
	// object is deleted only once the notice is NotifyBefore old.
	AnnotationNotifiedAt = "janitor/notified-at"
)

// Forever is the TTL that never expires.
const Forever time.Duration = -1

var units = map[byte]time.Duration{
	's': time.Second, 'm': time.Minute, 'h': time.Hour,
	'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour,
}

// ParseTTL parses a TTL such as "30s", "45m", "2h", "7d", "2w" or
// "forever" (returned as Forever).
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "forever") {
		return Forever, nil
	}
	if len(s) < 2 {
		return 0, fmt.Errorf("ttl %q: expected a number and a unit (s, m, h, d, w) such as 7d, or forever", s)
	}
	unit, ok := units[s[len(s)-1]]
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if !ok || err != nil || n < 0 || n > int64(100*365*24*time.Hour/unit) {
		return 0, fmt.Errorf("ttl %q: expected a number and a unit (s, m, h, d, w) such as 7d, or forever", s)
	}
	return time.Duration(n) * unit, nil
}

// expiry returns when an object expires by its own annotations, whether
// they set one, and an error for a value that cannot be parsed. With both
// annotations the earlier time wins.
func expiry(annos map[string]string, created time.Time) (time.Time, bool, error) {
	var at time.Time
	set := false
	if v, ok := annos[AnnotationTTL]; ok {
		ttl, err := ParseTTL(v)
		if err != nil {
			return time.Time{}, false, err
		}
		if ttl != Forever {
			at, set = created.Add(ttl), true
		}
	}
	if v, ok := annos[AnnotationExpires]; ok {
		t, err := schedule.ParseInstant(v)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s: %w", AnnotationExpires, err)
		}
		if !set || t.Before(at) {
			at, set = t, true
		}
	}
	return at, set, nil
}
