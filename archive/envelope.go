package archive

import (
	"encoding/binary"
	"fmt"
	"time"
)

// envelopeV1 is the only envelope version this build writes and reads.
const envelopeV1 = 1

// Envelope flags (a uvarint after the version byte). Unknown bits are an error.
const (
	flagBlankSchema = 1 << 0 // the event arrived with an empty schema ID
	flagNoTime      = 1 << 1 // ReceivedAt was the zero time
	flagCollision   = 1 << 2 // stored under a collision key; the real replay ID is in the envelope
	knownFlags      = flagBlankSchema | flagNoTime | flagCollision
)

// Header is one ProducerEvent header (key and raw value), kept in delivery order.
type Header struct {
	Key   string
	Value []byte
}

// Event is one archived event. In Scan callbacks its slices point into the read transaction (see Scan).
type Event struct {
	ReplayID   []byte    // verbatim, any length (8 or 10 bytes in practice)
	EventID    string    // ProducerEvent.id
	SchemaID   string    // may be "" (blank schema ID seen on /data/ChangeEvents): stored and flagged
	Headers    []Header  // in delivery order
	Payload    []byte    // Avro bytes exactly as received
	ReceivedAt time.Time // when the subscriber received it; Append stamps time.Now() if zero
	Seq        uint64    // per-topic arrival sequence; assigned by Append (callers leave 0)
}

// EncodeEnvelope returns the version-1 envelope of ev as stored under its replay ID. The replay ID itself is the
// bucket key, so it is not part of the envelope (except for collision entries, which Append writes internally).
//
// Layout: version byte (1), uvarint flags, then event ID, schema ID (each a uvarint length and bytes), a uvarint
// header count and per header key and value (length-prefixed), the receive time as 8-byte big-endian unix nanos,
// the uvarint sequence, [the real replay ID, length-prefixed, only with the collision flag], and finally the payload
// (length-prefixed, byte-for-byte, ending exactly at the end of the value).
func EncodeEnvelope(ev *Event) []byte {
	return encodeEnvelope(nil, ev, nil)
}

// encodeEnvelope appends the envelope of ev to dst. A non-nil collisionOf marks a collision entry and records the
// event's real replay ID.
func encodeEnvelope(dst []byte, ev *Event, collisionOf []byte) []byte {
	var flags uint64
	if ev.SchemaID == "" {
		flags |= flagBlankSchema
	}
	var nanos int64
	if ev.ReceivedAt.IsZero() {
		flags |= flagNoTime
	} else {
		nanos = ev.ReceivedAt.UnixNano()
	}
	if collisionOf != nil {
		flags |= flagCollision
	}
	size := 1 + 10 + 10 + len(ev.EventID) + 10 + len(ev.SchemaID) + 10 + 8 + 10 + 10 + len(collisionOf) +
		10 + len(ev.Payload)
	for _, h := range ev.Headers {
		size += 20 + len(h.Key) + len(h.Value)
	}
	if cap(dst)-len(dst) < size {
		grown := make([]byte, len(dst), len(dst)+size)
		copy(grown, dst)
		dst = grown
	}
	dst = append(dst, envelopeV1)
	dst = binary.AppendUvarint(dst, flags)
	dst = appendBytes(dst, ev.EventID)
	dst = appendBytes(dst, ev.SchemaID)
	dst = binary.AppendUvarint(dst, uint64(len(ev.Headers)))
	for _, h := range ev.Headers {
		dst = appendBytes(dst, h.Key)
		dst = appendBytes(dst, h.Value)
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(nanos))
	dst = binary.AppendUvarint(dst, ev.Seq)
	if collisionOf != nil {
		dst = appendBytes(dst, collisionOf)
	}
	dst = appendBytes(dst, ev.Payload)
	return dst
}

func appendBytes[T string | []byte](dst []byte, b T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// DecodeEnvelope decodes a stored envelope. It never panics: malformed input and unknown versions give an error
// wrapping ErrEnvelope. The returned Headers values and Payload alias b. ReplayID is set only for collision entries
// (for ordinary entries the replay ID is the key the envelope was stored under).
func DecodeEnvelope(b []byte) (Event, error) {
	var ev Event
	err := decodeEnvelope(b, &ev, nil)
	return ev, err
}

// decodeEnvelope decodes b into ev, reusing ev.Headers' backing array. intern, if non-nil, holds the previous
// schema ID string so that a run of events with the same schema ID does not allocate it again.
func decodeEnvelope(b []byte, ev *Event, intern *string) error {
	d := decoder{b: b}
	if len(b) == 0 {
		return fmt.Errorf("%w: empty value", ErrEnvelope)
	}
	if v := b[0]; v != envelopeV1 {
		return fmt.Errorf("%w: unknown envelope version %d", ErrEnvelope, v)
	}
	d.off = 1
	flags := d.uvarint("flags")
	if d.err == nil && flags&^knownFlags != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrEnvelope, flags)
	}
	eventID := d.bytes("event id")
	schemaID := d.bytes("schema id")
	n := d.uvarint("header count")
	if d.err == nil && n > uint64(len(b)-d.off)/2 {
		d.fail("header count", fmt.Errorf("%d headers in %d bytes", n, len(b)-d.off))
	}
	headers := ev.Headers[:0]
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.bytes("header key")
		v := d.bytes("header value")
		if d.err == nil {
			headers = append(headers, Header{Key: string(k), Value: v})
		}
	}
	nanos := d.fixed64("receive time")
	seq := d.uvarint("seq")
	var real []byte
	if flags&flagCollision != 0 {
		real = d.bytes("replay id")
		if d.err == nil && len(real) == 0 {
			d.fail("replay id", fmt.Errorf("empty"))
		}
	}
	payload := d.bytes("payload")
	if d.err != nil {
		return d.err
	}
	if d.off != len(b) {
		return fmt.Errorf("%w: %d trailing bytes after payload", ErrEnvelope, len(b)-d.off)
	}
	if blank := flags&flagBlankSchema != 0; blank != (len(schemaID) == 0) {
		return fmt.Errorf("%w: blank-schema flag %t disagrees with schema id %q", ErrEnvelope, blank, schemaID)
	}
	if flags&flagNoTime != 0 && nanos != 0 {
		return fmt.Errorf("%w: no-time flag with a receive time", ErrEnvelope)
	}
	ev.ReplayID = real
	ev.EventID = string(eventID)
	switch {
	case intern != nil && *intern == string(schemaID):
		ev.SchemaID = *intern
	default:
		ev.SchemaID = string(schemaID)
		if intern != nil {
			*intern = ev.SchemaID
		}
	}
	if len(headers) == 0 {
		headers = nil
	}
	ev.Headers = headers
	ev.Payload = payload
	if flags&flagNoTime != 0 {
		ev.ReceivedAt = time.Time{}
	} else {
		ev.ReceivedAt = time.Unix(0, int64(nanos)).UTC()
	}
	ev.Seq = seq
	return nil
}

// decoder reads length-prefixed fields; the first failure sticks and later reads return zero values.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at offset %d: %v", ErrEnvelope, field, d.off, err)
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, fmt.Errorf("bad varint"))
		return 0
	}
	if n > 1 && d.b[d.off+n-1] == 0 {
		d.fail(field, fmt.Errorf("non-minimal varint")) // one value, one encoding: envelopes re-encode identically
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(field, fmt.Errorf("length %d exceeds the %d bytes left", n, len(d.b)-d.off))
		return nil
	}
	v := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return v
}

func (d *decoder) fixed64(field string) uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail(field, fmt.Errorf("truncated"))
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}
