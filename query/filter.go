package query

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/sfarchive/sfarchive/archive"
)

// filter holds the compiled field filters of a query. Envelope filters (topic, replay and receive-time
// ranges) are applied by the archive scan; everything here needs the decoded event.
type filter struct {
	opts        Options
	changeTypes []string
	since       int64 // epoch ms; valid when hasSince
	until       int64
	hasSince    bool
	hasUntil    bool
	where       *whereExpr
	plans       map[*Schema]*filterPlan
	needBitmaps bool

	// scratch for bitmap strings
	raw [numSlots][]string
}

// filterPlan says which top-level fields one schema must decode for the filters.
type filterPlan struct {
	need   []bool
	header bool // the ChangeEventHeader is needed
	any    bool // some decoding is needed at all
}

func newFilter(opts Options) (*filter, error) {
	f := &filter{opts: opts, plans: map[*Schema]*filterPlan{}}
	// Change types ignore case, as entities do: globs and values are compared upper-cased.
	for _, p := range opts.ChangeTypes {
		f.changeTypes = append(f.changeTypes, strings.ToUpper(p))
	}
	if opts.Gaps {
		f.changeTypes = []string{"GAP_*"}
	}
	for i, p := range f.changeTypes {
		if _, err := path.Match(p, ""); err != nil {
			if !opts.Gaps {
				p = opts.ChangeTypes[i]
			}
			return nil, fmt.Errorf("%w: change type glob %q: %v", ErrBadOption, p, err)
		}
	}
	if !opts.Since.IsZero() {
		f.since, f.hasSince = opts.Since.UnixMilli(), true
	}
	if !opts.Until.IsZero() {
		f.until, f.hasUntil = opts.Until.UnixMilli(), true
	}
	if f.hasSince && f.hasUntil && f.until <= f.since {
		return nil, fmt.Errorf("%w: --until %s is not after --since %s", ErrBadOption, opts.Until, opts.Since)
	}
	if opts.Where != "" {
		w, err := compileWhere(opts.Where)
		if err != nil {
			return nil, err
		}
		f.where = w
	}
	f.needBitmaps = len(opts.ChangedFields) > 0 || (f.where != nil && f.where.usesBitmaps)
	return f, nil
}

func (f *filter) plan(s *Schema) *filterPlan {
	if p, ok := f.plans[s]; ok {
		return p
	}
	p := &filterPlan{need: make([]bool, len(s.topNames))}
	headerFilters := len(f.changeTypes) > 0 || len(f.opts.Entities) > 0 || len(f.opts.RecordIDs) > 0 || f.needBitmaps
	if s.cdc && headerFilters {
		p.header = true
	}
	if (f.hasSince || f.hasUntil) && s.timeField >= 0 {
		p.need[s.timeField] = true
		p.header = p.header || s.cdc
	}
	if f.where != nil {
		for i, name := range s.topNames {
			if f.where.idents[name] {
				p.need[i] = true
			}
		}
		if s.cdc {
			for _, hf := range s.header.fields {
				if f.where.idents[hf.name] {
					p.header = true
				}
			}
		}
		f.where.noteSchema(s)
	}
	if p.header {
		p.need[0] = true
	}
	p.any = slices.Contains(p.need, true) || f.where != nil
	f.plans[s] = p
	return p
}

// match decodes what the filters need and applies them.
func (f *filter) match(dec *Decoder, topic string, ev *archive.Event, s *Schema) (bool, error) {
	p := f.plan(s)
	if !p.any {
		// Header-only filters on a non-CDC event: a change-type/entity/record filter never matches it.
		return !(len(f.changeTypes) > 0 || len(f.opts.Entities) > 0 || len(f.opts.RecordIDs) > 0 ||
			len(f.opts.ChangedFields) > 0 || f.hasSince || f.hasUntil), nil
	}
	vals, err := dec.Decode(s, ev.Payload, p.need)
	if err != nil {
		return false, err
	}
	var header map[string]any
	if s.cdc {
		header, _ = vals["ChangeEventHeader"].(map[string]any)
	}
	if len(f.changeTypes) > 0 || len(f.opts.Entities) > 0 || len(f.opts.RecordIDs) > 0 || len(f.opts.ChangedFields) > 0 {
		if header == nil {
			return false, nil
		}
	}
	if len(f.changeTypes) > 0 && !matchGlobs(f.changeTypes, strings.ToUpper(asString(header["changeType"]))) {
		return false, nil
	}
	if len(f.opts.Entities) > 0 && !matchFold(f.opts.Entities, asString(header["entityName"])) {
		return false, nil
	}
	if len(f.opts.RecordIDs) > 0 && !matchRecordIDs(f.opts.RecordIDs, header["recordIds"]) {
		return false, nil
	}
	if f.hasSince || f.hasUntil {
		var t int64
		var ok bool
		if s.cdc {
			t, ok = header["commitTimestamp"].(int64)
		} else if s.timeField >= 0 {
			t, ok = vals[s.topNames[s.timeField]].(int64)
		}
		if !ok || (f.hasSince && t < f.since) || (f.hasUntil && t >= f.until) {
			return false, nil
		}
	}
	var bm BitmapResult
	if f.needBitmaps && header != nil {
		for slot := range f.raw {
			f.raw[slot] = dec.captured(slot, f.raw[slot])
		}
		bm = s.ExpandBitmaps(f.raw[slotChanged], f.raw[slotNulled], f.raw[slotDiff], false)
	}
	if len(f.opts.ChangedFields) > 0 && !matchesChangedField(f.opts.ChangedFields, bm.Changed) {
		return false, nil
	}
	if f.where != nil {
		return f.where.eval(topic, ev, s, vals, header, bm)
	}
	return true, nil
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func matchGlobs(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

func matchFold(want []string, s string) bool {
	for _, w := range want {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

// matchRecordIDs compares Salesforce IDs: equal, or a 15-character ID equal to the first 15 characters of an
// 18-character one (either way round). IDs are case-sensitive.
func matchRecordIDs(want []string, v any) bool {
	ids, _ := v.([]any)
	for _, x := range ids {
		id, _ := x.(string)
		for _, w := range want {
			if id == w || (len(w) == 15 && len(id) == 18 && id[:15] == w) || (len(id) == 15 && len(w) == 18 && w[:15] == id) {
				return true
			}
		}
	}
	return false
}

// matchesChangedField reports whether any wanted name is among the expanded changed fields. A wanted name
// matches a dotted name exactly ("BillingAddress.City"), by its SOQL form ("BillingCity"), or as the
// compound parent of a changed subfield ("BillingAddress"). Comparison ignores case, as Salesforce field
// names do.
func matchesChangedField(want, changed []string) bool {
	for _, c := range changed {
		parent, child, dotted := strings.Cut(c, ".")
		for _, w := range want {
			if strings.EqualFold(w, c) {
				return true
			}
			if dotted && (strings.EqualFold(w, parent) || strings.EqualFold(w, SOQLName(parent, child))) {
				return true
			}
		}
	}
	return false
}
