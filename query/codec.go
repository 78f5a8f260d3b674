package query

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// avroAPI is the one frozen hamba/avro configuration of the package; avro.DefaultConfig is never changed.
var avroAPI = avro.Config{MaxByteSliceSize: 16 << 20}.Freeze()

// kind is the Avro type of a compiled node.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt
	kLong
	kLongTime // a long holding epoch milliseconds (rendered as RFC 3339 on request)
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kArray
	kMap
	kUnion
	kFixed
)

// node is one Avro type compiled for walking the binary encoding.
type node struct {
	kind     kind
	name     string       // full name of records, enums and fixed
	fields   []*fieldNode // record
	items    *node        // array items, map values
	branches []*node      // union
	symbols  []string     // enum
	symJSON  [][]byte     // enum symbols, JSON-quoted
	size     int          // fixed
	capture  int8         // array<string> in ChangeEventHeader: 1+bitmap slot, 0 = none
}

// fieldNode is one field of a compiled record.
type fieldNode struct {
	name     string
	keyFirst []byte // `"name":`
	keyRest  []byte // `,"name":`
	typ      *node
	time     bool // epoch-millisecond field (by name or doc)
}

// Bitmap slots captured while walking ChangeEventHeader.
const (
	slotChanged = iota
	slotNulled
	slotDiff
	numSlots
)

var slotField = [numSlots]string{"changedFields", "nulledFields", "diffFields"}

// Schema is one writer schema, parsed once per schema ID into its own hamba cache and compiled for walking.
// A Schema is immutable after ParseSchema and safe to share.
type Schema struct {
	ID   string
	JSON string

	avro avro.Schema
	root *node

	// CDC support: set when field 0 is the ChangeEventHeader record.
	cdc       bool
	header    *node
	timeField int // top-level index of the event-time field: ChangeEventHeader (commitTimestamp) or CreatedDate; -1 none

	// Bitmap expansion tables: top-level names, and for each top-level index the dotted subfield names of the
	// compound record (nil when the field is not a record or a union around one).
	topNames []string
	subNames [][]string
	soqlTop  []string
	soqlSub  [][]string
}

// ParseSchema parses schema JSON as the writer schema with the given ID. Each call uses its own name cache, so
// two versions of a record with the same name never collide.
func ParseSchema(id, schemaJSON string) (*Schema, error) {
	as, err := avro.ParseWithCache(schemaJSON, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parse schema %q: %w: %v", id, ErrBadSchema, err)
	}
	c := compiler{named: map[string]*node{}}
	root, err := c.compile(as, false)
	if err != nil {
		return nil, fmt.Errorf("compile schema %q: %w: %v", id, ErrBadSchema, err)
	}
	s := &Schema{ID: id, JSON: schemaJSON, avro: as, root: root, timeField: -1}
	if root.kind != kRecord {
		return s, nil
	}
	s.buildBitmapTables()
	for i, f := range root.fields {
		if i == 0 && f.name == "ChangeEventHeader" && f.typ.kind == kRecord {
			s.cdc, s.header = true, f.typ
			for _, hf := range f.typ.fields {
				for slot, name := range slotField {
					if hf.name == name && hf.typ.kind == kArray && hf.typ.items.kind == kString {
						hf.typ.capture = int8(slot + 1)
					}
				}
			}
			s.timeField = 0
		}
	}
	if !s.cdc {
		for i, f := range root.fields {
			if f.name == "CreatedDate" && isLongish(f.typ) {
				s.timeField = i
			}
		}
	}
	return s, nil
}

// IsChangeEvent reports whether the schema is a CDC change event (field 0 is ChangeEventHeader).
func (s *Schema) IsChangeEvent() bool { return s.cdc }

// FieldNames returns the top-level field names in schema order.
func (s *Schema) FieldNames() []string { return append([]string(nil), s.topNames...) }

func isLongish(n *node) bool {
	switch n.kind {
	case kLong, kLongTime:
		return true
	case kUnion:
		for _, b := range n.branches {
			if b.kind == kLong || b.kind == kLongTime {
				return true
			}
		}
	}
	return false
}

// timeFieldNames are epoch-millisecond fields recognised by name (CDC header and standard audit fields).
var timeFieldNames = map[string]bool{
	"commitTimestamp": true, "CreatedDate": true, "LastModifiedDate": true, "SystemModstamp": true,
}

// isTimeField reports whether a field holds epoch milliseconds: a known name, a Salesforce doc of the form
// `Role:DateTime[:FieldId]`, or the Avro logical type timestamp-millis.
func isTimeField(f *avro.Field) bool {
	if timeFieldNames[f.Name()] {
		return true
	}
	parts := strings.Split(f.Doc(), ":")
	return len(parts) >= 2 && parts[1] == "DateTime"
}

type compiler struct {
	named map[string]*node
	depth int
}

func (c *compiler) compile(s avro.Schema, timeHint bool) (*node, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 100 {
		return nil, fmt.Errorf("schema nested too deeply")
	}
	switch t := s.(type) {
	case *avro.NullSchema:
		return &node{kind: kNull}, nil
	case *avro.PrimitiveSchema:
		return compilePrimitive(t, timeHint)
	case *avro.RefSchema:
		if n, ok := c.named[t.Schema().FullName()]; ok {
			return n, nil
		}
		return c.compile(t.Schema(), timeHint)
	case *avro.RecordSchema:
		n := &node{kind: kRecord, name: t.FullName()}
		c.named[n.name] = n
		for _, f := range t.Fields() {
			ft, err := c.compile(f.Type(), isTimeField(f))
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name(), err)
			}
			key := appendJSONString(nil, f.Name())
			key = append(key, ':')
			n.fields = append(n.fields, &fieldNode{
				name: f.Name(), keyFirst: key, keyRest: append([]byte{','}, key...), typ: ft,
				time: isTimeField(f) && isLongish(ft),
			})
		}
		return n, nil
	case *avro.EnumSchema:
		n := &node{kind: kEnum, name: t.FullName(), symbols: t.Symbols()}
		for _, sym := range t.Symbols() {
			n.symJSON = append(n.symJSON, appendJSONString(nil, sym))
		}
		c.named[n.name] = n
		return n, nil
	case *avro.FixedSchema:
		n := &node{kind: kFixed, name: t.FullName(), size: t.Size()}
		c.named[n.name] = n
		return n, nil
	case *avro.ArraySchema:
		items, err := c.compile(t.Items(), false)
		if err != nil {
			return nil, err
		}
		return &node{kind: kArray, items: items}, nil
	case *avro.MapSchema:
		vals, err := c.compile(t.Values(), false)
		if err != nil {
			return nil, err
		}
		return &node{kind: kMap, items: vals}, nil
	case *avro.UnionSchema:
		n := &node{kind: kUnion}
		for _, b := range t.Types() {
			bn, err := c.compile(b, timeHint)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
		}
		return n, nil
	}
	return nil, fmt.Errorf("unsupported schema type %T", s)
}

func compilePrimitive(t *avro.PrimitiveSchema, timeHint bool) (*node, error) {
	switch t.Type() {
	case avro.Null:
		return &node{kind: kNull}, nil
	case avro.Boolean:
		return &node{kind: kBool}, nil
	case avro.Int:
		return &node{kind: kInt}, nil
	case avro.Long:
		if timeHint || (t.Logical() != nil && t.Logical().Type() == avro.TimestampMillis) {
			return &node{kind: kLongTime}, nil
		}
		return &node{kind: kLong}, nil
	case avro.Float:
		return &node{kind: kFloat}, nil
	case avro.Double:
		return &node{kind: kDouble}, nil
	case avro.Bytes:
		return &node{kind: kBytes}, nil
	case avro.String:
		return &node{kind: kString}, nil
	}
	return nil, fmt.Errorf("unsupported primitive type %s", t.Type())
}

// recordOf returns the record inside n: n itself, or the first record branch of a union ([null,R], [string,R],
// [null,string,R]). Nil when there is none.
func recordOf(n *node) *node {
	if n.kind == kRecord {
		return n
	}
	if n.kind == kUnion {
		for _, b := range n.branches {
			if b.kind == kRecord {
				return b
			}
		}
	}
	return nil
}
