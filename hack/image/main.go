// Command image builds Bosun's agent image without a Docker daemon, with
// go-containerregistry, into an OCI image layout packed as a tarball
// (`make image`; load it with `docker load`, `podman load` or push it with
// `crane push` / `skopeo copy oci-archive:...`).
//
// The image is one layer on nothing ("distroless-like"): the static bosun
// binary at /bosun, the CA bundle for TLS to the cloud's APIs, and an
// /etc/passwd naming the non-root user 65532 it runs as. Entrypoint
// /bosun, command agent; OCI labels carry version, revision and source.
// Timestamps are fixed, so the same binary gives the same image digest.
//
// It is a module of its own (hack/image) so that go-containerregistry and
// its dependencies stay out of Bosun's module.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the image's user: nonroot, as in distroless images and as the
// agent's Deployment sets (runAsUser 65532).
const User = "65532:65532"

// Options describe the image to build.
type Options struct {
	// Binary is the static bosun binary (CGO_ENABLED=0).
	Binary string
	// CACerts is the CA bundle copied to /etc/ssl/certs/ca-certificates.crt.
	CACerts string
	// Out is the OCI tarball to write.
	Out string
	// Ref names the image in the layout (e.g. ghcr.io/bosun-platform/bosun:v1.2.3).
	Ref string
	// Version, Revision and Source are the OCI labels' values.
	Version, Revision, Source string
	// Arch is the image's architecture (GOARCH of the binary).
	Arch string
}

func main() {
	var o Options
	flag.StringVar(&o.Binary, "binary", "", "static bosun binary to put at /bosun")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle for /etc/ssl/certs/ca-certificates.crt")
	flag.StringVar(&o.Out, "out", "bin/bosun-image.tar", "OCI tarball to write")
	flag.StringVar(&o.Ref, "ref", "ghcr.io/bosun-platform/bosun:dev", "image reference recorded in the layout")
	flag.StringVar(&o.Version, "version", "dev", "org.opencontainers.image.version")
	flag.StringVar(&o.Revision, "revision", "unknown", "org.opencontainers.image.revision")
	flag.StringVar(&o.Source, "source", "https://github.com/bosun-platform/bosun", "org.opencontainers.image.source")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "image architecture (the binary's GOARCH)")
	flag.Parse()
	digest, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%s, %s)\n", o.Out, o.Ref, digest)
}

// Build writes the image to o.Out and returns its manifest digest.
func Build(o Options) (v1.Hash, error) {
	if o.Binary == "" || o.Out == "" || o.Ref == "" {
		return v1.Hash{}, fmt.Errorf("options: binary, out and ref are required (got binary %q, out %q, ref %q)", o.Binary, o.Out, o.Ref)
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the binary, %w", err)
	}
	if err := checkStatic(o.Binary); err != nil {
		return v1.Hash{}, err
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the CA bundle, %w", err)
	}
	layerTar, err := rootfs([]file{
		{name: "etc/", mode: 0o755 | fs.ModeDir},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/ssl/", mode: 0o755 | fs.ModeDir},
		{name: "etc/ssl/certs/", mode: 0o755 | fs.ModeDir},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs},
		{name: "home/", mode: 0o755 | fs.ModeDir},
		{name: "home/nonroot/", mode: 0o700 | fs.ModeDir, uid: 65532},
		{name: "tmp/", mode: 0o1777 | fs.ModeDir | fs.ModeSticky},
		{name: "bosun", mode: 0o755, data: bin},
	})
	if err != nil {
		return v1.Hash{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("making the layer, %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "hack/image: bosun " + o.Version, Created: v1.Time{Time: epoch}}})
	if err != nil {
		return v1.Hash{}, fmt.Errorf("adding the layer, %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the config, %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = o.Arch
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.User = User
	cfg.Config.Entrypoint = []string{"/bosun"}
	cfg.Config.Cmd = []string{"agent"}
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cfg.Config.Labels = Labels(o)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return v1.Hash{}, fmt.Errorf("setting the config, %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("hashing the image, %w", err)
	}

	dir, err := os.MkdirTemp("", "bosun-image-")
	if err != nil {
		return v1.Hash{}, fmt.Errorf("creating a layout directory, %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the layout, %w", err)
	}
	ann := map[string]string{
		"org.opencontainers.image.ref.name": tagOf(o.Ref),
		"io.containerd.image.name":          o.Ref,
	}
	if err := p.AppendImage(img, layout.WithAnnotations(ann), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: o.Arch})); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image, %w", err)
	}
	if err := tarDir(dir, o.Out); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// Labels are the image's OCI labels.
func Labels(o Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "bosun",
		"org.opencontainers.image.description": "Bosun's agent and CLI",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.source":      o.Source,
	}
}

// epoch is every timestamp of the image, for reproducible digests.
var epoch = time.Unix(0, 0).UTC()

type file struct {
	name string
	mode fs.FileMode
	uid  int
	data []byte
}

// rootfs returns an uncompressed tar of files, owned by root unless a uid
// is given, with fixed timestamps.
func rootfs(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: int64(f.mode.Perm()), Uid: f.uid, Gid: f.uid, ModTime: epoch, Format: tar.FormatPAX}
		if f.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.mode.IsDir() {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s, %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer: %s, %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer, %w", err)
	}
	return buf.Bytes(), nil
}

// tarDir packs the layout directory into out, in name order with fixed
// timestamps, through a temporary file renamed into place.
func tarDir(dir, out string) (err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil { //nolint:gosec // G301: bin/ of the checkout, like make build's
		return fmt.Errorf("creating %s, %w", filepath.Dir(out), err)
	}
	var names []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("listing the layout, %w", err)
	}
	sort.Strings(names)
	f, err := os.CreateTemp(filepath.Dir(out), ".image-*.tar")
	if err != nil {
		return fmt.Errorf("creating the tarball, %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	tw := tar.NewWriter(f)
	for _, p := range names {
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("reading the layout, %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch, Mode: 0o644, Typeflag: tar.TypeReg, Size: info.Size()}
		if info.IsDir() {
			h = &tar.Header{Name: filepath.ToSlash(rel) + "/", ModTime: epoch, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing the tarball, %w", err)
		}
		if !info.IsDir() {
			if err := copyFile(tw, p); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the tarball, %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the tarball, %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { //nolint:gosec // G302: an image to load or push, not a secret
		return fmt.Errorf("writing the tarball, %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("writing the tarball, %w", err)
	}
	return nil
}

func copyFile(w io.Writer, p string) error {
	r, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("reading %s, %w", p, err)
	}
	defer func() { _ = r.Close() }()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("copying %s, %w", p, err)
	}
	return nil
}

// tagOf returns the tag of a reference ("dev" of "repo:dev"), or the
// reference itself when it has none.
func tagOf(ref string) string {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return ref[i+1:]
		case '/':
			return ref
		}
	}
	return ref
}
