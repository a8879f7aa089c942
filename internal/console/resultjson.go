package console

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// A search result can hold 10,000 items (500 from each of 20 clusters);
// encoding/json spends most of a large search's time on them, through
// reflection. appendResultJSON writes the same bytes as json.Encoder
// (HTML-safe escaping, sorted label keys, a trailing newline) with the
// items encoded by hand; the tests compare the two byte for byte.

// writeResultJSON writes res as json.Encoder would.
func writeResultJSON(w http.ResponseWriter, res Result) {
	bp := jsonBuffers.Get().(*[]byte)
	defer jsonBuffers.Put(bp)
	b, ok := appendResultJSON((*bp)[:0], res)
	if !ok {
		writeJSON(w, res)
		return
	}
	*bp = b
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) //nolint:gosec // G705: JSON built by appendResultJSON with escaped strings, served as application/json with nosniff
}

var jsonBuffers = sync.Pool{New: func() any { return new([]byte) }}

// appendResultJSON appends res and a newline; ok is false when a value
// is one encoding/json must handle (a time it cannot encode), and the
// caller should use encoding/json instead.
func appendResultJSON(b []byte, res Result) (_ []byte, ok bool) {
	b = append(b, `{"query":`...)
	b = appendJSONString(b, res.Query)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(res.Total), 10)
	b = append(b, `,"shown":`...)
	b = strconv.AppendInt(b, int64(res.Shown), 10)
	b = append(b, `,"groups":`...)
	if res.Groups == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, g := range res.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendGroupJSON(b, g); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"tookMs":`...)
	took, err := json.Marshal(res.TookMS)
	if err != nil {
		return b, false
	}
	b = append(b, took...)
	b = append(b, "}\n"...)
	return b, true
}

func appendGroupJSON(b []byte, g ClusterGroup) (_ []byte, ok bool) {
	st, err := json.Marshal(g.Cluster)
	if err != nil {
		return b, false
	}
	b = append(b, `{"cluster":`...)
	b = append(b, st...)
	if g.Stale {
		b = append(b, `,"stale":true`...)
	}
	b = append(b, `,"items":`...)
	if g.Items == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, it := range g.Items {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendItemJSON(b, it); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(g.Total), 10)
	b = append(b, '}')
	return b, true
}

// appendItemJSON follows Item's json tags.
func appendItemJSON(b []byte, it *Item) (_ []byte, ok bool) {
	if it == nil {
		return append(b, "null"...), true
	}
	b = append(b, `{"cluster":`...)
	b = appendJSONString(b, it.Cluster)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, it.Kind)
	if it.Namespace != "" {
		b = append(b, `,"namespace":`...)
		b = appendJSONString(b, it.Namespace)
	}
	b = append(b, `,"name":`...)
	b = appendJSONString(b, it.Name)
	b = append(b, `,"uid":`...)
	b = appendJSONString(b, string(it.UID))
	if len(it.Labels) > 0 {
		b = append(b, `,"labels":{`...)
		var arr [16]string
		keys := arr[:0]
		for k := range it.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, it.Labels[k])
		}
		b = append(b, '}')
	}
	for _, f := range [...]struct{ name, val string }{{`,"status":`, it.Status}, {`,"ready":`, it.Ready}} {
		if f.val != "" {
			b = append(b, f.name...)
			b = appendJSONString(b, f.val)
		}
	}
	if it.Restarts != 0 {
		b = append(b, `,"restarts":`...)
		b = strconv.AppendInt(b, int64(it.Restarts), 10)
	}
	for _, f := range [...]struct{ name, val string }{{`,"node":`, it.Node}, {`,"owner":`, it.Owner}} {
		if f.val != "" {
			b = append(b, f.name...)
			b = appendJSONString(b, f.val)
		}
	}
	if len(it.Images) > 0 {
		b = append(b, `,"images":[`...)
		for i, im := range it.Images {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, im)
		}
		b = append(b, ']')
	}
	b = append(b, `,"created":"`...)
	// AppendText is what Time.MarshalJSON writes between its quotes,
	// including its refusal of years outside 0-9999.
	b, err := it.Created.AppendText(b)
	if err != nil {
		return b, false
	}
	b = append(b, `"}`...)
	return b, true
}

// appendJSONString is encoding/json's string encoding with HTML escaping
// (json.Encoder's default): <, > and & as \u003c, \u003e, \u0026; control
// characters escaped; invalid UTF-8 as \ufffd; U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
