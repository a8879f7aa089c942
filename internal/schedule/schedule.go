// Package schedule parses and evaluates Bosun's time-window expressions, the
// values of the downscaler's uptime/downtime annotations (L24) and of the
// peak pre-scaling window (L33).
//
// Grammar (whitespace around items is ignored, keywords are case-insensitive):
//
//	schedule  = item { "," item }             an instant matches if any item does
//	item      = "always" | "never" | recurring | absolute
//	recurring = days " " HH:MM "-" HH:MM " " zone
//	days      = day [ "-" day ]               Mon..Sun; ranges may wrap (Sun-Thu, Fri-Mon)
//	absolute  = RFC3339 "-" RFC3339           start inclusive, end exclusive
//
// A recurring window is evaluated on the wall clock of its IANA zone, so
// "07:30" means 07:30 local time before and after a DST change. The weekday
// names the day the window starts: "Mon-Fri 20:00-08:00" runs from each
// weekday evening to the following morning (an overnight window), so Friday's
// window ends Saturday 08:00. The end may be "24:00". A start time that a
// spring-forward change skips begins the window at the first instant after
// the gap.
//
// The zone database is embedded (time/tzdata), so schedules evaluate the same
// in a scratch container as on a workstation.
package schedule

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	// Embedded zone database: the agent runs from a scratch image.
	_ "time/tzdata"
)

// Schedule is a parsed expression. The zero value never matches.
type Schedule struct {
	text  string
	items []item
}

// item is one comma-separated part of a schedule.
type item interface {
	matches(t time.Time) bool
	// candidates appends the instants in [from, to] at which the item's
	// match may change; it may append extra instants, never fewer.
	candidates(from, to time.Time, out []time.Time) []time.Time
}

// String returns the expression the schedule was parsed from.
func (s Schedule) String() string { return s.text }

// Matches reports whether t falls in the schedule.
func (s Schedule) Matches(t time.Time) bool {
	for _, it := range s.items {
		if it.matches(t) {
			return true
		}
	}
	return false
}

// horizon bounds the search for a transition: a union of weekly windows
// that changes at all changes within a week (plus a day for overnight
// windows and zone changes); absolute ranges add their own bounds.
const horizon = 9 * 24 * time.Hour

// NextTransition returns the first instant after t at which Matches changes
// value, and false if it never changes again (for example "always", or a
// schedule whose absolute ranges have all passed).
func (s Schedule) NextTransition(t time.Time) (time.Time, bool) {
	to := t.Add(horizon)
	var cands []time.Time
	for _, it := range s.items {
		cands = it.candidates(t, to, cands)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Before(cands[j]) })
	now := s.Matches(t)
	for _, c := range cands {
		if !c.After(t) {
			continue
		}
		if s.Matches(c) != now {
			return c, true
		}
	}
	return time.Time{}, false
}

// constant is "always" or "never".
type constant bool

func (c constant) matches(time.Time) bool                                 { return bool(c) }
func (c constant) candidates(_, _ time.Time, out []time.Time) []time.Time { return out }

// absolute is a fixed range [start, end).
type absolute struct{ start, end time.Time }

func (a absolute) matches(t time.Time) bool {
	return !t.Before(a.start) && t.Before(a.end)
}

func (a absolute) candidates(from, _ time.Time, out []time.Time) []time.Time {
	// Absolute bounds are returned whatever the horizon: they may be months
	// away and are the only transitions left.
	for _, b := range []time.Time{a.start, a.end} {
		if b.After(from) {
			out = append(out, b)
		}
	}
	return out
}

// recurring is a weekly window on a zone's wall clock.
type recurring struct {
	days       [7]bool // indexed by time.Weekday: the days a window starts
	start, end int     // minutes after local midnight; end may be 1440
	loc        *time.Location
}

func (r recurring) overnight() bool { return r.end <= r.start }

func (r recurring) matches(t time.Time) bool {
	lt := t.In(r.loc)
	minute := lt.Hour()*60 + lt.Minute()
	wd := lt.Weekday()
	if !r.overnight() {
		return r.days[wd] && minute >= r.start && minute < r.end
	}
	// Evening part belongs to today's window, morning part to yesterday's.
	if r.days[wd] && minute >= r.start {
		return true
	}
	return r.days[(wd+6)%7] && minute < r.end
}

func (r recurring) candidates(from, to time.Time, out []time.Time) []time.Time {
	day := from.In(r.loc).AddDate(0, 0, -1)
	for d := 0; d <= int(to.Sub(from)/(24*time.Hour))+2; d++ {
		y, m, dd := day.AddDate(0, 0, d).Date()
		for _, min := range []int{r.start, r.end} {
			out = appendWall(out, y, m, dd, min, r.loc)
		}
	}
	// Zone changes move the wall clock without real time passing.
	z := from
	for {
		_, end := z.In(r.loc).ZoneBounds()
		if end.IsZero() || end.After(to) {
			break
		}
		out = append(out, end)
		z = end
	}
	return out
}

// appendWall appends every instant whose wall clock in loc reads the given
// day and minute: none in a spring-forward gap (the zone bound covers it),
// two in a fall-back overlap.
func appendWall(out []time.Time, y int, m time.Month, d, minute int, loc *time.Location) []time.Time {
	ref := time.Date(y, m, d, 12, 0, 0, 0, loc)
	wall := time.Date(y, m, d, 0, minute, 0, 0, time.UTC)
	seen := map[int]bool{}
	for _, probe := range []time.Time{ref.Add(-36 * time.Hour), ref, ref.Add(36 * time.Hour)} {
		_, off := probe.Zone()
		if seen[off] {
			continue
		}
		seen[off] = true
		c := wall.Add(-time.Duration(off) * time.Second)
		lc := c.In(loc)
		if lc.Hour()*60+lc.Minute() == minute%1440 {
			out = append(out, c)
		}
	}
	return out
}

// ParseError says where an expression stopped making sense.
type ParseError struct {
	// Input is the whole expression.
	Input string
	// Pos is the byte offset of the offending text, 0-based.
	Pos int
	// Expected describes what the parser wanted at Pos.
	Expected string
	// Found is the text it found instead ("" at the end of input).
	Found string
}

// Error implements error; positions are printed 1-based, as a column.
func (e *ParseError) Error() string {
	found := "end of input"
	if e.Found != "" {
		found = fmt.Sprintf("%q", e.Found)
	}
	return fmt.Sprintf("schedule %q: at position %d: expected %s, found %s", e.Input, e.Pos+1, e.Expected, found)
}

// MustParse is Parse for expressions known to be valid, such as defaults
// in code; it panics on error.
func MustParse(expr string) Schedule {
	s, err := Parse(expr)
	if err != nil {
		panic(err)
	}
	return s
}

// Parse parses an expression; errors are *ParseError.
func Parse(expr string) (Schedule, error) {
	s := Schedule{text: expr}
	off := 0
	for _, part := range strings.Split(expr, ",") {
		lead := len(part) - len(strings.TrimLeft(part, " \t"))
		text := strings.TrimSpace(part)
		pos := off + lead
		off += len(part) + 1
		if text == "" {
			return Schedule{}, &ParseError{Input: expr, Pos: pos, Expected: `a schedule item ("always", "never", "Mon-Fri 08:00-18:00 Europe/Berlin" or "START-END" in RFC 3339)`}
		}
		it, err := parseItem(expr, text, pos)
		if err != nil {
			return Schedule{}, err
		}
		s.items = append(s.items, it)
	}
	return s, nil
}

func parseItem(expr, text string, pos int) (item, error) {
	switch strings.ToLower(text) {
	case "always":
		return constant(true), nil
	case "never":
		return constant(false), nil
	}
	if text[0] >= '0' && text[0] <= '9' {
		return parseAbsolute(expr, text, pos)
	}
	return parseRecurring(expr, text, pos)
}

func parseAbsolute(expr, text string, pos int) (item, error) {
	// The separator is a '-' such that both sides are RFC 3339; offsets and
	// dates contain '-' too, so try each one.
	for i := 19; i < len(text); i++ {
		if text[i] != '-' {
			continue
		}
		start, err := time.Parse(time.RFC3339, text[:i])
		if err != nil {
			continue
		}
		end, err := time.Parse(time.RFC3339, text[i+1:])
		if err != nil {
			return nil, &ParseError{Input: expr, Pos: pos + i + 1, Expected: "an RFC 3339 end time such as 2026-12-27T00:00:00+01:00", Found: text[i+1:]}
		}
		if !end.After(start) {
			return nil, &ParseError{Input: expr, Pos: pos + i + 1, Expected: "an end time after the start time", Found: text[i+1:]}
		}
		return absolute{start: start, end: end}, nil
	}
	return nil, &ParseError{Input: expr, Pos: pos, Expected: "START-END with RFC 3339 times such as 2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00", Found: text}
}

var weekdays = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
}

// fields splits on spaces, keeping each field's offset.
func fields(text string) (words []string, offs []int) {
	i := 0
	for i < len(text) {
		for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
			i++
		}
		j := i
		for j < len(text) && text[j] != ' ' && text[j] != '\t' {
			j++
		}
		if j > i {
			words = append(words, text[i:j])
			offs = append(offs, i)
		}
		i = j
	}
	return words, offs
}

func parseRecurring(expr, text string, pos int) (item, error) {
	words, offs := fields(text)
	r := recurring{}
	if err := parseDays(expr, words[0], pos+offs[0], &r.days); err != nil {
		return nil, err
	}
	if len(words) < 2 {
		return nil, &ParseError{Input: expr, Pos: pos + len(text), Expected: "a time range HH:MM-HH:MM"}
	}
	start, end, err := parseTimes(expr, words[1], pos+offs[1])
	if err != nil {
		return nil, err
	}
	r.start, r.end = start, end
	if len(words) < 3 {
		return nil, &ParseError{Input: expr, Pos: pos + len(text), Expected: "an IANA time zone such as Europe/Berlin or UTC"}
	}
	if len(words) > 3 {
		return nil, &ParseError{Input: expr, Pos: pos + offs[3], Expected: `"," or end of input`, Found: words[3]}
	}
	zone := words[2]
	if zone == "Local" || strings.ContainsAny(zone, ".\\") || strings.HasPrefix(zone, "/") {
		return nil, &ParseError{Input: expr, Pos: pos + offs[2], Expected: "an IANA time zone such as Europe/Berlin or UTC", Found: zone}
	}
	loc, lerr := time.LoadLocation(zone)
	if lerr != nil {
		return nil, &ParseError{Input: expr, Pos: pos + offs[2], Expected: "an IANA time zone such as Europe/Berlin or UTC", Found: zone}
	}
	r.loc = loc
	return r, nil
}

func parseDays(expr, word string, pos int, days *[7]bool) error {
	const want = "a weekday or weekday range such as Mon-Fri"
	first, rest, isRange := strings.Cut(word, "-")
	from, ok := weekdays[strings.ToLower(first)]
	if !ok {
		return &ParseError{Input: expr, Pos: pos, Expected: want, Found: first}
	}
	to := from
	if isRange {
		if to, ok = weekdays[strings.ToLower(rest)]; !ok {
			return &ParseError{Input: expr, Pos: pos + len(first) + 1, Expected: "a weekday (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", Found: rest}
		}
	}
	for d := from; ; d = (d + 1) % 7 {
		days[d] = true
		if d == to {
			break
		}
	}
	return nil
}

func parseTimes(expr, word string, pos int) (start, end int, err error) {
	a, b, ok := strings.Cut(word, "-")
	if !ok {
		return 0, 0, &ParseError{Input: expr, Pos: pos, Expected: "a time range HH:MM-HH:MM", Found: word}
	}
	if start, err = parseClock(expr, a, pos, false); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock(expr, b, pos+len(a)+1, true); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, &ParseError{Input: expr, Pos: pos + len(a) + 1, Expected: "an end time different from the start time", Found: b}
	}
	return start, end, nil
}

func parseClock(expr, s string, pos int, allow24 bool) (int, error) {
	want := "a time HH:MM (00:00-23:59)"
	if allow24 {
		want = "a time HH:MM (00:00-24:00)"
	}
	bad := &ParseError{Input: expr, Pos: pos, Expected: want, Found: s}
	if len(s) != 5 || s[2] != ':' {
		return 0, bad
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, bad
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	switch {
	case m > 59, h > 24, h == 24 && (m != 0 || !allow24):
		return 0, bad
	}
	return h*60 + m, nil
}

// Cache remembers parsed expressions by their text, errors included, so
// that a value shared by thousands of objects is parsed once and not on
// every pass (zones are loaded from the embedded database on every Parse).
// It is safe for concurrent use. The zero value is not usable; call
// NewCache.
type Cache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cached
}

type cached struct {
	s   Schedule
	err error
}

// NewCache returns a cache that holds up to size expressions (at least 1);
// when full, it forgets them all and starts again, so that values edited
// many times cannot grow it without bound.
func NewCache(size int) *Cache {
	return &Cache{max: max(size, 1), entries: map[string]cached{}}
}

// Parse is Parse, from the cache when expr was parsed before.
func (c *Cache) Parse(expr string) (Schedule, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[expr]; ok {
		return e.s, e.err
	}
	s, err := Parse(expr)
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[expr] = cached{s: s, err: err}
	return s, err
}

// instantLayouts are the forms ParseInstant accepts, most precise first.
var instantLayouts = []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// ParseInstant parses a point in time as used by exclude-until and expires
// annotations: RFC 3339, or "YYYY-MM-DDTHH:MM" or "YYYY-MM-DD" read as UTC.
func ParseInstant(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range instantLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: expected RFC 3339 (2026-12-24T18:00:00+01:00), YYYY-MM-DDTHH:MM or YYYY-MM-DD", s)
}
