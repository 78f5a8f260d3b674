package query

import (
	"encoding/base64"
	"maps"
	"math"
	"slices"
	"strconv"
)

// Decode reads the payload with s into Go values for filters and tabular output: records become
// map[string]any, unions their value, int and long int64 (never float64), float and double float64, strings
// and enum symbols string, bytes and fixed []byte, arrays []any, maps map[string]any, null nil.
// need selects top-level fields by index (nil = all); the others are skipped and absent from the map.
func (d *Decoder) Decode(s *Schema, payload []byte, need []bool) (map[string]any, error) {
	d.reset(payload)
	var out map[string]any
	if s.root.kind != kRecord {
		v := d.value(s.root, 0)
		out = map[string]any{"value": v}
	} else {
		out = make(map[string]any, len(s.root.fields))
		for i, f := range s.root.fields {
			if need != nil && (i >= len(need) || !need[i]) {
				d.skipNode(f.typ, 1)
			} else {
				out[f.name] = d.value(f.typ, 1)
			}
			if d.failed() {
				break
			}
		}
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *Decoder) value(n *node, depth int) any {
	if depth > maxDepth {
		d.fail("value nested too deeply")
		return nil
	}
	switch n.kind {
	case kNull:
		return nil
	case kBool:
		return d.r.ReadBool()
	case kInt:
		return int64(d.r.ReadInt())
	case kLong, kLongTime:
		return d.r.ReadLong()
	case kFloat:
		return float64(d.r.ReadFloat())
	case kDouble:
		return d.r.ReadDouble()
	case kString:
		return string(d.readRaw())
	case kBytes:
		return append([]byte{}, d.readRaw()...)
	case kFixed:
		if n.size > d.payload {
			d.fail("fixed size %d beyond payload", n.size)
			return nil
		}
		b := make([]byte, n.size)
		d.r.Read(b)
		return b
	case kEnum:
		if i := d.readEnum(n); i >= 0 {
			return n.symbols[i]
		}
		return nil
	case kUnion:
		if b := d.readUnion(n); b != nil {
			return d.value(b, depth+1)
		}
		return nil
	case kRecord:
		m := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			m[f.name] = d.value(f.typ, depth+1)
			if d.failed() {
				break
			}
		}
		return m
	case kArray:
		out := []any{}
		for {
			c := d.readCount()
			if c == 0 || d.failed() {
				return out
			}
			for ; c > 0; c-- {
				if n.capture > 0 && n.items.kind == kString {
					raw := d.readRaw()
					d.captureString(int(n.capture-1), raw)
					out = append(out, string(raw))
				} else {
					out = append(out, d.value(n.items, depth+1))
				}
				if d.failed() {
					return out
				}
			}
		}
	case kMap:
		out := map[string]any{}
		for {
			c := d.readCount()
			if c == 0 || d.failed() {
				return out
			}
			for ; c > 0; c-- {
				k := string(d.readRaw())
				out[k] = d.value(n.items, depth+1)
				if d.failed() {
					return out
				}
			}
		}
	}
	d.fail("unknown node kind %d", n.kind)
	return nil
}

// appendValueJSON renders a value from Decode as JSON using its schema node for field order, float width and
// time fields. Values that do not fit the node are rendered by their Go type.
func (d *Decoder) appendValueJSON(dst []byte, v any, n *node, timeField bool) []byte {
	if n != nil && n.kind == kUnion {
		n = branchFor(n, v)
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64:
		if timeField && d.TimeRFC3339 && n != nil && n.kind == kLongTime {
			return appendMillisTime(dst, x)
		}
		return strconv.AppendInt(dst, x, 10)
	case float64:
		if n != nil && n.kind == kFloat {
			return appendFloat(dst, x, 32)
		}
		return appendFloat(dst, x, 64)
	case string:
		return appendJSONString(dst, x)
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"')
	case []any:
		var items *node
		if n != nil && n.kind == kArray {
			items = n.items
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = d.appendValueJSON(dst, e, items, false)
		}
		return append(dst, ']')
	case map[string]any:
		if n != nil && n.kind == kRecord {
			dst = append(dst, '{')
			first := true
			for _, f := range n.fields {
				fv, ok := x[f.name]
				if !ok {
					continue
				}
				if first {
					dst = append(dst, f.keyFirst...)
				} else {
					dst = append(dst, f.keyRest...)
				}
				first = false
				dst = d.appendValueJSON(dst, fv, f.typ, f.time)
			}
			return append(dst, '}')
		}
		var vals *node
		if n != nil && n.kind == kMap {
			vals = n.items
		}
		dst = append(dst, '{')
		first := true
		for _, k := range sortedKeys(x) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = d.appendValueJSON(dst, x[k], vals, false)
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

// branchFor picks the union branch that produced v.
func branchFor(u *node, v any) *node {
	want := func(k kind) bool { return false }
	switch x := v.(type) {
	case nil:
		want = func(k kind) bool { return k == kNull }
	case bool:
		want = func(k kind) bool { return k == kBool }
	case int64:
		want = func(k kind) bool { return k == kLong || k == kLongTime || k == kInt }
	case float64:
		want = func(k kind) bool { return k == kDouble || k == kFloat && float64(float32(x)) == x || math.IsNaN(x) }
	case string:
		want = func(k kind) bool { return k == kString || k == kEnum }
	case []byte:
		want = func(k kind) bool { return k == kBytes || k == kFixed }
	case []any:
		want = func(k kind) bool { return k == kArray }
	case map[string]any:
		want = func(k kind) bool { return k == kRecord || k == kMap }
	}
	for _, b := range u.branches {
		if want(b.kind) {
			return b
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
