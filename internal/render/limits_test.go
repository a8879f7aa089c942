package render

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// repeat, the function of the report, is refused before it allocates: the
// error names the template's file:line and call, and what the limit is.
func TestRepeatIsRefusedBeforeItAllocates(t *testing.T) {
	var err error
	n := allocated(func() {
		_, err = renderOne(t, map[string]string{"manifests/app/a.yaml": cm + `  x: {{ repeat 20000000 "x" }}` + "\n"})
	})
	want := `manifests/app/a.yaml:6: repeat 20000000 "x": error calling repeat: the result would be 20000000 bytes, over 1.5 MiB (1572864 bytes), the most one object may be`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if n > 10<<20 {
		t.Errorf("rendering allocated %d MB, want the call refused before it allocates", n>>20)
	}
}

// Every function whose result can outgrow its arguments is bounded before
// the call, and no function returns a string or list over the limits, so
// doubling a value in a loop stops at the limit.
func TestFunctionsAreBounded(t *testing.T) {
	cases := []struct{ name, template, want string }{
		{"indent", `{{ indent 100000000 "a\nb" }}`, "error calling indent: the result would be"},
		{"nindent", `{{ nindent 100000000 "a" }}`, "error calling nindent: the result would be"},
		{"replace", `{{ replace "" (repeat 1000000 "y") (repeat 1000 "x") }}`, "error calling replace: the result would be"},
		{"wrapWith", `{{ wrapWith 1 (repeat 100000 "y") (repeat 1000 "x") }}`, "error calling wrapWith: the result would be"},
		{"until", `{{ until 1000000000 }}`, "error calling until: the result would be"},
		{"untilStep", `{{ untilStep 0 1000000000 1 }}`, "error calling untilStep: the result would be"},
		{"seq", `{{ seq 1000000000 }}`, "error calling seq: the result would be"},
		{"regexReplaceAll", `{{ regexReplaceAll "" (repeat 100000 "x") (repeat 100 "y") }}`, "error calling regexReplaceAll: the result would be"},
		{"printf width", `{{ printf "%1000000d%1000000d" 1 2 }}`, "error calling printf: the result would be"},
		{"join", `{{ join (repeat 100000 "y") (until 100) }}`, "error calling join: the result would be"},
		{"cat doubling", `{{ $s := "xxxxxxxx" }}{{ range until 40 }}{{ $s = cat $s $s }}{{ end }}`, "error calling cat: its arguments would take more than 1.5 MiB"},
		{"print doubling", `{{ $s := "xxxxxxxx" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}`, "error calling print: its arguments would take more than"},
		{"list nesting", `{{ $l := list 1 }}{{ range until 40 }}{{ $l = list $l $l }}{{ end }}{{ toYaml $l }}`, "error calling list: its arguments would take more than"},
		{"splitList", `{{ splitList "" (repeat 1000000 "x") }}`, "error calling splitList: the result has 1000000 elements, over 786432, the most one object may hold"},
		{"concat doubling", `{{ $l := until 1000 }}{{ range until 40 }}{{ $l = concat $l $l }}{{ end }}`, "error calling concat: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			n := allocated(func() {
				_, err = renderOne(t, map[string]string{"manifests/app/a.yaml": cm + "  x: |\n    " + c.template + "\n"})
			})
			if err == nil || !strings.Contains(err.Error(), "manifests/app/a.yaml:7: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant manifests/app/a.yaml:7: ...%s", err, c.want)
			}
			if n > 64<<20 {
				t.Errorf("rendering allocated %d MB", n>>20)
			}
		})
	}
}

// The functions still work below the limits.
func TestFunctionsWorkBelowTheLimits(t *testing.T) {
	res, err := renderOne(t, map[string]string{"manifests/app/a.yaml": cm +
		`  a: {{ repeat 3 "ab" }}
  b: {{ printf "%05d-%s" 42 (join "," (until 3)) }}
  c: {{ replace "a" "b" "aaa" }}
  d: {{ seq 3 | quote }}
  e: {{ list 1 (dict "k" "v") | toJson | quote }}
  f: {{ regexReplaceAll "(a)" "xax" "${1}$1" }}
`})
	if err != nil {
		t.Fatal(err)
	}
	data, _, _ := unstructuredData(res)
	want := map[string]any{"a": "ababab", "b": "00042-0,1,2", "c": "bbb", "d": "1 2 3", "e": `[1,{"k":"v"}]`, "f": "xaax"}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("data.%s = %#v, want %#v", k, data[k], v)
		}
	}
}

// bigConfigMap returns a ConfigMap named name whose one value is size bytes.
func bigConfigMap(name string, size int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  x: %s\n", name, strings.Repeat("x", size))
}

// An object the API server would refuse is reported with its file:line
// (rendered) and kind and name; objects below the limit render, however
// many of them a file holds.
func TestObjectLimit(t *testing.T) {
	small := bigConfigMap("small", 1000)
	_, err := renderOne(t, map[string]string{"manifests/app/a.yaml": small + "---\n" + bigConfigMap("big", MaxObjectBytes)})
	var limit *LimitError
	if !errors.As(err, &limit) {
		t.Fatalf("got %v, want a *LimitError", err)
	}
	want := "manifests/app/a.yaml:8 (rendered): object ConfigMap big is over 1.5 MiB (1572864 bytes) of YAML; the API server refuses objects over about 1.5 MiB"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if !strings.HasPrefix(err.Error(), "cluster c1: ") {
		t.Errorf("the error does not name the cluster: %v", err)
	}
	three := bigConfigMap("a", MaxObjectBytes/2) + "---\n" + bigConfigMap("b", MaxObjectBytes/2) + "---\n" + bigConfigMap("c", MaxObjectBytes/2)
	res, err := renderOne(t, map[string]string{"manifests/app/a.yaml": three})
	if err != nil || len(res.Objects) != 3 {
		t.Errorf("three objects of 0.75 MiB: %v", err)
	}
}

// A template that writes without end stops at the cluster's limit.
func TestClusterLimit(t *testing.T) {
	tpl := `{{ range until 1000 }}---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{{ . }}
data:
  x: {{ repeat 100000 "x" }}
{{ end }}`
	var err error
	n := allocated(func() { _, err = renderOne(t, map[string]string{"manifests/app/a.yaml": tpl}) })
	var limit *LimitError
	if !errors.As(err, &limit) || limit.Limit != MaxClusterBytes {
		t.Fatalf("got %v, want the cluster limit", err)
	}
	want := "manifests/app/a.yaml: the cluster's rendered output is over 32 MiB (33554432 bytes)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if n > 8*MaxClusterBytes {
		t.Errorf("rendering allocated %d MB", n>>20)
	}
}

// include's output counts against the cluster's limit too.
func TestIncludeIsBounded(t *testing.T) {
	_, err := renderOne(t, map[string]string{
		"snippets/big.tpl":     `{{ define "big" }}{{ range until 1000 }}{{ repeat 100000 "x" }}{{ end }}{{ end }}`,
		"manifests/app/a.yaml": cm + `  x: {{ include "big" . | len }}` + "\n",
	})
	var limit *LimitError
	if !errors.As(err, &limit) || limit.Limit != MaxClusterBytes || limit.File != "big" {
		t.Errorf("got %v, want the cluster limit in big", err)
	}
}

// limitedBuffer finds document separators however the writes split them.
func TestLimitedBufferFollowsDocuments(t *testing.T) {
	text := "a: 1\n---\nb: 2\n--- # c\nc: 3\n---x: no separator\n----\n"
	for size := 1; size <= len(text); size++ {
		w := newLimitedBuffer(context.Background(), "f", &budget{left: MaxClusterBytes})
		for i := 0; i < len(text); i += size {
			if _, err := w.Write([]byte(text[i:min(i+size, len(text))])); err != nil {
				t.Fatal(err)
			}
		}
		if w.docLine != 4 || w.line != 8 || w.String() != text {
			t.Errorf("writes of %d bytes: document at line %d, %d lines, want 4 and 8", size, w.docLine, w.line)
		}
	}
}

// countdownContext is cancelled after its Err has been asked n times:
// cancellation at a deterministic point inside a render.
type countdownContext struct {
	context.Context
	n atomic.Int64
}

func (c *countdownContext) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func (c *countdownContext) Done() <-chan struct{} { return nil }

func (c *countdownContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// A render stops inside a template once its context is done, and says so.
func TestClusterStopsWhenCancelled(t *testing.T) {
	r, err := New(mapFleet(t, map[string]string{
		"manifests/app/a.yaml": cm + "  x: '{{ range until 300 }}{{ range until 300 }}.{{ end }}{{ end }}'\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := &countdownContext{Context: context.Background()}
	ctx.n.Store(50)
	_, err = r.Cluster(ctx, "c1")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rendering stopped") {
		t.Errorf("got %v, want rendering stopped, context canceled", err)
	}
	if left := ctx.n.Load(); left < -5 {
		t.Errorf("the render went on for %d checks after the cancellation", -left)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.All(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("All: got %v, want context canceled", err)
	}
}
