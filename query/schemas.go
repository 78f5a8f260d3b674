package query

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// SchemaField is one field of a schema, for listings. Nested record fields are listed after their parent with
// dotted names (BillingAddress.City).
type SchemaField struct {
	Name  string // dotted path
	Index int    // position in its record (the bit a CDC bitmap uses)
	Type  string // compact type: "string", "[null,long]", "record Address", "array<string>", "enum ChangeType"
	Doc   string
}

// SchemaInfo describes one stored schema.
type SchemaInfo struct {
	ID          string
	Name        string // record full name, e.g. com.sforce.eventbus.AccountChangeEvent
	ChangeEvent bool
	Fields      []SchemaField
}

// DescribeSchema parses schema JSON and lists its fields, compound subfields included.
func DescribeSchema(id, schemaJSON string) (SchemaInfo, error) {
	s, err := ParseSchema(id, schemaJSON)
	if err != nil {
		return SchemaInfo{}, err
	}
	info := SchemaInfo{ID: id, ChangeEvent: s.cdc}
	rec, ok := s.avro.(*avro.RecordSchema)
	if !ok {
		return info, nil
	}
	info.Name = rec.FullName()
	info.Fields = listFields(nil, "", rec, 0)
	return info, nil
}

func listFields(out []SchemaField, prefix string, rec *avro.RecordSchema, depth int) []SchemaField {
	if depth > 10 {
		return out
	}
	for i, f := range rec.Fields() {
		name := prefix + f.Name()
		out = append(out, SchemaField{Name: name, Index: i, Type: typeString(f.Type()), Doc: f.Doc()})
		if sub := recordIn(f.Type()); sub != nil {
			out = listFields(out, name+".", sub, depth+1)
		}
	}
	return out
}

// recordIn returns the record of a field type: itself or a union's first record branch.
func recordIn(s avro.Schema) *avro.RecordSchema {
	switch t := s.(type) {
	case *avro.RecordSchema:
		return t
	case *avro.RefSchema:
		return recordIn(t.Schema())
	case *avro.UnionSchema:
		for _, b := range t.Types() {
			if r := recordIn(b); r != nil {
				return r
			}
		}
	}
	return nil
}

// typeString renders a type compactly; named types by their short name.
func typeString(s avro.Schema) string {
	switch t := s.(type) {
	case *avro.RecordSchema:
		return "record " + t.Name()
	case *avro.EnumSchema:
		return "enum " + t.Name() + "{" + strings.Join(t.Symbols(), ",") + "}"
	case *avro.FixedSchema:
		return fmt.Sprintf("fixed %s(%d)", t.Name(), t.Size())
	case *avro.RefSchema:
		return typeString(t.Schema())
	case *avro.ArraySchema:
		return "array<" + typeString(t.Items()) + ">"
	case *avro.MapSchema:
		return "map<" + typeString(t.Values()) + ">"
	case *avro.UnionSchema:
		parts := make([]string, len(t.Types()))
		for i, b := range t.Types() {
			parts[i] = typeString(b)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *avro.PrimitiveSchema:
		if l := t.Logical(); l != nil {
			return string(t.Type()) + "(" + string(l.Type()) + ")"
		}
		return string(t.Type())
	}
	return string(s.Type())
}

// FieldChange is one difference between two versions of a schema.
type FieldChange struct {
	Field  string // dotted path
	Change string // "added", "removed", "type changed", "moved"
	Old    string // old type or position ("" when added)
	New    string // new type or position ("" when removed)
}

func (c FieldChange) String() string {
	switch c.Change {
	case "added":
		return fmt.Sprintf("+ %s %s", c.Field, c.New)
	case "removed":
		return fmt.Sprintf("- %s %s", c.Field, c.Old)
	}
	return fmt.Sprintf("~ %s %s: %s → %s", c.Field, c.Change, c.Old, c.New)
}

// DiffSchemas compares two schema versions field by field (compound subfields too, by dotted name): fields
// added, removed, whose type changed, and whose position moved — a move changes what a CDC bitmap bit means.
// Changes are listed in the new schema's order, then removals in the old schema's order.
func DiffSchemas(oldJSON, newJSON string) ([]FieldChange, error) {
	oldInfo, err := DescribeSchema("old", oldJSON)
	if err != nil {
		return nil, err
	}
	newInfo, err := DescribeSchema("new", newJSON)
	if err != nil {
		return nil, err
	}
	oldBy := map[string]SchemaField{}
	for _, f := range oldInfo.Fields {
		oldBy[f.Name] = f
	}
	newBy := map[string]bool{}
	var out []FieldChange
	for _, f := range newInfo.Fields {
		newBy[f.Name] = true
		o, ok := oldBy[f.Name]
		switch {
		case !ok:
			out = append(out, FieldChange{Field: f.Name, Change: "added", New: f.Type})
		case o.Type != f.Type:
			out = append(out, FieldChange{Field: f.Name, Change: "type changed", Old: o.Type, New: f.Type})
		}
		if ok && o.Index != f.Index {
			out = append(out, FieldChange{Field: f.Name, Change: "moved", Old: fmt.Sprint(o.Index), New: fmt.Sprint(f.Index)})
		}
	}
	for _, f := range oldInfo.Fields {
		if !newBy[f.Name] {
			out = append(out, FieldChange{Field: f.Name, Change: "removed", Old: f.Type})
		}
	}
	return out, nil
}
