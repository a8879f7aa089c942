package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

// L24: the windows the downscaler relies on.
func TestMatches(t *testing.T) {
	tests := []struct {
		name string
		expr string
		at   string
		want bool
	}{
		{"always", "always", "2026-01-01T00:00:00Z", true},
		{"never", "never", "2026-01-01T00:00:00Z", false},
		{"keywords are case-insensitive", "Always", "2026-01-01T00:00:00Z", true},
		{"office hours: start is inclusive", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-03-30T05:30:00Z", true},
		{"office hours: a minute early", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-03-30T05:29:59Z", false},
		{"office hours: end is exclusive", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-03-30T18:30:00Z", false},
		{"office hours in winter time", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-03-27T06:30:00Z", true},
		{"office hours in winter time, early", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-03-27T06:29:00Z", false},
		{"office hours on Saturday", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-03-28T10:00:00Z", false},
		{"single day", "Sat 10:00-12:00 UTC", "2026-03-28T11:00:00Z", true},
		{"single day, other day", "Sat 10:00-12:00 UTC", "2026-03-29T11:00:00Z", false},
		{"whole day with 24:00", "Sat-Sun 00:00-24:00 UTC", "2026-03-29T23:59:59Z", true},
		{"whole day with 24:00, Monday", "Sat-Sun 00:00-24:00 UTC", "2026-03-30T00:00:00Z", false},
		{"wrapping weekdays: Sunday", "Sun-Thu 09:00-17:00 UTC", "2026-03-29T10:00:00Z", true},
		{"wrapping weekdays: Thursday", "Sun-Thu 09:00-17:00 UTC", "2026-04-02T10:00:00Z", true},
		{"wrapping weekdays: Friday", "Sun-Thu 09:00-17:00 UTC", "2026-04-03T10:00:00Z", false},
		{"wrapping weekdays: Saturday", "Sun-Thu 09:00-17:00 UTC", "2026-04-04T10:00:00Z", false},
		{"Fri-Mon: Monday", "Fri-Mon 09:00-17:00 UTC", "2026-03-30T10:00:00Z", true},
		{"Fri-Mon: Tuesday", "Fri-Mon 09:00-17:00 UTC", "2026-03-31T10:00:00Z", false},
		{"overnight: Friday evening", "Mon-Fri 20:00-08:00 UTC", "2026-04-03T22:00:00Z", true},
		{"overnight: Saturday morning ends Friday's window", "Mon-Fri 20:00-08:00 UTC", "2026-04-04T07:59:00Z", true},
		{"overnight: Saturday 08:00", "Mon-Fri 20:00-08:00 UTC", "2026-04-04T08:00:00Z", false},
		{"overnight: Saturday evening", "Mon-Fri 20:00-08:00 UTC", "2026-04-04T21:00:00Z", false},
		{"overnight: Monday morning (Sunday starts no window)", "Mon-Fri 20:00-08:00 UTC", "2026-03-30T07:00:00Z", false},
		{"overnight: Tuesday early", "Mon-Fri 20:00-08:00 UTC", "2026-03-31T03:00:00Z", true},
		{"overnight in Berlin", "Mon-Fri 20:00-08:00 Europe/Berlin", "2026-03-30T18:00:00Z", true},
		{"overnight in Berlin, before", "Mon-Fri 20:00-08:00 Europe/Berlin", "2026-03-30T17:59:00Z", false},
		{"absolute: inside", "2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00", "2026-12-25T12:00:00Z", true},
		{"absolute: start inclusive", "2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00", "2026-12-23T23:00:00Z", true},
		{"absolute: end exclusive", "2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00", "2026-12-26T23:00:00Z", false},
		{"absolute with Z and fractions", "2026-12-24T00:00:00.5Z-2026-12-27T00:00:00Z", "2026-12-24T00:00:00.4Z", false},
		{"absolute with negative offsets", "2026-12-24T00:00:00-05:00-2026-12-27T00:00:00-05:00", "2026-12-24T04:59:00Z", false},
		{"list: first item", "Mon-Fri 08:00-18:00 UTC, Sat 10:00-12:00 UTC", "2026-03-30T09:00:00Z", true},
		{"list: second item", "Mon-Fri 08:00-18:00 UTC, Sat 10:00-12:00 UTC", "2026-03-28T11:00:00Z", true},
		{"list: neither", "Mon-Fri 08:00-18:00 UTC, Sat 10:00-12:00 UTC", "2026-03-29T11:00:00Z", false},
		{"list with absolute", "never,2026-12-24T00:00:00Z-2026-12-25T00:00:00Z", "2026-12-24T10:00:00Z", true},
		// Europe/Berlin springs forward on 2026-03-29 at 02:00 CET -> 03:00 CEST.
		{"DST Berlin: start in the gap begins at the jump", "Sun 02:30-04:00 Europe/Berlin", "2026-03-29T01:00:00Z", true},
		{"DST Berlin: before the jump", "Sun 02:30-04:00 Europe/Berlin", "2026-03-29T00:59:59Z", false},
		// ... and falls back on 2026-10-25 at 03:00 CEST -> 02:00 CET.
		{"DST Berlin fall-back: first 02:40", "Sun 02:30-02:50 Europe/Berlin", "2026-10-25T00:40:00Z", true},
		{"DST Berlin fall-back: between", "Sun 02:30-02:50 Europe/Berlin", "2026-10-25T01:00:00Z", false},
		{"DST Berlin fall-back: second 02:40", "Sun 02:30-02:50 Europe/Berlin", "2026-10-25T01:40:00Z", true},
		// America/New_York springs forward on 2026-03-08 and falls back on 2026-11-01.
		{"DST New York: 09:00 EST", "Mon-Fri 09:00-17:00 America/New_York", "2026-03-06T14:00:00Z", true},
		{"DST New York: 08:59 EST", "Mon-Fri 09:00-17:00 America/New_York", "2026-03-06T13:59:00Z", false},
		{"DST New York: 09:00 EDT", "Mon-Fri 09:00-17:00 America/New_York", "2026-03-09T13:00:00Z", true},
		{"DST New York: 17:00 EDT", "Mon-Fri 09:00-17:00 America/New_York", "2026-03-09T21:00:00Z", false},
		{"DST New York fall-back: first 01:30", "Sun 01:15-01:45 America/New_York", "2026-11-01T05:30:00Z", true},
		{"DST New York fall-back: second 01:30", "Sun 01:15-01:45 America/New_York", "2026-11-01T06:30:00Z", true},
		{"DST New York fall-back: 01:00 EST", "Sun 01:15-01:45 America/New_York", "2026-11-01T06:00:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			if got := s.Matches(mustTime(t, tt.at)); got != tt.want {
				t.Errorf("Parse(%q).Matches(%s) = %v, want %v", tt.expr, tt.at, got, tt.want)
			}
		})
	}
}

func TestNextTransition(t *testing.T) {
	tests := []struct {
		name string
		expr string
		from string
		want []string // the next transitions, in order
		end  bool     // no transition after want
	}{
		{"always never changes", "always", "2026-03-30T00:00:00Z", nil, true},
		{"whole week never changes", "Mon-Sun 00:00-24:00 UTC", "2026-03-30T00:00:00Z", nil, true},
		{"Friday night to Monday", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-04-03T19:00:00Z",
			[]string{"2026-04-06T05:30:00Z", "2026-04-06T18:30:00Z"}, false},
		{"across the Berlin spring-forward weekend", "Mon-Fri 07:30-20:30 Europe/Berlin", "2026-03-27T12:00:00Z",
			[]string{"2026-03-27T19:30:00Z", "2026-03-30T05:30:00Z"}, false},
		{"start in the spring-forward gap", "Sun 02:30-04:00 Europe/Berlin", "2026-03-29T00:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}, false},
		{"window inside the New York fall-back hour occurs twice", "Sun 01:15-01:45 America/New_York", "2026-11-01T05:00:00Z",
			[]string{"2026-11-01T05:15:00Z", "2026-11-01T05:45:00Z", "2026-11-01T06:15:00Z", "2026-11-01T06:45:00Z"}, false},
		{"overnight", "Mon-Fri 20:00-08:00 UTC", "2026-04-03T12:00:00Z",
			[]string{"2026-04-03T20:00:00Z", "2026-04-04T08:00:00Z", "2026-04-06T20:00:00Z"}, false},
		{"list merges adjacent windows", "Mon 08:00-12:00 UTC, Mon 12:00-18:00 UTC", "2026-03-30T00:00:00Z",
			[]string{"2026-03-30T08:00:00Z", "2026-03-30T18:00:00Z"}, false},
		{"absolute range months away", "2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00", "2026-06-01T00:00:00Z",
			[]string{"2026-12-23T23:00:00Z", "2026-12-26T23:00:00Z"}, true},
		{"absolute range in the past", "2020-12-24T00:00:00Z-2020-12-27T00:00:00Z", "2026-06-01T00:00:00Z", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			at := mustTime(t, tt.from)
			for i := 0; i <= len(tt.want); i++ {
				next, ok := s.NextTransition(at)
				if i == len(tt.want) {
					if ok && tt.end {
						t.Errorf("transition %d: got %s, want none", i, next.UTC().Format(time.RFC3339))
					}
					break
				}
				if !ok {
					t.Fatalf("transition %d: got none, want %s", i, tt.want[i])
				}
				if want := mustTime(t, tt.want[i]); !next.Equal(want) {
					t.Fatalf("transition %d: got %s, want %s", i, next.UTC().Format(time.RFC3339), tt.want[i])
				}
				if s.Matches(next) == s.Matches(at) {
					t.Fatalf("transition %d at %s does not change Matches", i, next)
				}
				at = next
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		expr     string
		pos      int // 0-based
		expected string
	}{
		{"empty", "", 0, "a schedule item"},
		{"empty item in a list", "always, ", 8, "a schedule item"},
		{"unknown day", "Mon-Fry 08:00-18:00 UTC", 4, "a weekday"},
		{"unknown first day", "Moonday 08:00-18:00 UTC", 0, "a weekday"},
		{"missing times", "Mon-Fri", 7, "a time range"},
		{"time without range", "Mon-Fri 08:00 UTC", 8, "a time range"},
		{"bad hour", "Mon-Fri 25:00-18:00 UTC", 8, "a time HH:MM"},
		{"24:00 as start", "Mon-Fri 24:00-18:00 UTC", 8, "a time HH:MM"},
		{"bad minute", "Mon-Fri 08:00-18:60 UTC", 14, "a time HH:MM"},
		{"one-digit hour", "Mon-Fri 8:00-18:00 UTC", 8, "a time HH:MM"},
		{"empty window", "Mon-Fri 08:00-08:00 UTC", 14, "an end time different"},
		{"missing zone", "Mon-Fri 08:00-18:00", 19, "an IANA time zone"},
		{"unknown zone", "Mon-Fri 08:00-18:00 Mars/Olympus", 20, "an IANA time zone"},
		{"Local zone is machine-dependent", "Mon-Fri 08:00-18:00 Local", 20, "an IANA time zone"},
		{"trailing words", "Mon-Fri 08:00-18:00 UTC extra", 24, `"," or end of input`},
		{"error in second item", "always, Mon-Fri 08:00-18:00 Nowhere", 28, "an IANA time zone"},
		{"absolute without end", "2026-12-24T00:00:00+01:00", 0, "START-END"},
		{"absolute with bad end", "2026-12-24T00:00:00+01:00-2026-13-27T00:00:00+01:00", 26, "an RFC 3339 end time"},
		{"absolute ending before start", "2026-12-24T00:00:00Z-2026-12-23T00:00:00Z", 21, "an end time after"},
		{"date only", "2026-12-24-2026-12-27", 0, "START-END"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.expr)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %v, want a *ParseError", tt.expr, err)
			}
			if pe.Pos != tt.pos || !strings.HasPrefix(pe.Expected, tt.expected) {
				t.Errorf("Parse(%q): pos %d expected %q; want pos %d expected %q...", tt.expr, pe.Pos, pe.Expected, tt.pos, tt.expected)
			}
		})
	}
}

// FuzzParse checks that no input panics, that invalid input is a
// *ParseError pointing inside the input, and that valid schedules evaluate.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"always", "never", "Mon-Fri 07:30-20:30 Europe/Berlin", "Sun-Thu 20:00-08:00 America/New_York",
		"2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00", "Sat 00:00-24:00 UTC, never", ",", "Mon-",
	} {
		f.Add(s)
	}
	at := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) returned %T, want *ParseError", expr, err)
			}
			if pe.Pos < 0 || pe.Pos > len(expr) {
				t.Fatalf("Parse(%q): position %d outside the input", expr, pe.Pos)
			}
			return
		}
		was := s.Matches(at)
		if next, ok := s.NextTransition(at); ok {
			if !next.After(at) || s.Matches(next) == was {
				t.Fatalf("Parse(%q): transition %s does not change Matches from %s", expr, next, at)
			}
		}
	})
}

func TestParseInstant(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"2026-12-24T18:00:00+01:00", "2026-12-24T17:00:00Z", false},
		{"2026-12-24T18:00", "2026-12-24T18:00:00Z", false},
		{"2026-12-24", "2026-12-24T00:00:00Z", false},
		{" 2026-12-24 ", "2026-12-24T00:00:00Z", false},
		{"24.12.2026", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := ParseInstant(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseInstant(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && !got.Equal(mustTime(t, tt.want)) {
			t.Errorf("ParseInstant(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// The cache answers as Parse does, errors included, and parses a value
// once however often it is asked (issue 19: not once per workload).
func TestCache(t *testing.T) {
	c := NewCache(2)
	now := time.Date(2026, 3, 30, 10, 0, 0, 0, time.UTC)
	for _, expr := range []string{"Mon-Fri 08:00-18:00 Europe/Berlin", "always", "Mon-Fri 08:00-18:00 Europe/Berlin", "Mon-Fri 25:00-18:00 UTC", "Mon-Fri 25:00-18:00 UTC"} {
		want, wantErr := Parse(expr)
		got, err := c.Parse(expr)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Errorf("%q: error %v, want %v", expr, err, wantErr)
		}
		if got.String() != want.String() || got.Matches(now) != want.Matches(now) {
			t.Errorf("%q: got %q (matches %v), want %q (matches %v)", expr, got, got.Matches(now), want, want.Matches(now))
		}
	}
	if len(c.entries) > 2 {
		t.Errorf("cache holds %d expressions, want at most 2", len(c.entries))
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = c.Parse("Mon-Fri 25:00-18:00 UTC") }); allocs != 0 {
		t.Errorf("a cached expression allocated %.0f times, want 0", allocs)
	}
}
