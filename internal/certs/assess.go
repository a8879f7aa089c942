package certs

import (
	"fmt"
	"time"
)

// Day is 24 hours.
const Day = 24 * time.Hour

// Thresholds are the remaining lifetimes at which certwatch emits an Event
// and the CLI raises its severity (L27): 30, 14, 7 and 1 days ahead.
var Thresholds = []time.Duration{30 * Day, 14 * Day, 7 * Day, 1 * Day}

// Severity grades a certificate.
type Severity string

// Severities, from good to bad.
const (
	OK          Severity = "ok"
	Warning     Severity = "warning"  // 30 days or less left
	Critical    Severity = "critical" // 7 days or less left
	Expired     Severity = "expired"
	NotYetValid Severity = "not-yet-valid"
)

// Assessment is what a certificate means now.
type Assessment struct {
	Cert
	// Remaining is NotAfter - now (negative once expired).
	Remaining time.Duration `json:"remainingSeconds"`
	Severity  Severity      `json:"severity"`
	// Threshold is the smallest of Thresholds that Remaining has reached
	// (0 when none has): certwatch emits one Event per threshold.
	Threshold time.Duration `json:"threshold,omitempty"`
	// Problems are findings besides expiry, e.g. a generated certificate
	// whose lifetime is not the one asked for.
	Problems []string `json:"problems,omitempty"`
}

// lifetimeTolerance is how far a generated certificate's lifetime may be
// from the one asked for: generators backdate NotBefore (an hour here and
// in kubeadm) and round, but kube-aws's one year instead of two (the
// Urb-it outage) is far outside it.
func lifetimeTolerance(expected time.Duration) time.Duration {
	return max(2*time.Hour, expected/100)
}

// Assess grades c at now. Pure: no I/O, the clock is an argument.
func Assess(c Cert, now time.Time) Assessment {
	a := Assessment{Cert: c, Remaining: c.NotAfter.Sub(now), Severity: OK}
	switch {
	case !now.Before(c.NotAfter):
		a.Severity = Expired
	case now.Before(c.NotBefore):
		a.Severity = NotYetValid
	case a.Remaining <= 7*Day:
		a.Severity = Critical
	case a.Remaining <= 30*Day:
		a.Severity = Warning
	}
	for _, t := range Thresholds {
		if a.Remaining <= t {
			a.Threshold = t
		}
	}
	if c.ExpectedLifetime > 0 {
		diff := c.Lifetime() - c.ExpectedLifetime
		if diff < 0 {
			diff = -diff
		}
		if diff > lifetimeTolerance(c.ExpectedLifetime) {
			a.Problems = append(a.Problems, fmt.Sprintf("lifetime %s, asked for %s (L27)",
				FormatDuration(c.Lifetime()), FormatDuration(c.ExpectedLifetime)))
		}
	}
	return a
}

// FormatDuration prints a duration in days and hours ("29d 4h", "3h",
// "-2d 1h" once past).
func FormatDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	days, hours := int64(d/Day), int64((d%Day)/time.Hour)
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%s%dd %dh", sign, days, hours)
	case days > 0:
		return fmt.Sprintf("%s%dd", sign, days)
	case hours > 0:
		return fmt.Sprintf("%s%dh", sign, hours)
	}
	return fmt.Sprintf("%s%dm", sign, int64(d/time.Minute))
}
