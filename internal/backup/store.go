package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bosun-platform/bosun/internal/atomicfile"
)

// ErrNotFound is returned when the store has no object of that name.
var ErrNotFound = errors.New("not found")

// Store keeps backup files by slash-separated name. Backups are written
// file by file with the manifest last, so a backup whose manifest is
// missing was interrupted and is ignored.
type Store interface {
	// Put writes name whole, replacing it; a reader sees the old or the
	// new content, never a part.
	Put(ctx context.Context, name string, data []byte) error
	// Get reads name; ErrNotFound when it does not exist.
	Get(ctx context.Context, name string) ([]byte, error)
	// List returns the names under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes name; deleting what is not there is not an error.
	Delete(ctx context.Context, name string) error
	// String names the store for people (a directory or s3:// URL).
	String() string
}

// OpenStore opens "s3://bucket/prefix" (aws-sdk-go-v2's default
// credential chain and region; AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
// point it elsewhere) or a local directory (created 0700 if missing).
func OpenStore(ctx context.Context, location string) (Store, error) {
	if rest, ok := strings.CutPrefix(location, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("backup location %q: expected s3://bucket/prefix", location)
		}
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("backup location %s: AWS configuration: %w", location, err)
		}
		return NewS3Store(s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), bucket, prefix), nil
	}
	if strings.Contains(location, "://") {
		return nil, fmt.Errorf("backup location %q: expected a directory or s3://bucket/prefix", location)
	}
	if location == "" {
		return nil, errors.New("backup location: expected a directory or s3://bucket/prefix")
	}
	if err := os.MkdirAll(location, 0o700); err != nil {
		return nil, fmt.Errorf("backup location: %w", err)
	}
	return DirStore{Dir: location}, nil
}

// DirStore keeps files under a local directory, each written atomically
// with mode 0600.
type DirStore struct{ Dir string }

func (d DirStore) path(name string) (string, error) {
	clean := path.Clean("/" + name)[1:]
	if clean == "" || clean != name {
		return "", fmt.Errorf("backup file name %q: expected a clean relative path", name)
	}
	return filepath.Join(d.Dir, filepath.FromSlash(clean)), nil
}

// Put implements Store.
func (d DirStore) Put(_ context.Context, name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, data, 0o600)
}

// Get implements Store.
func (d DirStore) Get(_ context.Context, name string) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p) //nolint:gosec // G304: a file of the store the user named
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return b, err
}

// List implements Store.
func (d DirStore) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(d.Dir, p)
		if err != nil {
			return err
		}
		if name := filepath.ToSlash(rel); strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Delete implements Store.
func (d DirStore) Delete(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d DirStore) String() string { return d.Dir }

// S3API is the part of the S3 client a store uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// S3Store keeps files as objects under a bucket's prefix. Objects are
// written with server-side encryption on top of age's.
type S3Store struct {
	client S3API
	bucket string
	prefix string
}

// NewS3Store stores under s3://bucket/prefix.
func NewS3Store(client S3API, bucket, prefix string) *S3Store {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3Store{client: client, bucket: bucket, prefix: prefix}
}

// Put implements Store.
func (s *S3Store) Put(ctx context.Context, name string, data []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + name), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ServerSideEncryption: s3types.ServerSideEncryptionAes256,
	})
	if err != nil {
		return fmt.Errorf("s3 put %s: %w", s.prefix+name, err)
	}
	return nil
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, name string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + name)})
	if err != nil {
		var nsk *s3types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("s3 get %s: %w", s.prefix+name, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// List implements Store.
func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix)}
	for {
		page, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("s3 list %s: %w", s.prefix+prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, strings.TrimPrefix(aws.ToString(o.Key), s.prefix))
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.ContinuationToken = page.NextContinuationToken
	}
	sort.Strings(out)
	return out, nil
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, name string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + name)})
	if err != nil {
		return fmt.Errorf("s3 delete %s: %w", s.prefix+name, err)
	}
	return nil
}

func (s *S3Store) String() string { return "s3://" + s.bucket + "/" + s.prefix }
