package cache

import (
	"fmt"
	"testing"
)

// The tables do not grow without bound.
func TestInternerBounded(t *testing.T) {
	in := newInterner()
	for i := range maxInternedStrings + 10 {
		in.str(fmt.Sprint("s", i))
	}
	for i := range maxInternedValues + 10 {
		in.labels(map[string]string{"app": fmt.Sprint(i)})
	}
	if len(in.strs) > maxInternedStrings || len(in.stringMaps.m) > maxInternedValues {
		t.Errorf("tables grew to %d strings and %d maps", len(in.strs), len(in.stringMaps.m))
	}
}
