//go:build integration

package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
	"github.com/bosun-platform/bosun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}) }

func randomValue(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "v-" + hex.EncodeToString(b)
}

// L29 against a real API server: back up Secrets and ConfigMaps, find no
// plaintext value in any file, lose some, change one, restore: the lost
// come back, the changed one is kept unless forced, and Compare then
// finds no difference.
func TestIntegrationBackupRestoreNeverOverwritesNewer(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	secrets := env.Client.CoreV1().Secrets(ns)
	values := map[string]string{}
	for _, name := range []string{"db", "api", "changed"} {
		values[name] = randomValue(t)
		if _, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			StringData: map[string]string{"value": values[name]},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cmValue := randomValue(t)
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"k": cmValue},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cl, err := NewCluster("test", env.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := DirStore{Dir: dir}
	id := newIdentity(t)
	m, err := Create(ctx, cl, store, CreateOptions{Recipients: []string{id.Recipient().String()}, Resources: []string{"configmaps"}})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{cmValue}
	for _, v := range values {
		all = append(all, v)
	}
	scanForPlaintext(t, dir, all)

	// Lose two, change one after the backup.
	for _, name := range []string{"db", "api"} {
		if err := secrets.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	changed, err := secrets.Get(ctx, "changed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed.Data = map[string][]byte{"value": []byte("rotated-after-backup")}
	// Managed-fields times have one-second resolution: make sure the
	// change is stamped after the backup's creation second.
	time.Sleep(time.Until(m.Created.Add(1100 * time.Millisecond)))
	if _, err := secrets.Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	objs, err := Load(ctx, store, m, []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res := Restore(ctx, cl, m, objs, RestoreOptions{Out: &out})
	if err := res.Err(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Name != "changed" {
		t.Fatalf("skipped %v\n%s", res.Skipped, out.String())
	}
	for _, name := range []string{"db", "api"} {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s not restored: %v", name, err)
		}
		if string(s.Data["value"]) != values[name] || s.Labels["app"] != name {
			t.Errorf("%s restored wrong: %v", name, s.Labels)
		}
	}
	if s, _ := secrets.Get(ctx, "changed", metav1.GetOptions{}); string(s.Data["value"]) != "rotated-after-backup" {
		t.Error("a Secret changed after the backup was overwritten without --force")
	}
	if d := Compare(ctx, cl.Client, objs); len(d) != 1 || d[0].Ref.Name != "changed" {
		t.Errorf("differences before force: %v", d)
	}
	if err := Restore(ctx, cl, m, objs, RestoreOptions{Force: true}).Err(); err != nil {
		t.Fatal(err)
	}
	if d := Compare(ctx, cl.Client, objs); len(d) != 0 {
		t.Errorf("differences after a forced restore: %v", d)
	}
}

// The same backup through moto's S3: written under a prefix, listed,
// found as the latest and restored into a fresh namespace's place.
func TestIntegrationBackupToS3OnMoto(t *testing.T) {
	motoPath, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not on PATH (pip install 'moto[server]'): skipping the S3 backup test")
	}
	moto, err := awstest.Start(motoPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	env := testenv.Get(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	value := randomValue(t)
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-secret"}, StringData: map[string]string{"value": value},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(awstest.Config(), func(o *s3.Options) { o.BaseEndpoint = aws.String(moto.URL); o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("backups")}); err != nil {
		t.Fatal(err)
	}
	store := NewS3Store(client, "backups", "fleet/")
	cl, err := NewCluster("test", env.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	id := newIdentity(t)
	m, err := Create(ctx, cl, store, CreateOptions{Recipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	listed, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("backups")})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed.Contents) != 2 || !strings.HasPrefix(aws.ToString(listed.Contents[0].Key), "fleet/test/"+m.ID+"/") {
		t.Fatalf("objects in the bucket: %d", len(listed.Contents))
	}
	latest, err := Latest(ctx, store, "test")
	if err != nil || latest.ID != m.ID {
		t.Fatalf("latest %v, %v", latest.ID, err)
	}
	if err := env.Client.CoreV1().Secrets(ns).Delete(ctx, "s3-secret", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	objs, err := Load(ctx, store, latest, []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	if err := Restore(ctx, cl, latest, objs, RestoreOptions{}).Err(); err != nil {
		t.Fatal(err)
	}
	s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "s3-secret", metav1.GetOptions{})
	if err != nil || string(s.Data["value"]) != value {
		t.Fatalf("restored from S3: %v", err)
	}
}
