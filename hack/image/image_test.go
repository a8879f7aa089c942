package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The image is read back with the standard library alone (not the library
// that wrote it): an OCI layout whose blobs match their digests, a config
// with the non-root user, the entrypoint and the OCI labels, and a layer
// whose /bosun is static and runs `bosun version`.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bosun binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bosun")
	const version, revision = "v9.9.9-test", "abc1234"
	build := exec.Command("go", "build", "-trimpath", "-ldflags",
		"-s -w -X github.com/bosun-platform/bosun/internal/version.Version="+version+" -X github.com/bosun-platform/bosun/internal/version.Commit="+revision,
		"-o", bin, "./cmd/bosun")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "bin", "bosun-image.tar")
	o := Options{Binary: bin, CACerts: caBundle(t, dir), Out: out, Ref: "registry.example/bosun:" + version,
		Version: version, Revision: revision, Source: "https://github.com/bosun-platform/bosun", Arch: runtime.GOARCH}
	digest, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}

	blobs := readTar(t, out)
	var index struct {
		SchemaVersion int `json:"schemaVersion"`
		Manifests     []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	decode(t, blobs["index.json"], &index)
	if !strings.Contains(string(blobs["oci-layout"]), `"imageLayoutVersion"`) {
		t.Errorf("oci-layout: %q", blobs["oci-layout"])
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json: %d manifests, want 1", len(index.Manifests))
	}
	m := index.Manifests[0]
	if m.Digest != digest.String() || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("index.json: manifest %s (%s), want %s (OCI manifest)", m.Digest, m.MediaType, digest)
	}
	if m.Annotations["org.opencontainers.image.ref.name"] != version || m.Annotations["io.containerd.image.name"] != o.Ref {
		t.Errorf("index.json annotations %v", m.Annotations)
	}
	var manifest struct {
		Config struct{ MediaType, Digest string }
		Layers []struct{ MediaType, Digest string }
	}
	decode(t, blob(t, blobs, m.Digest), &manifest)
	var config struct {
		OS, Architecture string
		Config           struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Labels     map[string]string
		}
	}
	decode(t, blob(t, blobs, manifest.Config.Digest), &config)
	if config.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", config.Config.User)
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/bosun" || strings.Join(config.Config.Cmd, " ") != "agent" {
		t.Errorf("entrypoint %q cmd %q, want /bosun agent", config.Config.Entrypoint, config.Config.Cmd)
	}
	for k, v := range map[string]string{"org.opencontainers.image.version": version, "org.opencontainers.image.revision": revision, "org.opencontainers.image.source": o.Source} {
		if config.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, config.Config.Labels[k], v)
		}
	}
	if config.OS != "linux" || config.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", config.OS, config.Architecture)
	}
	if len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("layers %+v, want one gzipped OCI layer", manifest.Layers)
	}
	files := readLayer(t, blob(t, blobs, manifest.Layers[0].Digest))
	for _, name := range []string{"etc/passwd", "etc/ssl/certs/ca-certificates.crt", "bosun"} {
		if _, ok := files[name]; !ok {
			t.Errorf("layer lacks /%s", name)
		}
	}
	if !strings.Contains(string(files["etc/passwd"].data), ":65532:65532:") {
		t.Errorf("/etc/passwd does not name user 65532: %q", files["etc/passwd"].data)
	}
	if files["bosun"].mode&0o111 == 0 {
		t.Errorf("/bosun mode %o, not executable", files["bosun"].mode)
	}

	extracted := filepath.Join(dir, "extracted-bosun")
	if err := os.WriteFile(extracted, files["bosun"].data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkStatic(extracted); err != nil {
		t.Error(err)
	}
	got, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("bosun version from the image: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), version) || !strings.Contains(string(got), revision) {
		t.Errorf("bosun version from the image printed %q; want %s and %s", got, version, revision)
	}

	// Same inputs, same image: timestamps are fixed.
	again, err := Build(Options{Binary: bin, CACerts: o.CACerts, Out: filepath.Join(dir, "again.tar"), Ref: o.Ref, Version: version, Revision: revision, Source: o.Source, Arch: o.Arch})
	if err != nil {
		t.Fatal(err)
	}
	if again != digest {
		t.Errorf("rebuilding gave digest %s, first %s", again, digest)
	}
}

// A dynamically linked binary is refused: the image has no libc.
func TestBuildRefusesDynamicBinary(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to stand for a dynamic binary")
	}
	sh, _ = filepath.EvalSymlinks(sh)
	dir := t.TempDir()
	_, err = Build(Options{Binary: sh, CACerts: caBundle(t, dir), Out: filepath.Join(dir, "x.tar"), Ref: "x:y", Arch: runtime.GOARCH})
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("dynamic binary %s: error %v, want a refusal naming CGO_ENABLED=0", sh, err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "x.tar")); statErr == nil {
		t.Error("a tarball was written")
	}
}

func TestTagOf(t *testing.T) {
	for ref, want := range map[string]string{"ghcr.io/a/b:v1": "v1", "localhost:5000/a/b": "localhost:5000/a/b", "b": "b"} {
		if got := tagOf(ref); got != want {
			t.Errorf("tagOf(%q) = %q, want %q", ref, got, want)
		}
	}
}

func caBundle(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(p, []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readTar returns the regular files of a tarball by name.
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = data
		}
	}
}

// blob returns the blob of a digest and checks that it hashes to it.
func blob(t *testing.T, blobs map[string][]byte, digest string) []byte {
	t.Helper()
	algo, hexsum, ok := strings.Cut(digest, ":")
	if !ok || algo != "sha256" {
		t.Fatalf("digest %q", digest)
	}
	data, ok := blobs["blobs/sha256/"+hexsum]
	if !ok {
		t.Fatalf("no blob %s in the tarball", digest)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexsum {
		t.Fatalf("blob %s hashes to %x", digest, sum)
	}
	return data
}

func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
}

type layerFile struct {
	mode int64
	data []byte
}

func readLayer(t *testing.T, gz []byte) map[string]layerFile {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]layerFile{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(fmt.Errorf("layer: %w", err))
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "/")] = layerFile{mode: h.Mode, data: data}
	}
}
