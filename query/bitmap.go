package query

import (
	"fmt"
	"strings"
)

// CDC bitmap expansion (PROTOCOL.md §7).
//
// An element "0x<hex>" is a bitmap over the top-level fields of the event's writer schema: the hex digits are
// one big-endian unsigned number and bit i (least significant = 0) names schema.fields[i]. An element
// "<p>-0x<hex>" is a bitmap over the subfields of the compound record at top-level index p (the record may sit
// in a union: [null,R], [string,R], [null,string,R]); bit j names "<parent>.<subfield j>". Every element is
// read on its own, so nested entries work with or without a top-level one. Hex digits may be upper or lower
// case and of any count (odd too). As the Python and node clients do (and unlike Java), every set subfield
// is listed, even when all are set. Anything that cannot be expanded — bits beyond the field count, a parent
// index that is not a compound record, a malformed element — is reported as a problem, never a panic, and
// the rest of the list is still expanded.

// BitmapResult is the expansion of one event's changedFields, nulledFields and diffFields.
type BitmapResult struct {
	Changed, Nulled, Diff []string
	// Problems describe elements that could not be fully expanded ("changedFields: …").
	Problems []string
}

// buildBitmapTables precomputes the names a bitmap can expand to.
func (s *Schema) buildBitmapTables() {
	fields := s.root.fields
	s.topNames = make([]string, len(fields))
	s.soqlTop = s.topNames
	s.subNames = make([][]string, len(fields))
	s.soqlSub = make([][]string, len(fields))
	for i, f := range fields {
		s.topNames[i] = f.name
		rec := recordOf(f.typ)
		if rec == nil {
			continue
		}
		sub := make([]string, len(rec.fields))
		soql := make([]string, len(rec.fields))
		for j, sf := range rec.fields {
			sub[j] = f.name + "." + sf.name
			soql[j] = SOQLName(f.name, sf.name)
		}
		s.subNames[i], s.soqlSub[i] = sub, soql
	}
}

// SOQLName gives the SOQL (flattened) column name of subfield child of compound field parent:
//   - an address compound (parent ends in "Address"): strip "Address" and prepend the rest —
//     BillingAddress.City → BillingCity, ShippingAddress.Street → ShippingStreet, Address.City → City;
//   - a name compound (parent "Name"): the subfield itself — Name.FirstName → FirstName;
//   - a custom compound field (parent ends in "__c", e.g. a geolocation): Loc__c.Latitude__s → Loc__Latitude__s;
//   - anything else keeps the dotted name.
func SOQLName(parent, child string) string {
	switch {
	case strings.HasSuffix(parent, "Address"):
		return strings.TrimSuffix(parent, "Address") + child
	case parent == "Name":
		return child
	case strings.HasSuffix(parent, "__c"):
		c := child
		if !strings.HasSuffix(c, "__s") {
			c += "__s"
		}
		return strings.TrimSuffix(parent, "__c") + "__" + c
	}
	return parent + "." + child
}

// ExpandBitmap expands one bitmap field (e.g. changedFields) with this writer schema. label names the field
// in problem messages. With soql, compound subfields get their SOQL names (see SOQLName).
func (s *Schema) ExpandBitmap(label string, vals []string, soql bool) (names, problems []string) {
	return s.expandInto(nil, nil, label, vals, soql)
}

// ExpandBitmaps expands the three bitmap fields of a decoded ChangeEventHeader.
func (s *Schema) ExpandBitmaps(changed, nulled, diff []string, soql bool) BitmapResult {
	var r BitmapResult
	r.Changed, r.Problems = s.expandInto([]string{}, r.Problems, "changedFields", changed, soql)
	r.Nulled, r.Problems = s.expandInto([]string{}, r.Problems, "nulledFields", nulled, soql)
	r.Diff, r.Problems = s.expandInto([]string{}, r.Problems, "diffFields", diff, soql)
	return r
}

func (s *Schema) expandInto(names, problems []string, label string, vals []string, soql bool) ([]string, []string) {
	top, sub := s.topNames, s.subNames
	if soql {
		top, sub = s.soqlTop, s.soqlSub
	}
	for _, v := range vals {
		if hexDigits, ok := cutHexPrefix(v); ok {
			var bad string
			names, bad = expandHex(names, hexDigits, top)
			if bad != "" {
				problems = append(problems, fmt.Sprintf("%s: %q: %s the %d top-level fields", label, v, bad, len(top)))
			}
			continue
		}
		p, rest, ok := strings.Cut(v, "-")
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: %q: not a bitmap element", label, v))
			continue
		}
		idx, ok := parseIndex(p)
		hexDigits, ok2 := cutHexPrefix(rest)
		if !ok || !ok2 {
			problems = append(problems, fmt.Sprintf("%s: %q: not a bitmap element", label, v))
			continue
		}
		if idx >= len(top) {
			problems = append(problems, fmt.Sprintf("%s: %q: parent index %d beyond the %d top-level fields", label, v, idx, len(top)))
			continue
		}
		if sub[idx] == nil {
			problems = append(problems, fmt.Sprintf("%s: %q: field %s is not a compound record", label, v, s.topNames[idx]))
			continue
		}
		var bad string
		names, bad = expandHex(names, hexDigits, sub[idx])
		if bad != "" {
			problems = append(problems, fmt.Sprintf("%s: %q: %s the %d subfields of %s", label, v, bad, len(sub[idx]), s.topNames[idx]))
		}
	}
	return names, problems
}

// cutHexPrefix strips "0x" or "0X" and checks that at least one hex digit follows.
func cutHexPrefix(v string) (string, bool) {
	if len(v) < 3 || v[0] != '0' || (v[1] != 'x' && v[1] != 'X') {
		return "", false
	}
	for i := 2; i < len(v); i++ {
		if hexVal(v[i]) < 0 {
			return "", false
		}
	}
	return v[2:], true
}

func parseIndex(p string) (int, bool) {
	if p == "" || len(p) > 6 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n, true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// expandHex appends the names of the set bits of the big-endian hex number digits (validated), lowest bit
// first. Bits beyond len(table) are described in bad.
func expandHex(names []string, digits string, table []string) ([]string, string) {
	beyond, first := 0, 0
	for k := 0; k < len(digits); k++ {
		nib := hexVal(digits[len(digits)-1-k])
		for b := 0; b < 4; b++ {
			if nib&(1<<b) == 0 {
				continue
			}
			i := 4*k + b
			if i < len(table) {
				names = append(names, table[i])
				continue
			}
			if beyond == 0 {
				first = i
			}
			beyond++
		}
	}
	if beyond == 0 {
		return names, ""
	}
	if beyond == 1 {
		return names, fmt.Sprintf("bit %d is beyond", first)
	}
	return names, fmt.Sprintf("%d bits from bit %d are beyond", beyond, first)
}
