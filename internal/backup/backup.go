// Package backup exports a cluster's Secrets (and chosen kinds), encrypted
// with age to the public keys the fleet lists, and restores them by
// server-side apply (L29: Urb-it backed up secrets encrypted after losing
// clusters). A backup is two files in a Store:
//
//	<cluster>/<id>/objects.tar.gz.age  the objects, as JSON in a tar, gzip, age
//	<cluster>/<id>/manifest.json       what is inside (names, never values)
//	                                   and the archive's SHA-256; written last
//
// The manifest names objects but holds no data. Inside the archive,
// index.json has the SHA-256 of every object file; Restore checks both
// checksums before applying anything.
package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FormatVersion is the version of the backup layout.
const FormatVersion = 1

// File names inside a backup.
const (
	ManifestFile = "manifest.json"
	ArchiveFile  = "objects.tar.gz.age"
	indexFile    = "index.json"
)

// idLayout formats a backup's ID from its creation time: sortable, UTC.
const idLayout = "20060102T150405Z"

// Manifest describes one backup. It is stored in plaintext and holds no
// object data.
type Manifest struct {
	Format  int       `json:"format"`
	Cluster string    `json:"cluster"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Resources backed up, as resource[.group].
	Resources []string `json:"resources"`
	// Recipients the archive is encrypted to (public keys).
	Recipients []string `json:"recipients"`
	// Objects names every object in the archive.
	Objects []ObjectRef `json:"objects"`
	// ArchiveSHA256 and ArchiveSize are of the encrypted archive.
	ArchiveSHA256 string `json:"archiveSHA256"`
	ArchiveSize   int    `json:"archiveSize"`
}

// ObjectRef names one object.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Resource  string `json:"resource"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r ObjectRef) String() string {
	gr := r.Resource
	if r.Group != "" {
		gr += "." + r.Group
	}
	if r.Namespace != "" {
		return gr + " " + r.Namespace + "/" + r.Name
	}
	return gr + " " + r.Name
}

// GVR is the object's resource.
func (r ObjectRef) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
}

// file is where the object lives in the archive.
func (r ObjectRef) file() string {
	ns := r.Namespace
	if ns == "" {
		ns = "_cluster"
	}
	group := r.Group
	if group == "" {
		group = "core"
	}
	return path.Join("objects", group, r.Resource, ns, r.Name+".json")
}

// Dir is the backup's directory in its store.
func (m Manifest) Dir() string { return m.Cluster + "/" + m.ID }

// indexEntry is one object file of the archive and its checksum.
type indexEntry struct {
	ObjectRef
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// Object is an object as backed up: cleaned of what belongs to the source
// cluster (see Clean).
type Object struct {
	Ref    ObjectRef
	Object *unstructured.Unstructured
}

// Clean strips what only makes sense in the cluster an object came from:
// uid, resourceVersion, generation, creation time, managed fields, owner
// references (their uids would not exist in a new cluster, and the
// garbage collector would delete the object), status and kubectl's
// last-applied annotation (a plaintext copy of the object).
func Clean(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "ownerReferences", "selfLink"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	if a := c.GetAnnotations(); a != nil {
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
		if len(a) == 0 {
			a = nil
		}
		c.SetAnnotations(a)
	}
	return c
}

// seal builds the encrypted archive of objects for recipients and returns
// it with the manifest's object list.
func seal(objects []Object, recipients []age.Recipient) ([]byte, []ObjectRef, error) {
	sort.Slice(objects, func(i, j int) bool { return objects[i].Ref.file() < objects[j].Ref.file() })
	var plain bytes.Buffer
	gz := gzip.NewWriter(&plain)
	tw := tar.NewWriter(gz)
	index := make([]indexEntry, 0, len(objects))
	refs := make([]ObjectRef, 0, len(objects))
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, o := range objects {
		data, err := json.Marshal(o.Object.Object)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", o.Ref, err)
		}
		index = append(index, indexEntry{ObjectRef: o.Ref, File: o.Ref.file(), SHA256: sha256Hex(data)})
		refs = append(refs, o.Ref)
		if err := add(o.Ref.file(), data); err != nil {
			return nil, nil, err
		}
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return nil, nil, err
	}
	if err := add(indexFile, idx); err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, nil, err
	}
	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, recipients...)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypting: %w", err)
	}
	if _, err := w.Write(plain.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("encrypting: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, nil, fmt.Errorf("encrypting: %w", err)
	}
	return sealed.Bytes(), refs, nil
}

// maxArchive bounds what open reads from a decrypted archive (and each
// object in it): a backup is Secrets and a few kinds, not gigabytes.
const maxArchive = 1 << 30

// open decrypts an archive with identities, checks every object against
// index.json, and returns the objects.
func open(sealed []byte, identities []age.Identity) ([]Object, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), identities...)
	if err != nil {
		return nil, fmt.Errorf("decrypting the archive: %w", err)
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(gz, maxArchive))
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", h.Name, err)
		}
		files[h.Name] = data
	}
	var index []indexEntry
	if err := json.Unmarshal(files[indexFile], &index); err != nil {
		return nil, fmt.Errorf("archive %s: %w", indexFile, err)
	}
	out := make([]Object, 0, len(index))
	for _, e := range index {
		data, ok := files[e.File]
		if !ok {
			return nil, fmt.Errorf("archive: %s listed in the index is missing", e.File)
		}
		if sha256Hex(data) != e.SHA256 {
			return nil, fmt.Errorf("archive: %s does not match its checksum", e.File)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("archive %s: %w", e.File, err)
		}
		out = append(out, Object{Ref: e.ObjectRef, Object: u})
	}
	return out, nil
}

// Latest returns the manifest of the newest complete backup of cluster in
// store; ErrNotFound when there is none.
func Latest(ctx context.Context, store Store, cluster string) (Manifest, error) {
	ms, err := List(ctx, store, cluster)
	if err != nil {
		return Manifest{}, err
	}
	if len(ms) == 0 {
		return Manifest{}, fmt.Errorf("no backup of cluster %s in %s: %w", cluster, store, ErrNotFound)
	}
	return ms[len(ms)-1], nil
}

// List returns the manifests of the complete backups of cluster, oldest
// first. A backup without a manifest (interrupted) is not listed.
func List(ctx context.Context, store Store, cluster string) ([]Manifest, error) {
	names, err := store.List(ctx, cluster+"/")
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, n := range names {
		if path.Base(n) != ManifestFile {
			continue
		}
		m, err := ReadManifest(ctx, store, n)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ReadManifest reads and checks a manifest by its name in the store.
func ReadManifest(ctx context.Context, store Store, name string) (Manifest, error) {
	data, err := store.Get(ctx, name)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", name, err)
	}
	if m.Format != FormatVersion {
		return Manifest{}, fmt.Errorf("%s: format %d, this bosun reads %d", name, m.Format, FormatVersion)
	}
	return m, nil
}

// Find returns the manifest of backup id of cluster ("" or "latest" for
// the newest).
func Find(ctx context.Context, store Store, cluster, id string) (Manifest, error) {
	if id == "" || id == "latest" {
		return Latest(ctx, store, cluster)
	}
	m, err := ReadManifest(ctx, store, cluster+"/"+id+"/"+ManifestFile)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s of cluster %s in %s: %w", id, cluster, store, err)
	}
	return m, nil
}

// Load reads a backup's archive, checks it against its manifest, and
// decrypts it with identities.
func Load(ctx context.Context, store Store, m Manifest, identities []age.Identity) ([]Object, error) {
	sealed, err := store.Get(ctx, m.Dir()+"/"+ArchiveFile)
	if err != nil {
		return nil, err
	}
	if sha256Hex(sealed) != m.ArchiveSHA256 || len(sealed) != m.ArchiveSize {
		return nil, fmt.Errorf("backup %s: the archive does not match the manifest's checksum (corrupt or replaced)", m.Dir())
	}
	return open(sealed, identities)
}

// Prune deletes the oldest complete backups of cluster beyond keep, and
// the files of interrupted backups older than the newest complete one.
// It returns the IDs it deleted.
func Prune(ctx context.Context, store Store, cluster string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("keep %d: expected at least 1", keep)
	}
	names, err := store.List(ctx, cluster+"/")
	if err != nil {
		return nil, err
	}
	complete := map[string]bool{}
	byID := map[string][]string{}
	for _, n := range names {
		rest := strings.TrimPrefix(n, cluster+"/")
		id, file, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		byID[id] = append(byID[id], n)
		if file == ManifestFile {
			complete[id] = true
		}
	}
	var ids, done []string
	for id := range complete {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	newest := ""
	if len(ids) > 0 {
		newest = ids[len(ids)-1]
	}
	drop := map[string]bool{}
	if len(ids) > keep {
		for _, id := range ids[:len(ids)-keep] {
			drop[id] = true
		}
	}
	for id := range byID {
		if !complete[id] && id < newest {
			drop[id] = true
		}
	}
	for id := range drop {
		// The manifest goes first: a backup half deleted is then
		// incomplete, not corrupt.
		files := byID[id]
		sort.SliceStable(files, func(i, j int) bool {
			return path.Base(files[i]) == ManifestFile && path.Base(files[j]) != ManifestFile
		})
		for _, f := range files {
			if err := store.Delete(ctx, f); err != nil {
				return done, err
			}
		}
		done = append(done, id)
	}
	sort.Strings(done)
	return done, nil
}

// lastChange is when an object was last written: the newest time of its
// managed fields, or its creation.
func lastChange(u *unstructured.Unstructured) time.Time {
	t := u.GetCreationTimestamp().Time
	for _, mf := range u.GetManagedFields() {
		if mf.Time != nil && mf.Time.After(t) {
			t = mf.Time.Time
		}
	}
	return t
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
