package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"testing"
)

// checkValues compares every field of the record the Node client decoded (avro-js, unions unwrapped by the
// client's flattenSinglePropertyObjects) with the values the generator encoded. ChangeEventHeader is checked by
// checkHeader. A field the generator left unset must come out null; a compound field's unset subfields too.
func checkValues(t *testing.T, label string, payload json.RawMessage, want map[string]any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Errorf("%s: payload is not a JSON object: %v", label, err)
		return
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing from the client's record", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if k == "ChangeEventHeader" {
			continue
		}
		diffs = append(diffs, compareValue(k, got[k], want[k])...)
	}
	for _, d := range diffs {
		t.Errorf("%s: decoded by the Node client: %s", label, d)
	}
}

// compareValue compares a JSON-decoded value (numbers as json.Number; BigInts as strings) with a Go value of
// the generator, returning the differences.
func compareValue(path string, got, want any) []string {
	bad := func() []string { return []string{fmt.Sprintf("%s = %#v, generator encoded %#v", path, got, want)} }
	switch w := want.(type) {
	case nil:
		if got != nil {
			return bad()
		}
	case string:
		if g, ok := got.(string); !ok || g != w {
			return bad()
		}
	case bool:
		if g, ok := got.(bool); !ok || g != w {
			return bad()
		}
	case int:
		return compareInt(path, got, int64(w))
	case int32:
		return compareInt(path, got, int64(w))
	case int64:
		return compareInt(path, got, w)
	case float64:
		if g, ok := number(got); !ok || g != w {
			return bad()
		}
	case float32:
		if g, ok := number(got); !ok || float32(g) != w {
			return bad()
		}
	case []string:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return bad()
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, compareValue(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])...)
		}
		return diffs
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return bad()
		}
		var diffs []string
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if _, ok := g[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing from the client's record", path, k))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			diffs = append(diffs, compareValue(path+"."+k, g[k], w[k])...)
		}
		return diffs
	default:
		return []string{fmt.Sprintf("%s: the test cannot compare generator values of type %T", path, want)}
	}
	return nil
}

// compareInt accepts a JSON number or, beyond 2^53, the string the client's BigInt was printed as.
func compareInt(path string, got any, want int64) []string {
	var s string
	switch g := got.(type) {
	case json.Number:
		s = g.String()
	case string:
		if math.Abs(float64(want)) <= 1<<53 {
			return []string{fmt.Sprintf("%s = %q (a string), want the number %d", path, g, want)}
		}
		s = g
	}
	if s != strconv.FormatInt(want, 10) {
		return []string{fmt.Sprintf("%s = %#v, generator encoded %d", path, got, want)}
	}
	return nil
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}
