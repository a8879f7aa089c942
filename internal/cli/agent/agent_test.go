package agent

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

// Flags are validated before anything connects to a cluster.
func TestFlagValidation(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad default uptime", []string{"--default-uptime", "Mon-Fri 8-18"}, "--default-uptime"},
		{"unknown controller", []string{"--controllers", "autoscaler"}, "unknown controller"},
		{"provisioner without cluster", []string{"--controllers", "provisioner", "--provider", "local"}, "--cluster"},
		{"provisioner without provider", []string{"--controllers", "provisioner", "--cluster", "c1"}, "--provider"},
		{"unknown provider", []string{"--controllers", "interruption", "--cluster", "c1", "--provider", "gcp"}, "unknown provider"},
		{"capacity in one namespace", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--namespace", "shop"}, "whole cluster"},
		{"local cloud not running", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--local-cloud", "/nonexistent/cloud.json"}, "bosun up"},
		{"--at without --dry-run", []string{"--once", "--at", "2026-12-24"}, "--at previews only"},
		{"bad --at", []string{"--once", "--dry-run", "--at", "xmas"}, "--at"},
		{"bad exclude regexp", []string{"--exclude-names", "("}, "--exclude-names"},
		{"bad label selector", []string{"--include-labels", "a in (b"}, "--include-labels"},
		{"missing rules file", []string{"--controllers", "janitor", "--janitor-rules-file", "/nonexistent/rules.yaml"}, "reading rules"},
		{"bad utilization threshold", []string{"--scale-down-utilization-threshold", "1.5"}, "in (0, 1]"},
		{"negative reaper age", []string{"--reaper-min-age", "-2h"}, "--reaper-min-age"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
			cmd.SetArgs(append(tt.args, "--kubeconfig", "/nonexistent/kubeconfig"))
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// kube-downscaler's environment variables set the defaults.
func TestDefaultsFromEnvironment(t *testing.T) {
	t.Setenv("DEFAULT_UPTIME", "Mon-Fri 07:30-20:30 Europe/Berlin")
	t.Setenv("DEFAULT_DOWNTIME", "Sat-Sun 00:00-24:00 Europe/Berlin")
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	for flag, want := range map[string]string{"default-uptime": "Mon-Fri 07:30-20:30 Europe/Berlin", "default-downtime": "Sat-Sun 00:00-24:00 Europe/Berlin"} {
		if got := cmd.Flags().Lookup(flag).DefValue; got != want {
			t.Errorf("--%s default %q, want %q", flag, got, want)
		}
	}
}

func TestManifestsCommand(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs([]string{"manifests", "--controllers", "janitor", "--namespace", "ops"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "name: bosun-agent-janitor") || strings.Contains(out.String(), "bosun-agent-downscaler") {
		t.Errorf("manifests for the janitor only:\n%s", out.String())
	}
}

// Issue 18 item 10: the endpoints (no authentication) used to listen on
// :8080, every interface, also on a workstation. With --kubeconfig the
// default is now loopback; in-cluster it stays :8080; an explicit
// --listen-address always wins.
func TestListenAddressDefaults(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		addr string
		why  string
	}{
		{"in-cluster", nil, ":8080", "in-cluster"},
		{"workstation", []string{"--kubeconfig", "/k"}, "127.0.0.1:8080", "--kubeconfig given"},
		{"workstation, explicit", []string{"--kubeconfig", "/k", "--listen-address", ":9090"}, ":9090", "--listen-address given"},
		{"workstation, explicit all interfaces", []string{"--kubeconfig=/k", "--listen-address=:8080"}, ":8080", "--listen-address given"},
		{"in-cluster, explicit", []string{"--listen-address", "10.0.0.5:8080"}, "10.0.0.5:8080", "--listen-address given"},
		{"off", []string{"--kubeconfig", "/k", "--listen-address", ""}, "", "endpoints off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd, flags := newCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
			if err := cmd.ParseFlags(c.args); err != nil {
				t.Fatal(err)
			}
			flags.complete(cmd)
			o, err := flags.options(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
			if err != nil {
				t.Fatal(err)
			}
			if o.ListenAddress != c.addr || !strings.Contains(o.ListenReason, c.why) {
				t.Errorf("listen address %q (%s), want %q (%s)", o.ListenAddress, o.ListenReason, c.addr, c.why)
			}
		})
	}
}
