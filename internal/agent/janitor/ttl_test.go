package janitor

import (
	"testing"
	"time"
)

// L52: the TTL forms kube-janitor users write.
func TestParseTTL(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"45m", 45 * time.Minute, false},
		{"2h", 2 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"forever", Forever, false},
		{"Forever", Forever, false},
		{"", 0, true},
		{"7", 0, true},
		{"d", 0, true},
		{"7y", 0, true},
		{"-1h", 0, true},
		{"1.5h", 0, true},
		{"99999999999w", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseTTL(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestExpiry(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		annos   map[string]string
		want    string
		set     bool
		wantErr bool
	}{
		{"none", nil, "", false, false},
		{"ttl from creation", map[string]string{AnnotationTTL: "2d"}, "2026-03-03T12:00:00Z", true, false},
		{"forever", map[string]string{AnnotationTTL: "forever"}, "", false, false},
		{"expires date only", map[string]string{AnnotationExpires: "2026-03-10"}, "2026-03-10T00:00:00Z", true, false},
		{"expires RFC 3339", map[string]string{AnnotationExpires: "2026-03-10T10:00:00+02:00"}, "2026-03-10T08:00:00Z", true, false},
		{"earlier of both", map[string]string{AnnotationTTL: "30d", AnnotationExpires: "2026-03-10"}, "2026-03-10T00:00:00Z", true, false},
		{"bad ttl", map[string]string{AnnotationTTL: "a week"}, "", false, true},
		{"bad expires", map[string]string{AnnotationExpires: "next friday"}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, set, err := expiry(tt.annos, created)
			if (err != nil) != tt.wantErr || set != tt.set {
				t.Fatalf("expiry = %v, %v, %v; want set %v error %v", got, set, err, tt.set, tt.wantErr)
			}
			if set {
				want, _ := time.Parse(time.RFC3339, tt.want)
				if !got.Equal(want) {
					t.Errorf("expiry = %s, want %s", got, want)
				}
			}
		})
	}
}
