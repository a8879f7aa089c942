package render

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
)

// Limits on what rendering produces (issue 18). Templates are programs:
// without limits `{{ repeat 500000000 "x" }}` made `bosun lint` die out of
// memory at 5.7 GB.
const (
	// MaxObjectBytes is the most rendered YAML one object may take, and the
	// largest string a template function may return: 1.5 MiB, etcd's
	// default request limit, past which the API server refuses to store
	// an object.
	MaxObjectBytes = 1536 << 10
	// MaxClusterBytes is the most text templates may produce for one
	// cluster: its manifests, defaults and deletions together, the output
	// of include counting where it is included and again where it is
	// written.
	MaxClusterBytes = 32 << 20
	// maxItems is the most elements a list or dict returned by a template
	// function may have: as YAML, every element takes at least 2 bytes.
	maxItems = MaxObjectBytes / 2
)

// LimitError reports rendered output over one of the limits.
type LimitError struct {
	// File is the template whose output is over the limit.
	File string
	// Line is the first line of the object in the rendered output of File
	// (0 for the cluster limit).
	Line int
	// Object is kind and name of the object, when they could be read.
	Object string
	// Limit is MaxObjectBytes or MaxClusterBytes.
	Limit int
}

// Error says what is over which limit, and why the limit is there.
func (e *LimitError) Error() string {
	if e.Limit == MaxClusterBytes {
		return fmt.Sprintf("%s: the cluster's rendered output is over %s (%d bytes), the most bosun renders for one cluster; render less, e.g. split the cluster's components", e.File, mib(e.Limit), e.Limit)
	}
	what := "object"
	if e.Object != "" {
		what = "object " + e.Object
	}
	return fmt.Sprintf("%s:%d (rendered): %s is over %s (%d bytes) of YAML; the API server refuses objects over about 1.5 MiB (etcd's request limit): move the data out of the manifest or split the object", e.File, e.Line, what, mib(e.Limit), e.Limit)
}

func mib(n int) string {
	return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20))
}

// budget is what is left of MaxClusterBytes for one cluster.
type budget struct{ left int }

// limitedBuffer collects a template's output. It refuses a write once
// ctx is done, once the cluster's budget is spent, and once one YAML
// document (text between "---" lines) exceeds MaxObjectBytes; the
// template stops with that error. Each write is checked before it is
// kept, so a template never buffers more than the limits.
type limitedBuffer struct {
	ctx    context.Context
	file   string
	budget *budget
	buf    bytes.Buffer
	err    error
	// objects is false for the output of include, which is checked where
	// it is written.
	objects bool

	// line is the current line of output, 1-based.
	line int
	// head holds the first bytes of the current line, up to 4, to spot
	// a document separator; headDone once they are known.
	head     [4]byte
	headN    int
	headDone bool
	// docLine and docOffset are where the current document starts;
	// docBytes counts its bytes so far.
	docLine, docOffset, docBytes int
}

func newLimitedBuffer(ctx context.Context, file string, b *budget) *limitedBuffer {
	return &limitedBuffer{ctx: ctx, file: file, budget: b, objects: true, line: 1, docLine: 1}
}

// Write keeps p, or refuses it with the limit it would exceed.
func (w *limitedBuffer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = stopped(w.ctx)
		return 0, w.err
	}
	if len(p) > w.budget.left {
		w.err = &LimitError{File: w.file, Limit: MaxClusterBytes}
		return 0, w.err
	}
	start := w.buf.Len()
	w.buf.Write(p)
	w.budget.left -= len(p)
	if !w.objects {
		return len(p), nil
	}
	w.scan(start)
	w.checkDoc()
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// checkDoc fails the buffer when the current document is too large.
func (w *limitedBuffer) checkDoc() {
	if w.err == nil && w.docBytes > MaxObjectBytes {
		w.err = &LimitError{File: w.file, Line: w.docLine, Limit: MaxObjectBytes, Object: guessObject(w.buf.Bytes()[w.docOffset:])}
	}
}

// String returns the output.
func (w *limitedBuffer) String() string { return w.buf.String() }

// scan follows lines and documents through the bytes written from
// offset start on, in time linear in their number.
func (w *limitedBuffer) scan(start int) {
	data := w.buf.Bytes()
	for i := start; i < len(data) && w.err == nil; {
		if !w.headDone {
			c := data[i]
			i++
			w.docBytes++
			if c == '\n' {
				w.endHead(i - 1 - w.headN)
				w.line++
				w.headN, w.headDone = 0, false
				continue
			}
			w.head[w.headN] = c
			w.headN++
			if w.headN == len(w.head) {
				w.endHead(i - w.headN)
			}
			continue
		}
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			w.docBytes += len(data) - i
			return
		}
		w.docBytes += j + 1
		i += j + 1
		w.line++
		w.headN, w.headDone = 0, false
	}
}

// endHead decides whether the current line, starting at offset lineStart,
// is a document separator: "---" alone or followed by a blank.
func (w *limitedBuffer) endHead(lineStart int) {
	w.headDone = true
	h := w.head[:w.headN]
	if !bytes.HasPrefix(h, []byte("---")) || len(h) == 4 && h[3] != ' ' && h[3] != '\t' && h[3] != '\r' {
		return
	}
	// A write may hold several documents: check the one that ends here.
	w.docBytes -= w.headN
	w.checkDoc()
	w.docLine, w.docOffset, w.docBytes = w.line+1, lineStart, w.headN
	if len(h) == 4 {
		w.docLine = w.line
	}
}

var (
	kindLine = regexp.MustCompile(`(?m)^kind:[ \t]*["']?([A-Za-z0-9]+)`)
	nameLine = regexp.MustCompile(`(?m)^[ \t]+name:[ \t]*["']?([-.a-z0-9]+)`)
)

// guessObject reads kind and name from the start of a document too large
// to parse, for the error message; it returns "" when it cannot.
func guessObject(doc []byte) string {
	doc = doc[:min(len(doc), 64<<10)]
	kind, name := kindLine.FindSubmatch(doc), nameLine.FindSubmatch(doc)
	if kind == nil || name == nil {
		return ""
	}
	return fmt.Sprintf("%s %s", kind[1], name[1])
}
