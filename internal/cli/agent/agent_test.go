package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

// Flags are validated before anything connects to a cluster.
func TestFlagValidation(t *testing.T) {
	emptyDir := t.TempDir()
	endpointFile := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(endpointFile, []byte(`{"url": "http://127.0.0.1:1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad default uptime", []string{"--default-uptime", "Mon-Fri 8-18"}, "--default-uptime"},
		{"unknown controller", []string{"--controllers", "autoscaler"}, "unknown controller"},
		{"provisioner without cluster", []string{"--controllers", "provisioner", "--provider", "local"}, "--cluster"},
		{"provisioner without provider", []string{"--controllers", "provisioner", "--cluster", "c1"}, "--provider"},
		{"unknown provider", []string{"--controllers", "interruption", "--cluster", "c1", "--provider", "gcp"}, "unknown provider (known: local, aws)"},
		{"aws without region", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "aws"}, "--region: the AWS provider needs the cluster's AWS region"},
		{"capacity in one namespace", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--namespace", "shop"}, "whole cluster"},
		{"local cloud not running", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--local-cloud", emptyDir}, "cloud.json does not exist); start one with `bosun up`"},
		{"no state directory", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--local-cloud", "/nonexistent/state"}, "no such directory; expected the state directory of `bosun up`"},
		{"local cloud as a file", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--local-cloud", endpointFile}, "is a file, not a directory; expected the state directory of `bosun up` that holds it"},
		{"--at without --dry-run", []string{"--once", "--at", "2026-12-24"}, "--at previews only"},
		{"bad --at", []string{"--once", "--dry-run", "--at", "xmas"}, "--at"},
		{"bad exclude regexp", []string{"--exclude-names", "("}, "--exclude-names"},
		{"bad label selector", []string{"--include-labels", "a in (b"}, "--include-labels"},
		{"missing rules file", []string{"--controllers", "janitor", "--janitor-rules-file", "/nonexistent/rules.yaml"}, "reading rules"},
		{"bad utilization threshold", []string{"--controllers", "scale-down", "--cluster", "c1", "--provider", "local", "--scale-down-utilization-threshold", "1.5"}, "in (0, 1]"},
		{"negative reaper age", []string{"--controllers", "reaper", "--cluster", "c1", "--provider", "local", "--reaper-min-age", "-2h"}, "--reaper-min-age"},
		{"negative delay after add", []string{"--controllers", "scale-down", "--cluster", "c1", "--provider", "local", "--scale-down-delay-after-add", "-1m"}, "--scale-down-delay-after-add"},
		{"negative capacity interval", []string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--capacity-interval", "-1s"}, "--capacity-interval"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		{"backups without cluster", []string{"--controllers", "backupschedule", "--backup-to", "/tmp/b", "--backup-recipients", "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}, "backupschedule: --cluster: expected the fleet's cluster ID"},
		{"backups without recipients", []string{"--controllers", "backupschedule", "--cluster", "c1", "--backup-to", "/tmp/b"}, "--backup-recipients: expected at least one age public key"},
		{"backups without location", []string{"--controllers", "backupschedule", "--cluster", "c1", "--backup-recipients", "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}, `--backup-to "": expected a directory or s3://bucket/prefix`},
		{"self-approval in production", []string{"--controllers", "access", "--access-production", "--access-allow-self-approval"}, "--access-production with --access-allow-self-approval"},
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

// In a pod (no $HOME, no $BOSUN_HOME, no --local-cloud) the local provider
// has nowhere to find the local cloud: the error says what is missing.
func TestLocalProviderWithoutStateDirectory(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("BOSUN_HOME", "")
	var out bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs([]string{"--controllers", "provisioner", "--cluster", "c1", "--provider", "local", "--kubeconfig", "/nonexistent/kubeconfig"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(context.Background())
	for _, want := range []string{"--provider local: no --local-cloud, and no default state directory", "BOSUN_HOME", "pass --local-cloud with the state directory of the running bosun up"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}
}

// Every example in the help of `bosun agent manifests` works: run as
// shown, it prints manifests (the in-pod capacity controllers with
// --provider=local it once showed could not start).
func TestManifestsExamplesWork(t *testing.T) {
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	manifests, _, err := cmd.Find([]string{"manifests"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(manifests.Example, "\n") {
		line, _, _ = strings.Cut(strings.TrimSpace(line), "|")
		args, ok := strings.CutPrefix(strings.TrimSpace(line), "bosun agent ")
		if !ok {
			continue
		}
		n++
		var out bytes.Buffer
		cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		cmd.SetArgs(shellWords(args))
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		if err := cmd.Execute(); err != nil || !strings.Contains(out.String(), "kind: Deployment") {
			t.Errorf("example %q: %v\n%s", line, err, out.String())
		}
	}
	if n == 0 {
		t.Fatal("no examples")
	}
	var out bytes.Buffer
	cmd = NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs([]string{"manifests", "--controllers", "provisioner", "--arg=--cluster=c1", "--arg=--provider=local"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err == nil || out.Len() != 0 {
		t.Errorf("in-pod provisioner with the local provider: error %v, printed %d bytes; want a refusal and nothing printed", err, out.Len())
	}
}

// shellWords splits a command line at spaces outside double quotes.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	quoted, in := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
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
			cmd, flags := newCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, func(string) string { return "" })
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

// L29: `bosun agent manifests --controllers backupschedule --fleet DIR`
// passes the fleet's backup recipients, kinds and keep to the scheduled
// backups, lets --arg override them, and refuses a backupschedule that
// could not start, naming the missing flag.
func TestManifestsBackupScheduleFromFleet(t *testing.T) {
	const pub = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	dir := t.TempDir()
	for name, content := range map[string]string{
		"fleet.yaml":         "name: t\nbackup:\n  recipients: [" + pub + "]\n  kinds: [configmaps]\n  keep: 3\n",
		"clusters/test.yaml": "id: test\nenvironment: test\nprovider: local\nregion: local\nkubernetesVersion: \"1.33\"\nchannel: dev\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		cmd.SetArgs(append([]string{"manifests", "--controllers", "backupschedule"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("--fleet", dir, "--arg=--cluster=test", "--arg=--backup-to=s3://b/p", "--arg=--backup-keep=5")
	if err != nil {
		t.Fatal(err, out)
	}
	for _, want := range []string{"--backup-recipients=" + pub, "--backup-resources=configmaps", "--backup-keep=5", "--backup-to=s3://b/p", "name: bosun-agent-backupschedule"} {
		if !strings.Contains(out, want) {
			t.Errorf("manifests lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "--backup-keep=3") {
		t.Error("the fleet's keep overrode --arg=--backup-keep=5")
	}
	if _, err := run("--arg=--cluster=test", "--arg=--backup-to=s3://b/p"); err == nil || !strings.Contains(err.Error(), "no --backup-recipients") {
		t.Errorf("without recipients: %v", err)
	}
	if _, err := run("--fleet", dir, "--arg=--cluster=test"); err == nil || !strings.Contains(err.Error(), "no --backup-to") {
		t.Errorf("without --backup-to: %v", err)
	}
}
