package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Moto is a running moto_server: an AWS emulator (EC2, Auto Scaling, EKS,
// SQS, EventBridge, S3, SSM) on a loopback port.
type Moto struct {
	// URL is the endpoint to give the SDK as BaseEndpoint.
	URL string
}

// StartMoto starts moto_server on a free 127.0.0.1 port for the test and
// stops it by PID when the test ends. Without moto_server on PATH the test
// is skipped, saying so. It sets fake static credentials in the test's
// environment so the SDK's default chain never looks further.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not on PATH (pip install 'moto[server]'): skipping the AWS emulator test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	logPath := filepath.Join(t.TempDir(), "moto.log")
	logFile, err := os.Create(logPath) //nolint:gosec // G304: the test's own temp dir
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port)) //nolint:gosec // G204: the emulator found on PATH
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = logFile.Close()
	})
	m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	for _, kv := range [][2]string{
		{"AWS_ACCESS_KEY_ID", "testing"}, {"AWS_SECRET_ACCESS_KEY", "testing"},
		{"AWS_SESSION_TOKEN", "testing"}, {"AWS_REGION", "eu-central-1"},
		{"AWS_EC2_METADATA_DISABLED", "true"}, {"AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none")},
		{"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none")},
	} {
		t.Setenv(kv[0], kv[1])
	}
	Eventually(t, 60*time.Second, func(ctx context.Context) (bool, error) {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath) //nolint:gosec // G304: the test's own temp dir
			return false, fmt.Errorf("moto_server exited:\n%s", log)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/moto-api/", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return true, nil
	}, "moto_server did not answer on %s", m.URL)
	return m
}
