package emulator

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// Encode encodes a record given as plain Go values into an Avro binary datum with sch. Values are nil, string,
// bool, int/int32/int64, float64, []string, []any or map[string]any (a nested record); union branches are chosen
// from the value's Go type, so callers never wrap union values. Missing fields encode as null.
func Encode(sch avro.Schema, values map[string]any) ([]byte, error) {
	v, err := toAvro(sch, values)
	if err != nil {
		return nil, err
	}
	b, err := avro.Marshal(sch, v)
	if err != nil {
		return nil, fmt.Errorf("encode avro: %w", err)
	}
	return b, nil
}

func unref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// branchName is the key hamba/avro expects for a union branch.
func branchName(s avro.Schema) string {
	s = unref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

// fits reports whether Go value v can be encoded with s.
func fits(s avro.Schema, v any) bool {
	s = unref(s)
	switch v.(type) {
	case string:
		return s.Type() == avro.String || s.Type() == avro.Enum
	case bool:
		return s.Type() == avro.Boolean
	case float64, float32:
		return s.Type() == avro.Double || s.Type() == avro.Float
	case int64:
		return s.Type() == avro.Long
	case int, int32:
		return s.Type() == avro.Int || s.Type() == avro.Long
	case []byte:
		return s.Type() == avro.Bytes
	case []string, []any:
		return s.Type() == avro.Array
	case map[string]any:
		return s.Type() == avro.Record
	}
	return false
}

func toAvro(s avro.Schema, v any) (any, error) {
	s = unref(s)
	switch sch := s.(type) {
	case *avro.UnionSchema:
		if v == nil {
			if !slices.ContainsFunc(sch.Types(), func(b avro.Schema) bool { return b.Type() == avro.Null }) {
				return nil, fmt.Errorf("null for non-nullable union %s", sch.String())
			}
			return nil, nil
		}
		for _, b := range sch.Types() {
			if b.Type() == avro.Null || !fits(b, v) {
				continue
			}
			inner, err := toAvro(b, v)
			if err != nil {
				return nil, err
			}
			return map[string]any{branchName(b): inner}, nil
		}
		return nil, fmt.Errorf("value of type %T fits no branch of union %s", v, sch.String())
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %s: got %T", sch.FullName(), v)
		}
		out := make(map[string]any, len(sch.Fields()))
		for _, f := range sch.Fields() {
			fv, err := toAvro(f.Type(), m[f.Name()])
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name(), err)
			}
			out[f.Name()] = fv
		}
		return out, nil
	case *avro.ArraySchema:
		var items []any
		switch a := v.(type) {
		case []string:
			for _, x := range a {
				items = append(items, x)
			}
		case []any:
			items = a
		case nil:
		default:
			return nil, fmt.Errorf("array: got %T", v)
		}
		out := make([]any, 0, len(items))
		for _, x := range items {
			xv, err := toAvro(sch.Items(), x)
			if err != nil {
				return nil, err
			}
			out = append(out, xv)
		}
		return out, nil
	case *avro.PrimitiveSchema:
		switch sch.Type() {
		case avro.Long:
			switch n := v.(type) {
			case int:
				return int64(n), nil
			case int32:
				return int64(n), nil
			}
		case avro.Int:
			switch n := v.(type) {
			case int32:
				return int(n), nil
			case int64:
				return int(n), nil
			}
		case avro.Null:
			return nil, nil
		}
		return v, nil
	}
	return v, nil
}

// recordOf returns the record inside a field type ([null,T], [string,T], [null,string,T] → T), or nil.
func recordOf(s avro.Schema) *avro.RecordSchema {
	s = unref(s)
	if r, ok := s.(*avro.RecordSchema); ok {
		return r
	}
	if u, ok := s.(*avro.UnionSchema); ok {
		for _, b := range u.Types() {
			if r, ok := unref(b).(*avro.RecordSchema); ok {
				return r
			}
		}
	}
	return nil
}

// BuildBitmap encodes field names ("Field" or "Parent.Sub") as a changedFields-style bitmap list over the
// top-level fields of rec (PROTOCOL.md §7): element 0 "0x<HEX>" (upper case, minimal whole bytes) when a
// top-level field is named, then "<parentIndex>-0x<HEX>" per compound field, by ascending index. A sub-field does
// not set its parent's top-level bit.
func BuildBitmap(rec *avro.RecordSchema, names []string) ([]string, error) {
	index := make(map[string]int, len(rec.Fields()))
	for i, f := range rec.Fields() {
		index[f.Name()] = i
	}
	top := new(big.Int)
	nested := map[int]*big.Int{}
	for _, n := range names {
		parent, sub, isSub := strings.Cut(n, ".")
		i, ok := index[parent]
		if !ok {
			return nil, fmt.Errorf("bitmap: no field %q in %s", parent, rec.FullName())
		}
		if !isSub {
			top.SetBit(top, i, 1)
			continue
		}
		child := recordOf(rec.Fields()[i].Type())
		if child == nil {
			return nil, fmt.Errorf("bitmap: field %q of %s is not compound", parent, rec.FullName())
		}
		j := -1
		for k, f := range child.Fields() {
			if f.Name() == sub {
				j = k
			}
		}
		if j < 0 {
			return nil, fmt.Errorf("bitmap: no sub-field %q in %s", n, child.FullName())
		}
		if nested[i] == nil {
			nested[i] = new(big.Int)
		}
		nested[i].SetBit(nested[i], j, 1)
	}
	var out []string
	if top.Sign() != 0 {
		out = append(out, hexBitmap(top))
	}
	for i := range rec.Fields() {
		if b, ok := nested[i]; ok {
			out = append(out, fmt.Sprintf("%d-%s", i, hexBitmap(b)))
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func hexBitmap(b *big.Int) string {
	return fmt.Sprintf("0x%X", b.Bytes())
}

// ExpandBitmap turns a bitmap list back into field names the way the Python and node clients do (sub-fields
// always listed as "Parent.Sub"): top-level fields by ascending index, then each compound entry's sub-fields.
func ExpandBitmap(rec *avro.RecordSchema, vals []string) ([]string, error) {
	out := []string{}
	if len(vals) == 0 {
		return out, nil
	}
	if strings.HasPrefix(vals[0], "0x") {
		b, ok := new(big.Int).SetString(vals[0][2:], 16)
		if !ok {
			return nil, fmt.Errorf("bitmap %q: bad hex", vals[0])
		}
		for i, f := range rec.Fields() {
			if b.Bit(i) == 1 {
				out = append(out, f.Name())
			}
		}
		vals = vals[1:]
	}
	for _, v := range vals {
		p, h, ok := strings.Cut(v, "-0x")
		if !ok {
			return nil, fmt.Errorf("bitmap entry %q: want N-0xHEX", v)
		}
		idx, err := strconv.Atoi(p)
		if err != nil || idx < 0 || idx >= len(rec.Fields()) {
			return nil, fmt.Errorf("bitmap entry %q: bad parent index", v)
		}
		b, ok := new(big.Int).SetString(h, 16)
		if !ok {
			return nil, fmt.Errorf("bitmap entry %q: bad hex", v)
		}
		parent := rec.Fields()[idx]
		child := recordOf(parent.Type())
		if child == nil {
			return nil, fmt.Errorf("bitmap entry %q: field %s is not compound", v, parent.Name())
		}
		for j, f := range child.Fields() {
			if b.Bit(j) == 1 {
				out = append(out, parent.Name()+"."+f.Name())
			}
		}
	}
	return out, nil
}
