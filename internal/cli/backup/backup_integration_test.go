//go:build integration

package backup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

// L29 end to end through the command: the fleet lists the recipient,
// create writes the backup, restore brings back a lost Secret, verify
// restores into a throwaway control plane and finds no difference.
func TestIntegrationBackupCommandCreateRestoreVerify(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "p4ss-cli-test"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fleetDir, backups, key := filepath.Join(dir, "fleet"), filepath.Join(dir, "backups"), filepath.Join(dir, "key.txt")
	for name, content := range map[string]string{
		"fleet.yaml":         "name: t\nbackup:\n  recipients: [" + id.Recipient().String() + "]\n  keep: 3\n",
		"clusters/test.yaml": "id: test\nenvironment: test\nprovider: local\nregion: local\nkubernetesVersion: \"1.33\"\nchannel: dev\n",
	} {
		p := filepath.Join(fleetDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(key, []byte("# test identity\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "create", "--fleet", fleetDir, "--cluster", "test", "--to", backups, "--kubeconfig", env.Kubeconfig)
	if err != nil || !strings.Contains(out, "encrypted to 1 recipient(s)") {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if out, err := run(t, "create", "--fleet", fleetDir, "--cluster", "nope", "--to", backups, "--kubeconfig", env.Kubeconfig); err == nil ||
		!strings.Contains(err.Error(), `--cluster "nope": not a cluster of the fleet`) {
		t.Errorf("unknown cluster: %v\n%s", err, out)
	}
	if err := env.Client.CoreV1().Secrets(ns).Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "restore", "--cluster", "test", "--from", backups, "--identity", key, "--kubeconfig", env.Kubeconfig)
	if err != nil || !strings.Contains(out, "applied secrets "+ns+"/db") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil || string(s.Data["password"]) != "p4ss-cli-test" {
		t.Fatalf("restored secret: %v", err)
	}
	out, err = run(t, "verify", "--cluster", "test", "--from", backups, "--identity", key)
	if err != nil || !strings.Contains(out, " 0 difference(s)") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "restore", "--cluster", "test", "--from", backups, "--identity", key, "--kubeconfig", env.Kubeconfig); err == nil ||
		!strings.Contains(err.Error(), "decrypting") {
		t.Errorf("wrong identity: %v\n%s", err, out)
	}
}
