package render

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// yamlV3Value is what parseObjects did before decodeValue: yaml.v3's
// Node.Decode, then normalize. Timestamps become the string JSON encodes
// them as, which decodeValue stores (unstructured objects hold no
// time.Time).
func yamlV3Value(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return jsonTimes(normalize(v)), nil
}

func jsonTimes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			x[k] = jsonTimes(val)
		}
	case []any:
		for i := range x {
			x[i] = jsonTimes(x[i])
		}
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

func parseDoc(t testing.TB, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return &doc
}

// decodeValue gives the values yaml.v3 gives, for every kind of node.
func TestDecodeValueMatchesYAMLv3(t *testing.T) {
	docs := []string{
		"a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: text\ng: '1'\nh: \"x\"\ni: 0x10\nj: 1e3\nk: .inf\nl: -.Inf\n",
		"list: [1, two, 3.0, null, {x: y}]\nnested: {a: {b: {c: [d]}}}\n",
		"base: &b {x: 1, y: 2}\nuse: *b\nlist: &l [1, 2]\nagain: *l\n",
		"base: &b {x: 1, y: 2}\nover:\n  <<: *b\n  y: 3\n",
		"a: &a {x: 1, z: 1}\nb: &b {x: 2, w: 2}\nc:\n  <<: [*a, *b]\n  v: 0\n",
		"c:\n  <<: {x: 1, <<: {x: 2, deep: 3}}\n  y: 4\n",
		"1: one\n2.5: two\ntrue: yes\n",
		"tagged: !!str 123\nint: !!int '7'\nbin: !!binary aGVsbG8=\ndate: 2001-12-14\n",
		"block: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
		"empty: {}\nnone: []\n",
		"- 1\n- [2, 3]\n",
		"plain",
		"",
	}
	for _, text := range docs {
		doc := parseDoc(t, text)
		want, werr := yamlV3Value(doc)
		got, gerr := decodeValue(doc)
		if (werr != nil) != (gerr != nil) {
			t.Errorf("%q: yaml.v3 error %v, decodeValue error %v", text, werr, gerr)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %#v\nwant %#v", text, got, want)
		}
	}
}

// Documents yaml.v3 refuses, decodeValue refuses too.
func TestDecodeValueErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{"a: 1\nb: 2\na: 3\n", `line 3: mapping key "a" already defined at line 1`},
		{"1: x\n'1': y\n", `line 2: mapping key "1" already defined at line 1`},
		{"a: &a [1]\nb:\n  <<: *a\n", "map merge requires map or sequence of maps"},
		{"? [1, 2]\n: x\n", "invalid map key"},
		{"int: !!int x\n", "!!int"},
	}
	for _, c := range cases {
		doc := parseDoc(t, c.text)
		if _, err := yamlV3Value(doc); err == nil {
			t.Errorf("%q: yaml.v3 accepts it", c.text)
		}
		if _, err := decodeValue(doc); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.text, err, c.want)
		}
	}
}

// Keys that differ in YAML but read the same as strings are refused:
// before, one silently replaced the other, in map order.
func TestDecodeValueStringKeyCollision(t *testing.T) {
	_, err := decodeValue(parseDoc(t, "1: a\n1.0: b\n"))
	if err == nil || !strings.Contains(err.Error(), `line 2: mapping key "1.0" is the same as another key`) {
		t.Errorf("got %v", err)
	}
}

// A "billion laughs" document stops at yaml.v3's aliasing limit instead
// of expanding 10^9 nodes.
func TestDecodeValueExcessiveAliasing(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	_, err := decodeValue(parseDoc(t, b.String()))
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Errorf("got %v", err)
	}
}

// configMapYAML returns a ConfigMap with n data keys.
func configMapYAML(n int) string {
	var b strings.Builder
	b.WriteString(cm)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  key-%07d: value-%07d\n", i, i)
	}
	return b.String()
}

// The work of decoding grows linearly with the keys of a mapping: every
// node is visited once and the duplicate-key check is one map lookup per
// key (yaml.v3 compared every key with every later one, n²/2 steps; see
// BenchmarkDecodeConfigMap for the time of both).
func TestDecodeValueWorkIsLinear(t *testing.T) {
	steps := func(n int) int {
		doc := parseDoc(t, configMapYAML(n))
		d := &valueDecoder{expanding: map[*yaml.Node]bool{}}
		if _, err := d.value(doc); err != nil {
			t.Fatal(err)
		}
		return d.decodeCount
	}
	small, large := steps(1000), steps(8000)
	if ratio := float64(large) / float64(small); ratio > 8.5 {
		t.Errorf("8x the keys took %.1fx the steps (%d vs %d), want about 8x", ratio, large, small)
	}
}

// FuzzDecodeValue checks decodeValue against yaml.v3 on any document both
// parse: the same values, or both refuse it (decodeValue also refuses keys
// that collide as strings, where yaml.v3 kept one of them at random).
func FuzzDecodeValue(f *testing.F) {
	f.Add("a: 1\nb: [x, {c: d}]\n")
	f.Add("base: &b {x: 1}\nover:\n  <<: *b\n  y: 2\n")
	f.Add("a: &a {x: 1}\nb: &b {x: 2}\nc: {<<: [*a, *b]}\n")
	f.Add("1: x\n'1': y\n")
	f.Add("a: &a [*a]\n")
	f.Fuzz(func(t *testing.T, text string) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			return
		}
		want, werr := yamlV3Value(&doc)
		got, gerr := decodeValue(&doc)
		if gerr != nil && strings.Contains(gerr.Error(), "once converted to a string") {
			return
		}
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("yaml.v3 error %v, decodeValue error %v", werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v, want %#v", got, want)
		}
	})
}
