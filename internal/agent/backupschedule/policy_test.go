package backupschedule

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)

// L29: when a scheduled backup is due, as a pure function of the status
// kept in the API and the time (a fake clock stepping through a day).
func TestDue(t *testing.T) {
	day := 24 * time.Hour
	ok := Status{LastSuccessID: "a", LastSuccessTime: t0, LastAttemptTime: t0}
	failed := Status{LastSuccessID: "a", LastSuccessTime: t0, LastAttemptTime: t0.Add(day), LastError: "boom", Failures: 1}
	neverOK := Status{LastAttemptTime: t0, LastError: "boom", Failures: 3}
	for _, c := range []struct {
		name  string
		s     Status
		step  time.Duration
		every time.Duration
		due   bool
		next  time.Time
	}{
		{"first backup at once", Status{}, 0, day, true, t0},
		{"not again right after a success (a restart)", ok, time.Minute, day, false, t0.Add(day)},
		{"not a second early", ok, day - time.Second, day, false, t0.Add(day)},
		{"due at the period", ok, day, day, true, t0.Add(day)},
		{"a skipped one is due at once", ok, 3 * day, day, true, t0.Add(3 * day)},
		{"a failure is retried after RetryAfter", failed, day + time.Minute, day, false, t0.Add(day + RetryAfter)},
		{"retry due", failed, day + RetryAfter, day, true, t0.Add(day + RetryAfter)},
		{"a period shorter than RetryAfter retries a period after the attempt", Status{LastSuccessTime: t0, LastAttemptTime: t0.Add(time.Minute), LastError: "x"}, 2 * time.Minute, 2 * time.Minute, false, t0.Add(3 * time.Minute)},
		{"never succeeded: retry", neverOK, RetryAfter, day, true, t0.Add(RetryAfter)},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(t0)
			clk.Step(c.step)
			due, next := Due(c.s, clk.Now(), c.every)
			if due != c.due || !next.Equal(c.next) {
				t.Fatalf("Due = %v, %s; expected %v, %s", due, next, c.due, c.next)
			}
		})
	}
}

// The status survives a round trip through its ConfigMap; a hand-edited
// field that does not parse is refused with the ConfigMap and key named.
func TestStatusConfigMap(t *testing.T) {
	s := Status{LastSuccessID: "20261203T020000Z", LastSuccessTime: t0, LastAttemptTime: t0.Add(time.Hour), LastError: "s3: denied", Failures: 2, NextDue: t0.Add(time.Hour + RetryAfter)}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: DefaultStatusConfigMap}, Data: s.data()}
	got, err := statusFrom(cm)
	if err != nil {
		t.Fatal(err)
	}
	if got != s {
		t.Fatalf("round trip %+v; expected %+v", got, s)
	}
	cm.Data[keyLastSuccessTime] = "yesterday"
	if _, err := statusFrom(cm); err == nil || !strings.Contains(err.Error(), "kube-system/bosun-backup-status: data.lastSuccessTime \"yesterday\"") {
		t.Fatalf("bad time: %v", err)
	}
}

const pub = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

// Bad options are refused with the flag and what was expected; a private
// key given as a recipient is refused without echoing it.
func TestValidate(t *testing.T) {
	good := Options{Every: time.Hour, To: "s3://bucket/prefix", Recipients: []string{pub}, Keep: 3, StatusNamespace: "kube-system", StatusConfigMap: "s"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	secret := "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
	for _, c := range []struct {
		name string
		mod  func(o *Options)
		want string
	}{
		{"no period", func(o *Options) { o.Every = 0 }, "--backup-every 0s: expected a positive duration"},
		{"no location", func(o *Options) { o.To = "" }, `--backup-to "": expected a directory or s3://bucket/prefix`},
		{"other scheme", func(o *Options) { o.To = "gs://b" }, `--backup-to "gs://b"`},
		{"no recipients", func(o *Options) { o.Recipients = nil }, "--backup-recipients: expected at least one age public key"},
		{"private key", func(o *Options) { o.Recipients = []string{secret} }, "a private key: never give the agent one"},
		{"keep 0", func(o *Options) { o.Keep = 0 }, "--backup-keep 0: expected at least 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.mod(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; expected %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error repeats the private key: %v", err)
			}
		})
	}
}
