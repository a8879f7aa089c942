package apply

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

func runApply(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

// The example fleet's AWS clusters name no subnets or roles: --infra says
// which config items are missing before it calls AWS.
func TestApplyInfraNamesMissingConfigItems(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "none")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	_, err := runApply(t, "--fleet", "../../../examples/fleet", "--cluster", "aws-staging-eu1", "--infra", "--dry-run", "--aws-endpoint", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "aws_subnets") || !strings.Contains(err.Error(), "aws_cluster_role_arn") || !strings.Contains(err.Error(), "cluster aws-staging-eu1") {
		t.Fatalf("err = %v, want the missing config items named", err)
	}
}

func TestApplyInfraRefusesLocalClusters(t *testing.T) {
	_, err := runApply(t, "--fleet", "../../../examples/fleet", "--cluster", "local-staging", "--infra")
	if err == nil || !strings.Contains(err.Error(), `provider "local"`) {
		t.Fatalf("err = %v, want a refusal naming the provider", err)
	}
}
