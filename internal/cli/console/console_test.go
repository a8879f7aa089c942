package console

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:1"}
- name: b
  cluster: {server: "https://127.0.0.1:2"}
users:
- name: u
  user: {token: t}
contexts:
- name: prod
  context: {cluster: a, user: u}
- name: staging
  context: {cluster: b, user: u}
current-context: prod
`

// The command refuses, before contacting any cluster, what it must not do.
func TestConsoleFlagsRejected(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte("s3cret alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"beyond loopback without auth", []string{"--kubeconfig", kc, "--listen", "0.0.0.0:0"}, "needs --token-file or --trusted-header"},
		{"impersonation without auth", []string{"--kubeconfig", kc, "--impersonate"}, "--impersonate needs"},
		{"contexts and all-contexts", []string{"--kubeconfig", kc, "--contexts", "prod", "--all-contexts"}, "exclude each other"},
		{"unknown context", []string{"--kubeconfig", kc, "--contexts", "nope"}, `no context "nope"`},
		{"missing token file", []string{"--kubeconfig", kc, "--token-file", filepath.Join(dir, "none")}, "token file"},
		{"local cloud not running", []string{"--kubeconfig", kc, "--local-cloud", dir}, "--local-cloud: no local cloud is running"},
		{"local cloud as a file", []string{"--kubeconfig", kc, "--local-cloud", kc}, "--local-cloud: " + kc + " is a file, not a directory; expected the state directory of `bosun up`"},
		{"groups header without trusted header", []string{"--kubeconfig", kc, "--trusted-groups-header", "X-Forwarded-Groups"}, "needs --trusted-header"},
		{"tokens and a trusted header", []string{"--kubeconfig", kc, "--token-file", filepath.Join(dir, "tokens"), "--trusted-header", "X-Forwarded-User"}, "exclude each other"},
		{"proxy without trusted header", []string{"--kubeconfig", kc, "--trusted-proxy", "10.0.0.1"}, "--trusted-proxy needs --trusted-header"},
		{"proxy that is no address", []string{"--kubeconfig", kc, "--trusted-header", "X-Forwarded-User", "--trusted-proxy", "proxy.local"}, `--trusted-proxy "proxy.local": want an address or CIDR`},
		{"kind retry above its max", []string{"--kubeconfig", kc, "--kind-retry", "10m"}, "--kind-retry 10m0s must be"},
		{"usage window shorter than the interval", []string{"--kubeconfig", kc, "--usage-interval", "5m", "--usage-window", "1m"}, "--usage-window 1m0s must be at least"},
		{"no live reads", []string{"--kubeconfig", kc, "--live-qps", "0"}, "--live-qps 0 must be > 0"},
		{"missing price overrides", []string{"--kubeconfig", kc, "--price-overrides", filepath.Join(dir, "none")}, "price overrides"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
			cmd.SetArgs(tt.args)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestConsoleOptions(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &flagpole{kubeconfig: kc, listen: "0.0.0.0:8080", trustedHeader: "X-Forwarded-User", groupsHeader: "X-Forwarded-Groups",
		kindRetry: time.Minute, kindRetryMax: 5 * time.Minute, usageInterval: time.Minute, usageWindow: 0, fleetDir: "../../../examples/fleet",
		liveQPS: 300, liveBurst: 600}
	opts, auth, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.UsageInterval != time.Minute || opts.UsageWindow >= 0 {
		t.Errorf("usage interval %s, window %s; want 1m and none (negative) for --usage-window 0", opts.UsageInterval, opts.UsageWindow)
	}
	if opts.LiveQPS != 300 || opts.LiveBurst != 600 {
		t.Errorf("live reads %g/s, burst %d; want --live-qps 300 and --live-burst 600", opts.LiveQPS, opts.LiveBurst)
	}
	if !auth.Enabled() || auth.TrustedGroupsHeader != "X-Forwarded-Groups" {
		t.Errorf("auth = %+v, want the trusted header and the groups header", auth)
	}
	if len(opts.Clusters) != 2 || opts.Clusters[0].Name != "prod" || opts.Clusters[1].Name != "staging" {
		t.Errorf("clusters = %+v, want every context, sorted", opts.Clusters)
	}
}

func TestPrintRBAC(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs([]string{"--print-rbac"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "name: bosun-console-read") || strings.Contains(out.String(), "- secrets") {
		t.Errorf("--print-rbac printed:\n%s", out.String())
	}
}
