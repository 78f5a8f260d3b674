package query

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

// formatter writes records in one output format through runner.out. event returns decoding errors only
// (nothing is written for that event then); write errors are kept in runner.out.
type formatter interface {
	begin() error
	event(topic string, ev *archive.Event, s *Schema) error
	gap(g gapRow) error
	end() error
}

func newFormatter(r *runner) formatter {
	switch r.opts.Format {
	case FormatJSON:
		return &jsonFormatter{r: r, array: true}
	case FormatCSV:
		return newTabular(r, false)
	case FormatTable:
		return newTabular(r, true)
	case FormatRaw:
		return &rawFormatter{r: r}
	}
	return &jsonFormatter{r: r}
}

// recordState renders the shared parts of a record: bitmaps and the projection.
type recordState struct {
	raw      [numSlots][]string
	names    [numSlots][]string
	problems []string
	paths    [][]string
	projs    map[*Schema]*projNode
}

// expand expands the bitmaps captured by the decoder's last walk of a change event.
func (st *recordState) expand(d *Decoder, s *Schema, soql bool) {
	st.problems = st.problems[:0]
	for slot := range st.raw {
		st.raw[slot] = d.captured(slot, st.raw[slot])
		st.names[slot], st.problems = s.expandInto(st.names[slot][:0], st.problems, slotField[slot], st.raw[slot], soql)
	}
}

type jsonFormatter struct {
	r     *runner
	array bool
	n     int
	buf   []byte
	st    recordState
}

func (f *jsonFormatter) begin() error {
	for _, name := range f.r.opts.Fields {
		if isRecordColumn(name) {
			continue
		}
		p, err := fieldPath(name)
		if err != nil {
			return err
		}
		f.st.paths = append(f.st.paths, p)
	}
	f.st.projs = map[*Schema]*projNode{}
	if f.array {
		f.r.out.write([]byte{'['})
	}
	return nil
}

func (f *jsonFormatter) sep() {
	if !f.array {
		return
	}
	if f.n == 0 {
		f.buf = append(f.buf, '\n')
	} else {
		f.buf = append(f.buf, ",\n"...)
	}
}

func (f *jsonFormatter) done() {
	if !f.array {
		f.buf = append(f.buf, '\n')
	}
	f.r.out.write(f.buf)
	f.n++
}

func (f *jsonFormatter) event(topic string, ev *archive.Event, s *Schema) error {
	f.buf = f.buf[:0]
	f.sep()
	var err error
	f.buf, err = f.appendRecord(f.buf, topic, ev, s)
	if err != nil {
		return err
	}
	f.done()
	return nil
}

// appendRecord renders the record shape of DESIGN.md.
func (f *jsonFormatter) appendRecord(dst []byte, topic string, ev *archive.Event, s *Schema) ([]byte, error) {
	d := f.r.dec
	dst = append(dst, `{"topic":`...)
	dst = appendJSONString(dst, topic)
	dst = append(dst, `,"replay_id":"`...)
	dst = hex.AppendEncode(dst, ev.ReplayID)
	dst = append(dst, `","event_id":`...)
	dst = appendJSONString(dst, ev.EventID)
	dst = append(dst, `,"schema_id":`...)
	dst = appendJSONString(dst, ev.SchemaID)
	dst = append(dst, `,"received_at":"`...)
	dst = ev.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","event":`...)
	var err error
	if len(f.st.paths) > 0 {
		pn, ok := f.st.projs[s]
		if !ok {
			pn = buildProjection(s, f.st.paths)
			f.st.projs[s] = pn
		}
		dst, err = d.appendJSONProjected(dst, s, ev.Payload, pn)
	} else {
		dst, err = d.AppendJSON(dst, s, ev.Payload)
	}
	if err != nil {
		return dst, err
	}
	if s.cdc {
		f.st.expand(d, s, f.r.opts.FlattenCompound)
		for slot, key := range [numSlots]string{`,"changed_fields":[`, `,"nulled_fields":[`, `,"diff_fields":[`} {
			dst = appendStringArray(append(dst, key...), f.st.names[slot])
		}
		if len(f.st.problems) > 0 {
			dst = appendStringArray(append(dst, `,"bitmap_errors":[`...), f.st.problems)
		}
	}
	return append(dst, '}'), nil
}

// appendStringArray appends the quoted strings and the closing bracket.
func appendStringArray(dst []byte, ss []string) []byte {
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

func (f *jsonFormatter) gap(g gapRow) error {
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode gap: %w", err)
	}
	f.buf = f.buf[:0]
	f.sep()
	f.buf = append(f.buf, b...)
	f.done()
	return nil
}

func (f *jsonFormatter) end() error {
	if f.array {
		if f.n > 0 {
			f.r.out.write([]byte{'\n'})
		}
		f.r.out.write([]byte("]\n"))
	}
	return nil
}

// rawFormatter writes each stored payload prefixed by its length as an unsigned varint
// (encoding/binary.AppendUvarint, protobuf-style), nothing else: the stream is the payloads in scan order.
type rawFormatter struct {
	r   *runner
	buf []byte
}

func (f *rawFormatter) begin() error {
	if len(f.r.opts.Fields) > 0 {
		return fmt.Errorf("%w: --fields cannot be used with the raw format", ErrBadOption)
	}
	return nil
}

func (f *rawFormatter) event(_ string, ev *archive.Event, _ *Schema) error {
	f.buf = binary.AppendUvarint(f.buf[:0], uint64(len(ev.Payload)))
	f.buf = append(f.buf, ev.Payload...)
	f.r.out.write(f.buf)
	return nil
}

func (f *rawFormatter) gap(gapRow) error {
	return fmt.Errorf("%w: gaps have no raw form", ErrBadOption)
}
func (f *rawFormatter) end() error { return nil }
