//go:build integration

package apply

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/diff"
	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

func TestApplyThenDiffExampleFleet(t *testing.T) {
	env := testenv.Get(t)
	args := []string{"--fleet", "../../../examples/fleet", "--cluster", "local-prod", "--kubeconfig", env.Kubeconfig}
	var out, errOut bytes.Buffer
	streams := iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}

	diffCmd := diff.NewCommand(streams)
	diffCmd.SetArgs(args)
	diffCmd.SilenceUsage, diffCmd.SilenceErrors = true, true
	if err := diffCmd.Execute(); !errors.Is(err, diff.ErrDifferent) {
		t.Fatalf("diff before apply: want ErrDifferent, got %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "+++ bosun/Deployment/shop/checkout-api") {
		t.Errorf("diff does not show the new Deployment:\n%.2000s", out.String())
	}

	out.Reset()
	applyCmd := NewCommand(streams)
	applyCmd.SetArgs(args)
	applyCmd.SilenceUsage, applyCmd.SilenceErrors = true, true
	if err := applyCmd.Execute(); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	for _, want := range []string{"component coredns: ", "applied local-prod version ", " 0 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("apply output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	errOut.Reset()
	diffCmd = diff.NewCommand(streams)
	diffCmd.SetArgs(args)
	diffCmd.SilenceUsage, diffCmd.SilenceErrors = true, true
	if err := diffCmd.Execute(); err != nil {
		t.Errorf("diff after apply: %v\n%s%s", err, out.String(), errOut.String())
	}
}
