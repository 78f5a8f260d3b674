package query

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
)

// maxDepth bounds the nesting of values read from a payload (recursive schemas on hostile bytes).
const maxDepth = 200

// rfc3339Millis is the layout epoch-millisecond fields are rendered with under TimeRFC3339.
const rfc3339Millis = "2006-01-02T15:04:05.000Z07:00"

// Decoder reads Avro payloads with a compiled Schema, through hamba/avro's Reader primitives: straight to JSON
// (AppendJSON) or into filter values (Decode). It keeps reusable buffers, so it is not safe for concurrent
// use; give each goroutine its own. hamba/avro stays behind Schema and Decoder, so it can be replaced.
type Decoder struct {
	// TimeRFC3339 renders epoch-millisecond fields (commitTimestamp, CreatedDate, LastModifiedDate,
	// SystemModstamp, fields documented `…:DateTime`, logical timestamp-millis) as RFC 3339 strings.
	TimeRFC3339 bool

	r       *avro.Reader
	payload int // length of the current payload
	err     error
	scratch []byte

	// arena holds the bitmap strings captured from ChangeEventHeader during the current walk.
	arena   []byte
	capture [numSlots][]span
}

type span struct{ start, end int }

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	return &Decoder{r: avro.NewReader(nil, 0, avro.WithReaderConfig(avroAPI))}
}

func (d *Decoder) reset(payload []byte) {
	d.r.Reset(payload)
	d.r.Error = nil
	d.err = nil
	d.payload = len(payload)
	d.arena = d.arena[:0]
	for i := range d.capture {
		d.capture[i] = d.capture[i][:0]
	}
}

// finish checks for read errors and trailing bytes after a walk.
func (d *Decoder) finish() error {
	if d.err == nil && d.r.Error != nil {
		d.err = d.r.Error
		if errors.Is(d.err, io.EOF) {
			d.err = io.ErrUnexpectedEOF
		}
	}
	if d.err == nil {
		d.r.Peek()
		if d.r.Error == nil {
			d.err = errors.New("trailing bytes after the record")
		}
		d.r.Error = nil
	}
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrUndecodable, d.err)
	}
	return nil
}

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *Decoder) failed() bool { return d.err != nil || d.r.Error != nil }

// AppendJSON appends the payload decoded with s as one JSON object (schema field order, unions unwrapped,
// long exact, bytes base64) to dst. It never panics on arbitrary bytes; a payload that does not decode gives
// an error wrapping ErrUndecodable (dst may then hold a partial object: truncate it).
func (d *Decoder) AppendJSON(dst []byte, s *Schema, payload []byte) ([]byte, error) {
	d.reset(payload)
	dst = d.writeNode(dst, s.root, 0)
	return dst, d.finish()
}

// readLen reads a string/bytes length and checks it against the payload.
func (d *Decoder) readLen() int {
	n := d.r.ReadLong()
	if n < 0 || n > int64(d.payload) {
		d.fail("invalid length %d", n)
		return 0
	}
	return int(n)
}

// readRaw reads a string or bytes value into the scratch buffer (valid until the next read).
func (d *Decoder) readRaw() []byte {
	n := d.readLen()
	if n == 0 || d.failed() {
		return nil
	}
	if cap(d.scratch) < n {
		d.scratch = make([]byte, n, max(n, 4096))
	}
	b := d.scratch[:n]
	d.r.Read(b)
	return b
}

// readCount reads an array or map block count; 0 ends the value.
func (d *Decoder) readCount() int {
	n, _ := d.r.ReadBlockHeader()
	if n < 0 || n > int64(d.payload) {
		d.fail("invalid block count %d", n)
		return 0
	}
	return int(n)
}

func (d *Decoder) readUnion(n *node) *node {
	i := d.r.ReadLong()
	if d.failed() {
		return nil
	}
	if i < 0 || i >= int64(len(n.branches)) {
		d.fail("union index %d out of range", i)
		return nil
	}
	return n.branches[i]
}

func (d *Decoder) readEnum(n *node) int {
	i := d.r.ReadInt()
	if d.failed() {
		return -1
	}
	if i < 0 || int(i) >= len(n.symbols) {
		d.fail("enum index %d out of range", i)
		return -1
	}
	return int(i)
}

func (d *Decoder) writeNode(dst []byte, n *node, depth int) []byte {
	if depth > maxDepth {
		d.fail("value nested too deeply")
		return dst
	}
	switch n.kind {
	case kNull:
		return append(dst, "null"...)
	case kBool:
		if d.r.ReadBool() {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case kInt:
		return strconv.AppendInt(dst, int64(d.r.ReadInt()), 10)
	case kLong:
		return strconv.AppendInt(dst, d.r.ReadLong(), 10)
	case kLongTime:
		v := d.r.ReadLong()
		if d.TimeRFC3339 {
			return appendMillisTime(dst, v)
		}
		return strconv.AppendInt(dst, v, 10)
	case kFloat:
		return appendFloat(dst, float64(d.r.ReadFloat()), 32)
	case kDouble:
		return appendFloat(dst, d.r.ReadDouble(), 64)
	case kString:
		return appendJSONBytes(dst, d.readRaw())
	case kBytes:
		return appendBase64(dst, d.readRaw())
	case kFixed:
		if n.size > d.payload {
			d.fail("fixed size %d beyond payload", n.size)
			return dst
		}
		if cap(d.scratch) < n.size {
			d.scratch = make([]byte, n.size)
		}
		b := d.scratch[:n.size]
		d.r.Read(b)
		return appendBase64(dst, b)
	case kEnum:
		i := d.readEnum(n)
		if i < 0 {
			return dst
		}
		return append(dst, n.symJSON[i]...)
	case kUnion:
		b := d.readUnion(n)
		if b == nil {
			return dst
		}
		return d.writeNode(dst, b, depth+1)
	case kRecord:
		dst = append(dst, '{')
		for i, f := range n.fields {
			if i == 0 {
				dst = append(dst, f.keyFirst...)
			} else {
				dst = append(dst, f.keyRest...)
			}
			dst = d.writeNode(dst, f.typ, depth+1)
			if d.failed() {
				return dst
			}
		}
		return append(dst, '}')
	case kArray, kMap:
		// Both are blocks of items ending with an empty block; a map item is a string key and a value.
		open, end := byte('['), byte(']')
		if n.kind == kMap {
			open, end = '{', '}'
		}
		dst = append(dst, open)
		first := true
		for {
			c := d.readCount()
			if c == 0 || d.failed() {
				break
			}
			for ; c > 0; c-- {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				switch {
				case n.kind == kMap:
					dst = appendJSONBytes(dst, d.readRaw())
					dst = append(dst, ':')
					dst = d.writeNode(dst, n.items, depth+1)
				case n.capture > 0 && n.items.kind == kString:
					raw := d.readRaw()
					d.captureString(int(n.capture-1), raw)
					dst = appendJSONBytes(dst, raw)
				default:
					dst = d.writeNode(dst, n.items, depth+1)
				}
				if d.failed() {
					return dst
				}
			}
		}
		return append(dst, end)
	}
	d.fail("unknown node kind %d", n.kind)
	return dst
}

func (d *Decoder) captureString(slot int, b []byte) {
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	d.capture[slot] = append(d.capture[slot], span{start, len(d.arena)})
}

// captured returns the bitmap strings of a slot from the last walk. The strings alias the arena: they are
// valid until the next walk and must not be kept.
func (d *Decoder) captured(slot int, dst []string) []string {
	dst = dst[:0]
	for _, sp := range d.capture[slot] {
		dst = append(dst, unsafeString(d.arena[sp.start:sp.end]))
	}
	return dst
}

// skipNode reads past a value without rendering it.
func (d *Decoder) skipNode(n *node, depth int) {
	if depth > maxDepth {
		d.fail("value nested too deeply")
		return
	}
	switch n.kind {
	case kNull:
	case kBool:
		d.r.SkipBool()
	case kInt:
		d.r.SkipInt()
	case kLong, kLongTime:
		d.r.SkipLong()
	case kFloat:
		d.r.SkipNBytes(4)
	case kDouble:
		d.r.SkipNBytes(8)
	case kString, kBytes:
		if l := d.readLen(); l > 0 && !d.failed() {
			d.r.SkipNBytes(l)
		}
	case kFixed:
		if n.size > d.payload {
			d.fail("fixed size %d beyond payload", n.size)
			return
		}
		d.r.SkipNBytes(n.size)
	case kEnum:
		d.readEnum(n)
	case kUnion:
		if b := d.readUnion(n); b != nil {
			d.skipNode(b, depth+1)
		}
	case kRecord:
		for _, f := range n.fields {
			d.skipNode(f.typ, depth+1)
			if d.failed() {
				return
			}
		}
	case kArray, kMap:
		for {
			c := d.readCount()
			if c == 0 || d.failed() {
				return
			}
			for ; c > 0; c-- {
				if n.capture > 0 && n.items.kind == kString {
					d.captureString(int(n.capture-1), d.readRaw())
					if d.failed() {
						return
					}
					continue
				}
				if n.kind == kMap {
					if l := d.readLen(); l > 0 && !d.failed() {
						d.r.SkipNBytes(l)
					}
				}
				d.skipNode(n.items, depth+1)
				if d.failed() {
					return
				}
			}
		}
	}
}

// appendMillisTime renders epoch milliseconds as a quoted RFC 3339 UTC time; out-of-range values stay numbers.
func appendMillisTime(dst []byte, ms int64) []byte {
	const minMS, maxMS = -62135596800000, 253402300799999 // years 0001..9999
	if ms < minMS || ms > maxMS {
		return strconv.AppendInt(dst, ms, 10)
	}
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, rfc3339Millis)
	return append(dst, '"')
}

// appendFloat writes the shortest representation that round-trips (as encoding/json does: plain digits for
// 1e-6 <= |f| < 1e21, exponent form otherwise). NaN and ±Inf, which JSON cannot hold, become the strings
// "NaN", "Infinity" and "-Infinity".
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	return strconv.AppendFloat(dst, f, format, -1, bits)
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}
