// Package render turns a fleet into plain manifests per cluster: config
// item defaults merged under the cluster's own items (L41), templates
// executed with sprig, include and required, and the output parsed into
// objects with their rendered file and line. Rendering is deterministic and
// every result carries a version hash of its output (L01).
package render

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// maxIncludeDepth stops include recursion, which would otherwise loop
// forever on a snippet that includes itself.
const maxIncludeDepth = 64

// Data is what templates see as ".".
type Data struct {
	// Cluster is the cluster, with ConfigItems already merged over defaults.
	Cluster *fleet.Cluster
	// Config is the cluster's merged config items (same as Cluster.ConfigItems).
	Config map[string]string
	// NodePools are the cluster's node pools.
	NodePools []fleet.NodePool
	// Vars are the cluster's vars: vars/_all.yaml deep-merged with vars/<id>.yaml.
	Vars map[string]any
}

// Result is one cluster's rendered output.
type Result struct {
	// Cluster is a copy of the cluster with merged config items.
	Cluster *fleet.Cluster
	// Files are the rendered manifest files that produced any output, in
	// path order.
	Files []File
	// Objects are the rendered objects in file, then document order.
	Objects []*Object
	// Deletions are the objects to delete before and after apply.
	Deletions Deletions
	// Version is a hash of the rendered output: it changes exactly when the
	// output (files or deletions) changes.
	Version string
}

// File is the output of one manifest template.
type File struct {
	// Path is the template's path, e.g. manifests/coredns/deployment.yaml.
	Path string
	// Component is the directory under manifests/.
	Component string
	// Content is the rendered text.
	Content string
}

// Object is one rendered Kubernetes object.
type Object struct {
	// Component is the directory under manifests/ the object came from.
	Component string
	// File is the template path; Line is the object's first line in the
	// rendered output of that file (as `bosun render --out` writes it).
	File string
	// Line is 1-based.
	Line int
	// Object is the parsed object.
	Object *unstructured.Unstructured
}

// Deletions lists objects to delete around apply.
type Deletions struct {
	// Before are deleted before anything is applied.
	Before []Deletion `yaml:"before" json:"before,omitempty"`
	// After are deleted once everything is applied.
	After []Deletion `yaml:"after" json:"after,omitempty"`
}

// Deletion names one object to delete.
type Deletion struct {
	// APIVersion of the object, e.g. apps/v1.
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	// Kind of the object.
	Kind string `yaml:"kind" json:"kind"`
	// Namespace is empty for cluster-scoped objects.
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// Name of the object.
	Name string `yaml:"name" json:"name"`
}

// Renderer renders the clusters of one fleet. Templates are parsed once;
// Cluster may be called for any number of clusters, also concurrently.
type Renderer struct {
	fleet *fleet.Fleet
	base  *template.Template
}

// New parses the fleet's templates.
func New(f *fleet.Fleet) (*Renderer, error) {
	base := template.New("").Funcs(fleet.TemplateFuncs()).Option("missingkey=error")
	files := append([]*fleet.File{}, f.Snippets...)
	files = append(files, f.Manifests...)
	if f.Defaults != nil {
		files = append(files, f.Defaults)
	}
	if f.Deletions != nil {
		files = append(files, f.Deletions)
	}
	for _, file := range files {
		if _, err := base.New(file.Path).Parse(file.Content); err != nil {
			return nil, fmt.Errorf("parsing %s, %w", file.Path, err)
		}
	}
	return &Renderer{fleet: f, base: base}, nil
}

// All renders every cluster of the fleet, in ID order. Clusters render in
// parallel, at most GOMAXPROCS at a time; the result does not depend on it.
// On failure it returns the errors of every failing cluster, in ID order.
// Once ctx is done it stops within one template function call or write
// and returns an error wrapping ctx's cause.
func (r *Renderer) All(ctx context.Context) ([]*Result, error) {
	n := len(r.fleet.Clusters)
	out := make([]*Result, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = r.Cluster(ctx, r.fleet.Clusters[i].ID)
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, stopped(ctx)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// stopped is the error of a render that ctx cancelled.
func stopped(ctx context.Context) error {
	return fmt.Errorf("rendering stopped, %w", context.Cause(ctx))
}

// Cluster renders the cluster with id. Its output is bounded: no object
// over MaxObjectBytes, no more than MaxClusterBytes in all (a
// *LimitError). Once ctx is done it stops within one template function
// call or write and returns an error wrapping ctx's cause.
func (r *Renderer) Cluster(ctx context.Context, id string) (*Result, error) {
	src := r.fleet.Cluster(id)
	if src == nil {
		return nil, fmt.Errorf("cluster %q: not in fleet %s", id, r.fleet.Dir)
	}
	if ctx.Err() != nil {
		return nil, stopped(ctx)
	}
	left := &budget{left: MaxClusterBytes}
	t, err := r.templates(ctx, left)
	if err != nil {
		return nil, err
	}
	c := *src
	vars := r.fleet.Vars[id]
	if vars == nil {
		vars = map[string]any{}
	}
	config, err := r.config(ctx, t, left, &c, vars)
	if err != nil {
		return nil, err
	}
	c.ConfigItems = config
	data := &Data{Cluster: &c, Config: config, NodePools: c.NodePools, Vars: vars}
	res := &Result{Cluster: &c}
	for _, m := range r.fleet.Manifests {
		text, err := execute(ctx, t, left, m.Path, data)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", id, err)
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		objs, err := parseObjects(ctx, m, text)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", id, err)
		}
		if len(objs) == 0 {
			continue
		}
		res.Files = append(res.Files, File{Path: m.Path, Component: m.Component, Content: text})
		res.Objects = append(res.Objects, objs...)
	}
	if r.fleet.Deletions != nil {
		if res.Deletions, err = r.deletions(ctx, t, left, data); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", id, err)
		}
	}
	res.Version = version(res)
	return res, nil
}

// templates clones the parsed set, binds the functions to ctx and the
// limits (funcs.go), and include to the clone. The output of include
// counts against left.
func (r *Renderer) templates(ctx context.Context, left *budget) (*template.Template, error) {
	t, err := r.base.Clone()
	if err != nil {
		return nil, fmt.Errorf("cloning templates, %w", err)
	}
	t.Funcs(boundFuncs(ctx, fleet.TemplateFuncs()))
	depth := 0
	t.Funcs(template.FuncMap{"include": func(name string, data any) (string, error) {
		if depth >= maxIncludeDepth {
			return "", fmt.Errorf("include %q: nested more than %d deep", name, maxIncludeDepth)
		}
		if t.Lookup(name) == nil {
			return "", fmt.Errorf("no template %q: define it in a file under snippets/", name)
		}
		depth++
		defer func() { depth-- }()
		b := newLimitedBuffer(ctx, name, left)
		b.objects = false
		if err := t.ExecuteTemplate(b, name, data); err != nil {
			return "", err
		}
		return b.String(), nil
	}})
	return t, nil
}

// config merges the rendered defaults under the cluster's own items (L41).
func (r *Renderer) config(ctx context.Context, t *template.Template, left *budget, c *fleet.Cluster, vars map[string]any) (map[string]string, error) {
	merged := map[string]string{}
	if r.fleet.Defaults != nil {
		text, err := execute(ctx, t, left, r.fleet.Defaults.Path, map[string]any{"Cluster": c, "Vars": vars})
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.ID, err)
		}
		dec := yaml.NewDecoder(strings.NewReader(text))
		if err := dec.Decode(&merged); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("cluster %s: %s: expected a map of config item names to string values, %w", c.ID, r.fleet.Defaults.Path, err)
		}
	}
	for k, v := range c.ConfigItems {
		merged[k] = v
	}
	return merged, nil
}

func (r *Renderer) deletions(ctx context.Context, t *template.Template, left *budget, data *Data) (Deletions, error) {
	var d Deletions
	path := r.fleet.Deletions.Path
	text, err := execute(ctx, t, left, path, data)
	if err != nil {
		return d, err
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return d, fmt.Errorf("%s (rendered): expected before: and after: lists of {apiVersion, kind, namespace, name}, %w", path, err)
	}
	for _, list := range [][]Deletion{d.Before, d.After} {
		for _, del := range list {
			if del.APIVersion == "" || del.Kind == "" || del.Name == "" {
				return d, fmt.Errorf("%s (rendered): deletion %+v: apiVersion, kind and name are required", path, del)
			}
		}
	}
	return d, nil
}

var execError = regexp.MustCompile(`^template: ([^:]+):([0-9]+):[0-9]+: (?:executing "[^"]*" at <([^>]*)>: )?(.*)$`)

// execute runs one template into a limitedBuffer and turns its errors
// into file:line messages.
func execute(ctx context.Context, t *template.Template, left *budget, name string, data any) (string, error) {
	b := newLimitedBuffer(ctx, name, left)
	if err := t.ExecuteTemplate(b, name, data); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: %w", name, stopped(ctx))
		}
		var limit *LimitError
		if errors.As(err, &limit) {
			return "", limit
		}
		msg := err.Error()
		// Template errors nest through include; report the innermost.
		if i := strings.LastIndex(msg, "template: "); i > 0 {
			msg = msg[i:]
		}
		if m := execError.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[2])
			detail := m[4]
			if strings.Contains(detail, "map has no entry for key") {
				detail = "missing key: " + strings.TrimPrefix(detail, "map has no entry for key ")
			}
			if m[3] != "" {
				detail = fmt.Sprintf("%s: %s", m[3], detail)
			}
			return "", fmt.Errorf("%s:%d: %s", m[1], line, detail)
		}
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return b.String(), nil
}

// parseObjects parses the documents of one rendered file.
func parseObjects(ctx context.Context, m *fleet.File, text string) ([]*Object, error) {
	var out []*Object
	dec := yaml.NewDecoder(strings.NewReader(text))
	for {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, stopped(ctx))
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s (rendered): invalid YAML, %w", m.Path, err)
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue
		}
		node := doc.Content[0]
		raw, err := decodeValue(node)
		if err != nil {
			return nil, fmt.Errorf("%s:%d (rendered): %w", m.Path, node.Line, err)
		}
		obj, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s:%d (rendered): expected a Kubernetes object (a map), got %s", m.Path, node.Line, node.ShortTag())
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s:%d (rendered): object needs apiVersion, kind and metadata.name", m.Path, node.Line)
		}
		out = append(out, &Object{Component: m.Component, File: m.Path, Line: node.Line, Object: u})
	}
}

// normalize converts YAML-decoded values to the JSON-compatible types
// unstructured objects require (int64, float64, map[string]any).
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			x[k] = normalize(val)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = normalize(val)
		}
		return m
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	case int:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return float64(x) // as encoding/json would; int64 would wrap negative
	case float32:
		return float64(x)
	default:
		return v
	}
}

// version hashes the output: rendered files and deletions, and the
// cluster's spec (hashSpec).
func version(res *Result) string {
	h := sha256.New()
	hashSpec(h, res.Cluster)
	for _, f := range res.Files {
		fmt.Fprintf(h, "file %s %d\n%s\n", f.Path, len(f.Content), f.Content)
	}
	for _, list := range [][]Deletion{res.Deletions.Before, res.Deletions.After} {
		fmt.Fprintf(h, "deletions %d\n", len(list))
		for _, d := range list {
			fmt.Fprintf(h, "%s %s %s %s\n", d.APIVersion, d.Kind, d.Namespace, d.Name)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
