package backup

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

var (
	secretsGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

func secretObj(ns, name, typ string, data map[string]string) *unstructured.Unstructured {
	d := map[string]any{}
	for k, v := range data {
		d[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": typ, "data": d,
		"metadata": map[string]any{"namespace": ns, "name": name, "uid": "u-" + name, "resourceVersion": "7",
			"ownerReferences": []any{map[string]any{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "dead"}},
			"annotations":     map[string]any{"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"p\":\"" + data["password"] + "\"}}"}},
	}}
}

func fakeCluster(objs ...runtime.Object) Cluster {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		secretsGVR: "SecretList", configMapsGVR: "ConfigMapList",
	}, objs...)
	return Cluster{ID: "c1", Client: dyn, Mapper: mapper}
}

func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// scanForPlaintext fails the test when any file under dir holds one of
// the values, raw or base64-encoded (L29: a backup never holds a secret
// in the clear).
func scanForPlaintext(t *testing.T, dir string, values []string) int {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, v := range values {
			for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
				if bytes.Contains(data, []byte(form)) {
					t.Errorf("%s holds a secret value in plaintext (%q)", p, form)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestCreateL29EncryptsEverySecretAndLoadRoundTrips(t *testing.T) {
	ctx := context.Background()
	values := []string{"hunter2-password-value", "api-key-0123456789abcdef"}
	cl := fakeCluster(
		secretObj("shop", "db", "Opaque", map[string]string{"password": values[0]}),
		secretObj("pay", "api", "Opaque", map[string]string{"key": values[1]}),
		secretObj("pay", "sa-token", "kubernetes.io/service-account-token", map[string]string{"token": "x"}),
	)
	dir := t.TempDir()
	store := DirStore{Dir: dir}
	alice, bob := newIdentity(t), newIdentity(t)
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC))
	m, err := Create(ctx, cl, store, CreateOptions{Recipients: []string{alice.Recipient().String(), bob.Recipient().String()}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "20261202T170000Z" || len(m.Objects) != 2 {
		t.Fatalf("manifest %+v", m)
	}
	if n := scanForPlaintext(t, dir, values); n != 2 {
		t.Errorf("%d files, want archive and manifest", n)
	}
	latest, err := Latest(ctx, store, "c1")
	if err != nil || latest.ID != m.ID {
		t.Fatalf("latest %v %v", latest.ID, err)
	}
	// Either recipient restores it.
	for _, id := range []age.Identity{alice, bob} {
		objs, err := Load(ctx, store, latest, []age.Identity{id})
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 2 {
			t.Fatalf("%d objects", len(objs))
		}
		for _, o := range objs {
			md := o.Object.Object["metadata"].(map[string]any)
			for _, f := range []string{"uid", "resourceVersion", "ownerReferences", "annotations"} {
				if _, ok := md[f]; ok {
					t.Errorf("%s: metadata.%s kept", o.Ref, f)
				}
			}
		}
	}
	if _, err := Load(ctx, store, latest, []age.Identity{newIdentity(t)}); err == nil {
		t.Error("a stranger's identity decrypted the backup")
	}
}

func TestLoadRefusesATamperedArchive(t *testing.T) {
	ctx := context.Background()
	cl := fakeCluster(secretObj("a", "s", "Opaque", map[string]string{"k": "v"}))
	store := DirStore{Dir: t.TempDir()}
	id := newIdentity(t)
	m, err := Create(ctx, cl, store, CreateOptions{Recipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := seal(nil, []age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, m.Dir()+"/"+ArchiveFile, other); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, store, m, []age.Identity{id}); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("tampered archive: err %v", err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	cl := fakeCluster()
	store := DirStore{Dir: t.TempDir()}
	if _, err := Create(ctx, cl, store, CreateOptions{}); err == nil || !strings.Contains(err.Error(), "recipients") {
		t.Errorf("no recipients: %v", err)
	}
	if _, err := Create(ctx, cl, store, CreateOptions{Recipients: []string{"ssh-rsa AAAA"}}); err == nil || !strings.Contains(err.Error(), "age public key") {
		t.Errorf("bad recipient: %v", err)
	}
	id := newIdentity(t)
	if _, err := Create(ctx, cl, store, CreateOptions{Recipients: []string{id.Recipient().String()}, Resources: []string{"widgets.example.com"}}); err == nil ||
		!strings.Contains(err.Error(), `resource "widgets.example.com": not served`) {
		t.Errorf("unknown resource: %v", err)
	}
	if names, _ := store.List(ctx, ""); len(names) != 0 {
		t.Errorf("a refused backup wrote %v", names)
	}
}

func TestPruneKeepsTheNewestAndDropsInterrupted(t *testing.T) {
	ctx := context.Background()
	store := DirStore{Dir: t.TempDir()}
	put := func(name string) {
		if err := store.Put(ctx, name, []byte(`{"format":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"20261201T000000Z", "20261202T000000Z", "20261203T000000Z"} {
		put("c1/" + id + "/" + ArchiveFile)
		put("c1/" + id + "/" + ManifestFile)
	}
	put("c1/20261202T120000Z/" + ArchiveFile) // interrupted, older than the newest
	put("c1/20261204T000000Z/" + ArchiveFile) // interrupted, maybe still running
	put("c2/20261201T000000Z/" + ManifestFile)
	done, err := Prune(ctx, store, "c1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(done, ",") != "20261201T000000Z,20261202T120000Z" {
		t.Errorf("pruned %v", done)
	}
	left, _ := store.List(ctx, "")
	want := []string{
		"c1/20261202T000000Z/manifest.json", "c1/20261202T000000Z/objects.tar.gz.age",
		"c1/20261203T000000Z/manifest.json", "c1/20261203T000000Z/objects.tar.gz.age",
		"c1/20261204T000000Z/objects.tar.gz.age", "c2/20261201T000000Z/manifest.json",
	}
	if strings.Join(left, "\n") != strings.Join(want, "\n") {
		t.Errorf("left:\n%s", strings.Join(left, "\n"))
	}
	if _, err := Prune(ctx, store, "c1", 0); err == nil {
		t.Error("keep 0 accepted")
	}
}

func TestDirStoreRefusesEscapingNames(t *testing.T) {
	s := DirStore{Dir: t.TempDir()}
	for _, name := range []string{"../x", "/abs", "a/../../b", ""} {
		if err := s.Put(context.Background(), name, []byte("x")); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

func TestContainsIgnoresDefaultsNotDifferences(t *testing.T) {
	want := map[string]any{"replicas": int64(2), "ports": []any{map[string]any{"port": int64(80)}}}
	got := map[string]any{"replicas": float64(2), "strategy": "RollingUpdate", "ports": []any{map[string]any{"port": int64(80), "protocol": "TCP"}}}
	if !contains(got, want) {
		t.Error("defaults counted as a difference")
	}
	got["replicas"] = int64(3)
	if contains(got, want) {
		t.Error("a changed value matched")
	}
}
