package schedule

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"office hours match on a weekday", []string{"check", "Mon-Fri 07:30-20:30 Europe/Berlin", "--at", "2026-03-30T10:00:00+02:00"}, ExitMatch,
			[]string{"matches at Mon 2026-03-30 10:00:00", "stops matching at Mon 2026-03-30 20:30:00", "starts matching at Tue 2026-03-31 07:30:00"}},
		{"overnight window on Saturday morning", []string{"check", "Mon-Fri 20:00-08:00 Europe/Berlin", "--at", "2026-03-28T09:00:00+01:00"}, ExitNoMatch,
			[]string{"does not match", "starts matching at Mon 2026-03-30 19:00:00 +0100 (2026-03-30T18:00:00Z)"}},
		{"always", []string{"check", "always", "--at", "2026-03-28"}, ExitMatch, []string{"matches", "never changes"}},
		{"invalid expression", []string{"check", "Mon-Fri 08:00-18:00 Mars/Base"}, ExitInvalid, []string{"position 21: expected an IANA time zone"}},
		{"invalid --at", []string{"check", "always", "--at", "tomorrow"}, ExitInvalid, []string{"--at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
			cmd.SetArgs(tt.args)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.Execute()
			code := 0
			var ee *ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
				if ee.Err != nil {
					out.WriteString(ee.Err.Error())
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
