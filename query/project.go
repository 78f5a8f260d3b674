package query

import (
	"fmt"
	"strings"
)

// Record columns: names in Options.Fields that are not event field paths.
const (
	colTopic        = "topic"
	colReplayID     = "replay_id"
	colEventID      = "event_id"
	colSchemaID     = "schema_id"
	colReceivedAt   = "received_at"
	colChanged      = "changed_fields"
	colNulled       = "nulled_fields"
	colDiff         = "diff_fields"
	colBitmapErrors = "bitmap_errors"
)

var recordColumns = []string{colTopic, colReplayID, colEventID, colSchemaID, colReceivedAt, colChanged, colNulled, colDiff, colBitmapErrors}

func isRecordColumn(name string) bool {
	for _, c := range recordColumns {
		if c == name {
			return true
		}
	}
	return false
}

// fieldPath splits an event field path: "BillingAddress.City" or "event.BillingAddress.City".
func fieldPath(name string) ([]string, error) {
	name = strings.TrimPrefix(name, "event.")
	parts := strings.Split(name, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("%w: field path %q has an empty part", ErrBadOption, name)
		}
	}
	return parts, nil
}

// resolvePath finds a field path in a schema. A first part that is not a top-level field but is a
// ChangeEventHeader field ("changeType") is taken as inside the header. It returns the top-level-anchored path
// and the node of the last field, or ok=false when the schema has no such field.
func resolvePath(s *Schema, parts []string) (resolved []string, last *fieldNode, ok bool) {
	rec := s.root
	if rec.kind != kRecord {
		return nil, nil, false
	}
	if findField(rec, parts[0]) == nil && s.cdc && findField(s.header, parts[0]) != nil {
		parts = append([]string{"ChangeEventHeader"}, parts...)
	}
	for i, p := range parts {
		f := findField(rec, p)
		if f == nil {
			return nil, nil, false
		}
		if i == len(parts)-1 {
			return parts, f, true
		}
		rec = recordOf(f.typ)
		if rec == nil {
			return nil, nil, false
		}
	}
	return nil, nil, false
}

func findField(rec *node, name string) *fieldNode {
	for _, f := range rec.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

// projNode selects fields of a record for output: all, or some fields each with its own selection.
type projNode struct {
	all    bool
	fields []*projNode // by field index; nil = left out
}

// buildProjection selects the event fields named by paths in schema s (paths absent from s are ignored).
func buildProjection(s *Schema, paths [][]string) *projNode {
	root := &projNode{}
	if s.root.kind != kRecord {
		root.all = true
		return root
	}
	for _, p := range paths {
		rp, _, ok := resolvePath(s, p)
		if !ok {
			continue
		}
		pn, rec := root, s.root
		for i, name := range rp {
			if pn.all {
				break
			}
			if pn.fields == nil {
				pn.fields = make([]*projNode, len(rec.fields))
			}
			idx := 0
			for j, f := range rec.fields {
				if f.name == name {
					idx = j
				}
			}
			if pn.fields[idx] == nil {
				pn.fields[idx] = &projNode{}
			}
			if i == len(rp)-1 {
				pn.fields[idx] = &projNode{all: true}
				break
			}
			pn, rec = pn.fields[idx], recordOf(rec.fields[idx].typ)
		}
	}
	if root.fields == nil {
		root.fields = make([]*projNode, len(s.root.fields))
	}
	return root
}

// AppendJSONProjected is AppendJSON keeping only the selected fields (schema order kept). Fields left out are
// still read (and the ChangeEventHeader bitmaps still captured) but not written.
func (d *Decoder) appendJSONProjected(dst []byte, s *Schema, payload []byte, pn *projNode) ([]byte, error) {
	d.reset(payload)
	if pn.all {
		dst = d.writeNode(dst, s.root, 0)
	} else {
		dst = d.writeProjected(dst, s.root, pn, 0)
	}
	return dst, d.finish()
}

func (d *Decoder) writeProjected(dst []byte, rec *node, pn *projNode, depth int) []byte {
	if depth > maxDepth {
		d.fail("value nested too deeply")
		return dst
	}
	dst = append(dst, '{')
	first := true
	for i, f := range rec.fields {
		sel := pn.fields[i]
		if sel == nil {
			d.skipNode(f.typ, depth+1)
		} else {
			if first {
				dst = append(dst, f.keyFirst...)
			} else {
				dst = append(dst, f.keyRest...)
			}
			first = false
			switch {
			case sel.all:
				dst = d.writeNode(dst, f.typ, depth+1)
			default:
				t := f.typ
				if t.kind == kUnion {
					t = d.readUnion(t)
				}
				if t == nil {
					return dst
				}
				if t == recordOf(f.typ) && sel.fields != nil {
					dst = d.writeProjected(dst, t, sel, depth+1)
				} else {
					dst = d.writeNode(dst, t, depth+1)
				}
			}
		}
		if d.failed() {
			return dst
		}
	}
	return append(dst, '}')
}
