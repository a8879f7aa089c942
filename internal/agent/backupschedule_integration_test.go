//go:build integration

package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/agent/backupschedule"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/backup"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// L29: the agent, as its service account under the shipped RBAC
// (deploy/agent/96-rbac-backupschedule.yaml), backs its cluster up on a
// schedule: to a directory, where a restarted agent takes no second
// backup early (the schedule is in kube-system/bosun-backup-status), then
// every second with --backup-keep 2, pruned to two; then to moto's S3
// through the standard AWS chain. The backups decrypt to the Secret, and
// no file or S3 object holds its value in plaintext.
func TestBackupScheduleUnderShippedRBAC(t *testing.T) {
	env := testenv.Get(t)
	applyShippedRBAC(t, env)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps(backupschedule.DefaultStatusNamespace)
	if err := cms.Delete(ctx, backupschedule.DefaultStatusConfigMap, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	value := "v-" + hex.EncodeToString(b)
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": value},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	const cluster = "test-cluster"
	cfg := env.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:bosun-system:bosun-agent"}
	start := func(to string, every time.Duration) (stop func()) {
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			o := Options{
				RESTConfig: cfg, Controllers: []string{agentcmd.ControllerBackupSchedule}, Interval: 200 * time.Millisecond, Logger: quiet,
				BackupSchedule: backupschedule.Options{
					Every: every, To: to, Recipients: []string{id.Recipient().String()}, Keep: 2,
					StatusNamespace: backupschedule.DefaultStatusNamespace, StatusConfigMap: backupschedule.DefaultStatusConfigMap,
				},
			}
			o.Capacity.Cluster = cluster
			done <- Run(runCtx, o)
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}
	lastID := func() string {
		cm, err := cms.Get(ctx, backupschedule.DefaultStatusConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["lastError"] != "" {
			t.Fatalf("backup failed: %s", cm.Data["lastError"])
		}
		return cm.Data["lastSuccessID"]
	}
	// waitNewIDs waits until the status names n backups after prev.
	waitNewIDs := func(prev string, n int) string {
		t.Helper()
		seen := map[string]bool{prev: true}
		last := prev
		testenv.Eventually(t, 60*time.Second, func(context.Context) (bool, error) {
			if id := lastID(); id != "" && !seen[id] {
				seen[id], last = true, id
				n--
			}
			return n <= 0, nil
		}, "scheduled backups recorded in the status ConfigMap")
		return last
	}
	dir := t.TempDir()
	store := backup.DirStore{Dir: dir}

	stop := start(dir, time.Hour)
	first := waitNewIDs("", 1)
	stop()
	// A restart an hour before the next one is due takes none.
	stop = start(dir, time.Hour)
	time.Sleep(3 * time.Second) // about 15 passes
	stop()
	if got := lastID(); got != first {
		t.Fatalf("a restarted agent backed up again early: %s after %s", got, first)
	}
	if ms, err := backup.List(ctx, store, cluster); err != nil || len(ms) != 1 {
		t.Fatalf("backups after the restart: %d (%v); expected 1", len(ms), err)
	}

	// Every second, keeping two: pruned to two.
	stop = start(dir, time.Second)
	latest := waitNewIDs(first, 3)
	stop()
	ms, err := backup.List(ctx, store, cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].ID != latest {
		t.Fatalf("backups kept: %d, newest %s; expected 2, newest %s", len(ms), ms[len(ms)-1].ID, latest)
	}
	objs, err := backup.Load(ctx, store, ms[1], []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	if !holdsValue(t, objs, ns, value) {
		t.Fatalf("the newest backup does not hold Secret %s/db", ns)
	}
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		assertNoPlaintext(t, p, data, value)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// To moto's S3, through the standard AWS chain (environment).
	motoPath, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not on PATH (pip install 'moto[server]'): skipping the S3 part")
	}
	moto, err := awstest.Start(motoPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	t.Setenv("AWS_ENDPOINT_URL_S3", moto.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", awstest.Region)
	client := s3.NewFromConfig(awstest.Config(), func(o *s3.Options) { o.BaseEndpoint = aws.String(moto.URL); o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("backups")}); err != nil {
		t.Fatal(err)
	}
	stop = start("s3://backups/fleet", time.Second)
	latest = waitNewIDs(latest, 3)
	stop()
	s3store := backup.NewS3Store(client, "backups", "fleet")
	ms, err = backup.List(ctx, s3store, cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].ID != latest {
		t.Fatalf("S3 backups kept: %d; expected 2, newest %s", len(ms), latest)
	}
	if objs, err = backup.Load(ctx, s3store, ms[1], []age.Identity{id}); err != nil || !holdsValue(t, objs, ns, value) {
		t.Fatalf("the newest S3 backup does not hold Secret %s/db (%v)", ns, err)
	}
	listed, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("backups")})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed.Contents) != 4 {
		t.Errorf("objects in the bucket: %d; expected 2 backups of 2 files", len(listed.Contents))
	}
	for _, o := range listed.Contents {
		got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("backups"), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(got.Body); err != nil {
			t.Fatal(err)
		}
		_ = got.Body.Close()
		assertNoPlaintext(t, aws.ToString(o.Key), buf.Bytes(), value)
	}
}

func holdsValue(t *testing.T, objs []backup.Object, ns, value string) bool {
	t.Helper()
	for _, o := range objs {
		if o.Ref.Resource != "secrets" || o.Ref.Namespace != ns || o.Ref.Name != "db" {
			continue
		}
		enc, _, _ := unstructured.NestedString(o.Object.Object, "data", "password")
		return enc == base64.StdEncoding.EncodeToString([]byte(value))
	}
	return false
}

func assertNoPlaintext(t *testing.T, name string, data []byte, value string) {
	t.Helper()
	for _, form := range []string{value, base64.StdEncoding.EncodeToString([]byte(value))} {
		if bytes.Contains(data, []byte(form)) {
			t.Errorf("%s holds the secret value in plaintext (%s)", name, strings.SplitN(form, "-", 2)[0])
		}
	}
}
