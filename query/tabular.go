package query

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sfarchive/sfarchive/archive"
)

// Tabular formats (csv, table). Columns are Options.Fields in that order; without it, csv has the record
// columns and every event leaf field of the first event's schema (dotted paths, schema order), table a short
// summary. A cell holds a string as is, a number or boolean as JSON, null as empty, and a record, array or
// map as compact JSON. Columns a schema lacks (e.g. a field added by a later schema version) are empty.

// tablePending is how many rows the table format reads before fixing its column widths.
const tablePending = 100

type column struct {
	name string
	path []string // nil for record columns
}

type colPlan struct {
	need    []bool
	fields  []*fieldNode // per column: the resolved field, nil = record column or absent
	paths   [][]string
	bitmaps bool
}

type tabular struct {
	r     *runner
	table bool
	cols  []column
	plans map[*Schema]*colPlan
	st    recordState
	row   []string

	wroteHeader bool
	rowbuf      bytes.Buffer
	cw          *csv.Writer

	pending [][]string
	widths  []int
	fixed   bool
}

func newTabular(r *runner, table bool) *tabular {
	t := &tabular{r: r, table: table, plans: map[*Schema]*colPlan{}}
	t.cw = csv.NewWriter(&t.rowbuf)
	return t
}

func (t *tabular) begin() error {
	if t.r.opts.Gaps {
		for _, c := range gapColumns {
			t.cols = append(t.cols, column{name: c})
		}
		return nil
	}
	if len(t.r.opts.Fields) == 0 && !t.table {
		if cols, ok := t.csvColumnsFromStats(); ok {
			t.cols = cols
		}
		return nil
	}
	for _, name := range t.r.opts.Fields {
		c := column{name: name}
		if !isRecordColumn(name) {
			p, err := fieldPath(name)
			if err != nil {
				return err
			}
			c.path = p
		}
		t.cols = append(t.cols, c)
	}
	return nil
}

// statsSource is implemented by *archive.Archive: its per-topic schema use lets csv choose columns covering
// every schema version before the scan.
type statsSource interface {
	Stats() (archive.Stats, error)
}

// csvColumnsFromStats gives the default csv columns for all schemas used by the selected topics (in topic
// order, then first use): the union of their leaf paths in first-appearance order. ok is false when the source
// cannot tell, or a schema cannot be read (the first event's schema is used then, and the scan reports bad
// schemas).
func (t *tabular) csvColumnsFromStats() (cols []column, ok bool) {
	ss, isStats := t.r.src.(statsSource)
	if !isStats {
		return nil, false
	}
	st, err := ss.Stats()
	if err != nil {
		return nil, false
	}
	byTopic := map[string]archive.TopicStats{}
	for _, ts := range st.Topics {
		byTopic[ts.Topic] = ts
	}
	seen := map[string]bool{}
	var names []string
	add := func(ns ...string) {
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	add(colTopic, colReplayID, colEventID, colSchemaID, colReceivedAt)
	cdc := false
	for _, topic := range t.r.res.Topics {
		uses := slices.Clone(byTopic[topic].Schemas)
		slices.SortStableFunc(uses, func(a, b archive.SchemaUse) int { return a.FirstReceived.Compare(b.FirstReceived) })
		for _, u := range uses {
			if u.SchemaID == "" {
				continue
			}
			s, err := t.r.schema(u.SchemaID)
			if err != nil {
				return nil, false
			}
			cdc = cdc || s.cdc
			if s.root.kind == kRecord {
				for _, f := range s.root.fields {
					add(leafPaths(nil, f.name, f.typ)...)
				}
			}
		}
	}
	if cdc {
		add(colChanged, colNulled, colDiff, colBitmapErrors)
	}
	for _, n := range names {
		c := column{name: n}
		if !isRecordColumn(n) {
			c.path, _ = fieldPath(n)
		}
		cols = append(cols, c)
	}
	return cols, true
}

// defaultColumns picks columns from the first event's schema when --fields is not given.
func (t *tabular) defaultColumns(s *Schema) {
	add := func(names ...string) {
		for _, n := range names {
			c := column{name: n}
			if !isRecordColumn(n) {
				c.path, _ = fieldPath(n)
			}
			t.cols = append(t.cols, c)
		}
	}
	if t.table {
		if s.cdc {
			add(colReplayID, "ChangeEventHeader.commitTimestamp", "ChangeEventHeader.changeType",
				"ChangeEventHeader.entityName", "ChangeEventHeader.recordIds", colChanged)
			return
		}
		add(colReplayID, colReceivedAt)
		add(s.topNames...)
		return
	}
	add(colTopic, colReplayID, colEventID, colSchemaID, colReceivedAt)
	if s.root.kind == kRecord {
		for _, f := range s.root.fields {
			add(leafPaths(nil, f.name, f.typ)...)
		}
	}
	if s.cdc {
		add(colChanged, colNulled, colDiff, colBitmapErrors)
	}
}

// leafPaths flattens a field to dotted leaf paths: a compound record gives one path per subfield; a union that
// can also hold a non-record value (Name: [null,string,PersonName]) keeps its own column as well.
func leafPaths(out []string, prefix string, n *node) []string {
	rec := recordOf(n)
	if rec == nil {
		return append(out, prefix)
	}
	if n.kind == kUnion {
		for _, b := range n.branches {
			if b.kind != kNull && b.kind != kRecord {
				out = append(out, prefix)
				break
			}
		}
	}
	for _, f := range rec.fields {
		out = leafPaths(out, prefix+"."+f.name, f.typ)
	}
	return out
}

func (t *tabular) plan(s *Schema) *colPlan {
	if p, ok := t.plans[s]; ok {
		return p
	}
	p := &colPlan{need: make([]bool, len(s.topNames)), fields: make([]*fieldNode, len(t.cols)), paths: make([][]string, len(t.cols))}
	for i, c := range t.cols {
		if c.path == nil {
			if (c.name == colChanged || c.name == colNulled || c.name == colDiff || c.name == colBitmapErrors) && s.cdc {
				p.bitmaps = true
				p.need[0] = true
			}
			continue
		}
		rp, f, ok := resolvePath(s, c.path)
		if !ok {
			continue
		}
		p.fields[i], p.paths[i] = f, rp
		for j, n := range s.topNames {
			if n == rp[0] {
				p.need[j] = true
			}
		}
	}
	t.plans[s] = p
	return p
}

func (t *tabular) event(topic string, ev *archive.Event, s *Schema) error {
	if t.cols == nil {
		t.defaultColumns(s)
	}
	p := t.plan(s)
	d := t.r.dec
	vals, err := d.Decode(s, ev.Payload, p.need)
	if err != nil {
		return err
	}
	if p.bitmaps {
		t.st.expand(d, s, t.r.opts.FlattenCompound)
	}
	row := make([]string, len(t.cols))
	for i, c := range t.cols {
		switch c.name {
		case colTopic:
			row[i] = topic
		case colReplayID:
			row[i] = hex.EncodeToString(ev.ReplayID)
		case colEventID:
			row[i] = ev.EventID
		case colSchemaID:
			row[i] = ev.SchemaID
		case colReceivedAt:
			row[i] = ev.ReceivedAt.UTC().Format(time.RFC3339Nano)
		case colChanged, colNulled, colDiff, colBitmapErrors:
			if !p.bitmaps {
				continue
			}
			list := t.st.problems
			switch c.name {
			case colChanged:
				list = t.st.names[slotChanged]
			case colNulled:
				list = t.st.names[slotNulled]
			case colDiff:
				list = t.st.names[slotDiff]
			}
			row[i] = t.list(list)
		default:
			if p.fields[i] != nil {
				row[i] = t.cell(lookup(vals, p.paths[i]), p.fields[i])
			}
		}
	}
	t.emit(row)
	return nil
}

// lookup follows a resolved path through decoded records; a union holding a non-record gives nil below it.
func lookup(vals map[string]any, path []string) any {
	var v any = vals
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// list renders a list of names: JSON in csv (lossless), comma-separated in a table (for reading).
func (t *tabular) list(names []string) string {
	if t.table {
		return strings.Join(names, ", ")
	}
	return string(appendStringArray([]byte{'['}, names))
}

func (t *tabular) cell(v any, f *fieldNode) string {
	if arr, ok := v.([]any); ok && t.table {
		names := make([]string, 0, len(arr))
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				names = nil
				break
			}
			names = append(names, s)
		}
		if names != nil {
			return strings.Join(names, ", ")
		}
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		if f.time && t.r.dec.TimeRFC3339 {
			return strings.Trim(string(appendMillisTime(nil, x)), `"`)
		}
		return strconv.FormatInt(x, 10)
	case float64:
		bits := 64
		if n := f.typ; n.kind == kFloat || n.kind == kUnion && branchFor(n, x) != nil && branchFor(n, x).kind == kFloat {
			bits = 32
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strings.Trim(string(appendFloat(nil, x, bits)), `"`)
		}
		return string(appendFloat(nil, x, bits))
	}
	return string(t.r.dec.appendValueJSON(nil, v, f.typ, f.time))
}

func (t *tabular) gap(g gapRow) error {
	t.emit(g.cells())
	return nil
}

func (t *tabular) emit(row []string) {
	if !t.table {
		if !t.wroteHeader {
			t.writeCSV(t.header())
			t.wroteHeader = true
		}
		t.writeCSV(row)
		return
	}
	for i := range row {
		row[i] = cleanCell(row[i])
	}
	if !t.fixed {
		t.pending = append(t.pending, row)
		if len(t.pending) >= tablePending {
			t.flushTable()
		}
		return
	}
	t.writeTableRow(row)
}

// header gives the column names: full paths in csv; in a table, the last part of a field path (changeType for
// ChangeEventHeader.changeType) to keep columns narrow.
func (t *tabular) header() []string {
	h := make([]string, len(t.cols))
	for i, c := range t.cols {
		h[i] = c.name
		if t.table && len(c.path) > 0 {
			h[i] = c.path[len(c.path)-1]
		}
	}
	return h
}

func (t *tabular) writeCSV(row []string) {
	t.rowbuf.Reset()
	_ = t.cw.Write(row) // writes to a bytes.Buffer: cannot fail
	t.cw.Flush()
	t.r.out.write(t.rowbuf.Bytes())
}

func (t *tabular) end() error {
	if t.cols == nil {
		t.cols = []column{{name: colTopic}, {name: colReplayID}, {name: colEventID}, {name: colSchemaID}, {name: colReceivedAt}}
	}
	if !t.table {
		if !t.wroteHeader {
			t.writeCSV(t.header())
		}
		return nil
	}
	if !t.fixed {
		t.flushTable()
	}
	return nil
}

// cleanCell keeps a table cell on one line.
func cleanCell(s string) string {
	if strings.ContainsAny(s, "\n\r\t") {
		s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
	}
	return s
}

// flushTable fixes the column widths from the rows read so far and writes them under a header. Columns
// share the width: the widest is narrowed first, down to 4 characters; longer cells end in "…".
func (t *tabular) flushTable() {
	width := t.r.opts.Width
	if width <= 0 {
		width = 120
	}
	h := t.header()
	t.widths = make([]int, len(h))
	for i, name := range h {
		t.widths[i] = utf8.RuneCountInString(name)
	}
	for _, row := range t.pending {
		for i, c := range row {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
		}
	}
	total := func() int {
		n := 2 * (len(t.widths) - 1)
		for _, w := range t.widths {
			n += w
		}
		return n
	}
	// Narrow the widest column first; identifying columns (replay ID, times) only once the others are at 8.
	pinned := make([]bool, len(h))
	for i, c := range t.cols {
		switch c.name {
		case colTopic, colReplayID, colEventID, colReceivedAt, "time", "from_replay_id", "to_replay_id":
			pinned[i] = true
		}
	}
	for _, phase := range []struct {
		pinnedToo bool
		floor     int
	}{{false, 8}, {true, 4}} {
		for total() > width {
			wi := -1
			for i, w := range t.widths {
				if (phase.pinnedToo || !pinned[i]) && w > phase.floor && (wi < 0 || w > t.widths[wi]) {
					wi = i
				}
			}
			if wi < 0 {
				break
			}
			t.widths[wi]--
		}
	}
	t.fixed = true
	t.writeTableRow(h)
	for _, row := range t.pending {
		t.writeTableRow(row)
	}
	t.pending = nil
}

func (t *tabular) writeTableRow(row []string) {
	var b []byte
	for i, c := range row {
		if i > 0 {
			b = append(b, "  "...)
		}
		w := t.widths[i]
		n := utf8.RuneCountInString(c)
		if n > w {
			c = truncateRunes(c, w-1) + "…"
			n = w
		}
		b = append(b, c...)
		if i < len(row)-1 {
			b = append(b, strings.Repeat(" ", w-n)...)
		}
	}
	b = bytes.TrimRight(b, " ")
	t.r.out.write(append(b, '\n'))
}

func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
