package downscaler

import (
	"regexp"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// L24: precedence and modes of the downscaler's annotations.
func TestDecide(t *testing.T) {
	// Monday 2026-03-30 22:00 UTC: outside office hours.
	night := time.Date(2026, 3, 30, 22, 0, 0, 0, time.UTC)
	day := time.Date(2026, 3, 30, 10, 0, 0, 0, time.UTC)
	old := night.Add(-24 * time.Hour)
	office := "Mon-Fri 08:00-18:00 UTC"
	defaults := Defaults{Uptime: office, GracePeriod: 15 * time.Minute}
	tests := []struct {
		name     string
		defaults Defaults
		now      time.Time
		created  time.Time
		wl, ns   map[string]string
		labels   map[string]string
		want     Intent
		excluded bool
		wantErr  bool
	}{
		{name: "flag uptime: night is down", now: night, want: Down},
		{name: "flag uptime: day is up", now: day, want: Up},
		{name: "grace period protects new workloads", now: night, created: night.Add(-5 * time.Minute), want: Leave},
		{name: "grace period from the annotation", now: night, created: night.Add(-5 * time.Minute), wl: map[string]string{AnnotationGracePeriod: "1m"}, want: Down},
		{name: "namespace uptime overrides flags", now: night, ns: map[string]string{AnnotationUptime: "always"}, want: Up},
		{name: "workload overrides namespace", now: night, ns: map[string]string{AnnotationUptime: "always"}, wl: map[string]string{AnnotationUptime: office}, want: Down},
		{name: "workload uptime is not combined with namespace downtime", now: day, ns: map[string]string{AnnotationDowntime: "always"}, wl: map[string]string{AnnotationUptime: "always"}, want: Up},
		{name: "downtime wins where uptime and downtime overlap", now: day, wl: map[string]string{AnnotationUptime: "always", AnnotationDowntime: office}, want: Down},
		{name: "downtime alone", now: night, wl: map[string]string{AnnotationDowntime: "Mon-Fri 20:00-08:00 UTC"}, want: Down},
		{name: "exclude on workload", now: night, wl: map[string]string{AnnotationExclude: "true"}, want: Up, excluded: true},
		{name: "exclude on namespace", now: night, ns: map[string]string{AnnotationExclude: "true"}, want: Up, excluded: true},
		{name: "exclude=false on workload beats namespace exclude", now: night, wl: map[string]string{AnnotationExclude: "false"}, ns: map[string]string{AnnotationExclude: "true"}, want: Down},
		{name: "exclude-until in the future", now: night, wl: map[string]string{AnnotationExcludeUntil: "2026-04-01"}, want: Up, excluded: true},
		{name: "exclude-until passed", now: night, wl: map[string]string{AnnotationExcludeUntil: "2026-03-01T00:00:00Z"}, want: Down},
		{name: "excluded namespace by flag", defaults: Defaults{Uptime: office, ExcludeNamespaces: []string{"ns"}}, now: night, want: Up, excluded: true},
		{name: "excluded name by flag", defaults: Defaults{Uptime: office, ExcludeNames: regexp.MustCompile("^w")}, now: night, want: Up, excluded: true},
		{name: "include selector matches", defaults: Defaults{Uptime: office, IncludeSelector: labels.SelectorFromSet(labels.Set{"tier": "dev"})}, now: night, labels: map[string]string{"tier": "dev"}, want: Down},
		{name: "include selector does not match", defaults: Defaults{Uptime: office, IncludeSelector: labels.SelectorFromSet(labels.Set{"tier": "dev"})}, now: night, labels: map[string]string{"tier": "prod"}, want: Up, excluded: true},
		{name: "force-downtime in the day", now: day, wl: map[string]string{AnnotationForceDowntime: "true"}, want: Down},
		{name: "force-uptime on the namespace at night", now: night, ns: map[string]string{AnnotationForceUptime: "true"}, want: Up},
		{name: "force-uptime as a schedule", now: night, wl: map[string]string{AnnotationForceUptime: "Mon 21:00-23:00 UTC"}, want: Up},
		{name: "force both is an error", now: night, wl: map[string]string{AnnotationForceUptime: "true", AnnotationForceDowntime: "true"}, wantErr: true},
		{name: "period mode: in downscale period", now: night, wl: map[string]string{AnnotationDownscalePeriod: "Mon-Fri 20:00-23:00 UTC"}, want: Down},
		{name: "period mode: outside periods is left alone", now: day, wl: map[string]string{AnnotationDownscalePeriod: "Mon-Fri 20:00-23:00 UTC"}, want: Leave},
		{name: "period mode: in upscale period", now: day, wl: map[string]string{AnnotationUpscalePeriod: "Mon-Fri 09:00-11:00 UTC"}, want: Up},
		{name: "period and uptime together is an error", now: day, wl: map[string]string{AnnotationUpscalePeriod: "always", AnnotationUptime: "always"}, wantErr: true},
		{name: "unparseable uptime is an error", now: night, wl: map[string]string{AnnotationUptime: "Mon-Fri 8-18"}, wantErr: true},
		{name: "unparseable downtime-replicas is an error", now: night, wl: map[string]string{AnnotationDowntimeReplicas: "-1"}, wantErr: true},
		{name: "unparseable exclude is an error", now: night, wl: map[string]string{AnnotationExclude: "yes please"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.defaults
			if d.Uptime == "" {
				d = defaults
			}
			created := tt.created
			if created.IsZero() {
				created = old
			}
			got, err := Decide(d, Input{Now: tt.now, Created: created, Name: "web", Namespace: "ns", Labels: tt.labels, Layers: []map[string]string{tt.wl, tt.ns}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Intent != tt.want || got.Excluded != tt.excluded {
				t.Errorf("got %s (excluded %v, %q), want %s (excluded %v)", got.Intent, got.Excluded, got.Reason, tt.want, tt.excluded)
			}
		})
	}
}
