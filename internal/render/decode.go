package render

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// valueDecoder turns a parsed YAML document into the JSON-compatible
// values unstructured objects hold (map[string]any, []any, string, int64,
// float64, bool, nil), in time linear in the number of nodes.
//
// It replaces yaml.v3's Node.Decode, which checks every mapping for
// duplicate keys by comparing each key with every later one: a ConfigMap
// of 80,000 keys took 3.2 billion comparisons and 18 s to render (issue
// 18). Here the check is one map lookup per key. Everything else follows
// yaml.v3: scalars resolve with its rules, merge keys (<<) add the keys the
// mapping does not set itself, aliases expand to copies, and the same
// limit on aliasing stops a "billion laughs" document.
type valueDecoder struct {
	// decodeCount counts the nodes decoded, aliasCount those decoded
	// inside an alias, as yaml.v3 counts them for its aliasing limit.
	decodeCount, aliasCount, aliasDepth int
	// expanding holds the alias nodes being expanded, to catch an anchor
	// that contains itself.
	expanding map[*yaml.Node]bool
}

// decodeValue decodes node (a document's root) into JSON-compatible values.
func decodeValue(node *yaml.Node) (any, error) {
	d := &valueDecoder{expanding: map[*yaml.Node]bool{}}
	return d.value(node)
}

// Aliasing limits, as yaml.v3 sets them (decode.go, allowedAliasRatio):
// small documents may be almost all alias expansions, large ones only 10%.
const (
	aliasRatioRangeLow  = 400000
	aliasRatioRangeHigh = 4000000
)

func allowedAliasRatio(decodeCount int) float64 {
	switch {
	case decodeCount <= aliasRatioRangeLow:
		return 0.99
	case decodeCount >= aliasRatioRangeHigh:
		return 0.10
	default:
		return 0.99 - 0.89*(float64(decodeCount-aliasRatioRangeLow)/(aliasRatioRangeHigh-aliasRatioRangeLow))
	}
}

// visit counts one node and enforces the aliasing limit.
func (d *valueDecoder) visit(n *yaml.Node) error {
	d.decodeCount++
	if d.aliasDepth > 0 {
		d.aliasCount++
	}
	if d.aliasCount > 100 && d.decodeCount > 1000 && float64(d.aliasCount)/float64(d.decodeCount) > allowedAliasRatio(d.decodeCount) {
		return fmt.Errorf("line %d: document contains excessive aliasing: %d of %d nodes come from aliases", n.Line, d.aliasCount, d.decodeCount)
	}
	return nil
}

func (d *valueDecoder) value(n *yaml.Node) (any, error) {
	if err := d.visit(n); err != nil {
		return nil, err
	}
	switch n.Kind {
	case 0:
		// The zero node: an empty document.
		return nil, nil
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return d.value(n.Content[0])
	case yaml.AliasNode:
		var v any
		err := d.alias(n, func(target *yaml.Node) error {
			var err error
			v, err = d.value(target)
			return err
		})
		return v, err
	case yaml.ScalarNode:
		return scalar(n)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := d.value(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		if err := d.mapping(n, out, false); err != nil {
			return nil, err
		}
		return out, nil
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
	}
}

// alias expands alias node n by calling fn with its anchor's node.
func (d *valueDecoder) alias(n *yaml.Node, fn func(*yaml.Node) error) error {
	if n.Alias == nil {
		return fmt.Errorf("line %d: unknown anchor %q", n.Line, n.Value)
	}
	if d.expanding[n] {
		return fmt.Errorf("line %d: anchor %q value contains itself", n.Line, n.Value)
	}
	d.expanding[n] = true
	d.aliasDepth++
	err := fn(n.Alias)
	d.aliasDepth--
	delete(d.expanding, n)
	return err
}

// mapping adds the pairs of mapping node n to out. When merging (n is the
// value of a merge key), keys out already has are kept: a mapping's own
// keys win over merged ones, and earlier merged mappings over later ones.
func (d *valueDecoder) mapping(n *yaml.Node, out map[string]any, merging bool) error {
	type seenKey struct {
		kind  yaml.Kind
		value string
	}
	// Duplicate keys are compared as yaml.v3 compares them: node kind and
	// text, so 1 and "1" are the same key.
	seen := make(map[seenKey]int, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		id := seenKey{k.Kind, k.Value}
		if line, dup := seen[id]; dup {
			return fmt.Errorf("line %d: mapping key %q already defined at line %d", k.Line, k.Value, line)
		}
		seen[id] = k.Line
		if isMerge(k) {
			merges = append(merges, v)
			continue
		}
		if err := d.visit(k); err != nil {
			return err
		}
		key, err := d.key(k)
		if err != nil {
			return err
		}
		if _, ok := out[key]; ok {
			if merging {
				continue
			}
			// Different YAML keys that read the same as strings, such as
			// 1 and 1.0: JSON objects have string keys, so one would
			// silently replace the other.
			return fmt.Errorf("line %d: mapping key %q is the same as another key of this mapping once converted to a string (%q)", k.Line, k.Value, key)
		}
		val, err := d.value(v)
		if err != nil {
			return err
		}
		out[key] = val
	}
	for _, m := range merges {
		if err := d.merge(m, out); err != nil {
			return err
		}
	}
	return nil
}

// merge adds the keys of a merge key's value: a mapping, an alias of one,
// or a sequence of those.
func (d *valueDecoder) merge(m *yaml.Node, out map[string]any) error {
	wantMap := fmt.Errorf("line %d: map merge requires map or sequence of maps as the value", m.Line)
	if err := d.visit(m); err != nil {
		return err
	}
	switch m.Kind {
	case yaml.MappingNode:
		return d.mapping(m, out, true)
	case yaml.AliasNode:
		if m.Alias != nil && m.Alias.Kind != yaml.MappingNode {
			return wantMap
		}
		return d.alias(m, func(target *yaml.Node) error {
			if err := d.visit(target); err != nil {
				return err
			}
			return d.mapping(target, out, true)
		})
	case yaml.SequenceNode:
		for _, item := range m.Content {
			if item.Kind != yaml.MappingNode && item.Kind != yaml.AliasNode {
				return wantMap
			}
			if err := d.merge(item, out); err != nil {
				return err
			}
		}
		return nil
	default:
		return wantMap
	}
}

// isMerge reports whether n is the merge key <<, as yaml.v3 decides it.
func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

// key returns a mapping key as the string an unstructured object uses.
func (d *valueDecoder) key(k *yaml.Node) (string, error) {
	if k.Kind == yaml.AliasNode && k.Alias != nil && k.Alias.Kind == yaml.ScalarNode {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: invalid map key: expected a scalar, got a %s", k.Line, k.ShortTag())
	}
	v, err := scalar(k)
	if err != nil {
		return "", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return fmt.Sprint(v), nil
}

// scalar resolves a scalar node with yaml.v3's rules. Strings, the common
// case, need no decoder.
func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str":
		return n.Value, nil
	case "!!null":
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	if t, ok := v.(time.Time); ok {
		// An explicit !!timestamp: JSON has no time type.
		return t.Format(time.RFC3339Nano), nil
	}
	return normalize(v), nil
}
