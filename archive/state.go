package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Keys of a topic's state bucket. Counters are 8-byte big-endian; times 8-byte big-endian unix nanos.
var (
	stateHWM           = []byte("hwm")            // latest replay ID the server confirmed (the mark)
	stateEvents        = []byte("events")         // events stored (collisions included)
	stateDuplicates    = []byte("duplicates")     // redeliveries skipped
	stateCollisions    = []byte("collisions")     // same replay ID, different event ID: stored under a collision key
	stateOutOfOrder    = []byte("out_of_order")   // stored with a key below the topic's highest key
	stateBlankSchema   = []byte("blank_schema")   // stored with an empty schema ID
	stateSeq           = []byte("seq")            // last arrival sequence assigned
	stateUnorderedTime = []byte("unordered_time") // stored with a receive time below the topic's latest
	stateMinReplay     = []byte("min_replay")     // lowest replay ID stored
	stateMaxReplay     = []byte("max_replay")     // highest replay ID stored
	stateFirstReceived = []byte("first_received") // earliest receive time stored
	stateLastReceived  = []byte("last_received")  // latest receive time stored
)

// topicState is a topic's state bucket in memory. Byte slices are copies (safe after the transaction).
type topicState struct {
	hwm                                        []byte
	events, duplicates, collisions, outOfOrder uint64
	blankSchema, seq, unorderedTime            uint64
	minReplay, maxReplay                       []byte
	firstReceived, lastReceived                int64
	hasReceived                                bool
}

// timeIndexUsable reports whether receive times grow with key order in this topic, which the times/ index
// relies on. Out-of-order keys, collisions or a receive time going backwards switch it off for good.
func (s *topicState) timeIndexUsable() bool {
	return s.outOfOrder == 0 && s.collisions == 0 && s.unorderedTime == 0
}

func loadState(b *bolt.Bucket) (topicState, error) {
	var s topicState
	if b == nil {
		return s, nil
	}
	u := func(key []byte, dst *uint64) error {
		v := b.Get(key)
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("state %s: %d bytes, want 8", key, len(v))
		}
		*dst = binary.BigEndian.Uint64(v)
		return nil
	}
	for _, f := range []struct {
		key []byte
		dst *uint64
	}{
		{stateEvents, &s.events}, {stateDuplicates, &s.duplicates}, {stateCollisions, &s.collisions},
		{stateOutOfOrder, &s.outOfOrder}, {stateBlankSchema, &s.blankSchema}, {stateSeq, &s.seq},
		{stateUnorderedTime, &s.unorderedTime},
	} {
		if err := u(f.key, f.dst); err != nil {
			return s, err
		}
	}
	var first, last uint64
	if err := u(stateFirstReceived, &first); err != nil {
		return s, err
	}
	if err := u(stateLastReceived, &last); err != nil {
		return s, err
	}
	s.hasReceived = b.Get(stateFirstReceived) != nil
	s.firstReceived, s.lastReceived = int64(first), int64(last)
	s.hwm = clone(b.Get(stateHWM))
	s.minReplay = clone(b.Get(stateMinReplay))
	s.maxReplay = clone(b.Get(stateMaxReplay))
	return s, nil
}

func (s *topicState) save(b *bolt.Bucket) error {
	put := func(key []byte, v uint64) error {
		return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
	}
	for _, f := range []struct {
		key []byte
		v   uint64
	}{
		{stateEvents, s.events}, {stateDuplicates, s.duplicates}, {stateCollisions, s.collisions},
		{stateOutOfOrder, s.outOfOrder}, {stateBlankSchema, s.blankSchema}, {stateSeq, s.seq},
		{stateUnorderedTime, s.unorderedTime},
	} {
		if err := put(f.key, f.v); err != nil {
			return err
		}
	}
	if s.hasReceived {
		if err := put(stateFirstReceived, uint64(s.firstReceived)); err != nil {
			return err
		}
		if err := put(stateLastReceived, uint64(s.lastReceived)); err != nil {
			return err
		}
	}
	for _, f := range []struct{ key, v []byte }{
		{stateHWM, s.hwm}, {stateMinReplay, s.minReplay}, {stateMaxReplay, s.maxReplay},
	} {
		if f.v == nil {
			continue
		}
		if err := b.Put(f.key, f.v); err != nil {
			return err
		}
	}
	return nil
}

// observe updates the counters for one stored event (not a duplicate).
func (s *topicState) observe(rid []byte, nanos int64, blank, collision bool) {
	s.events++
	if collision {
		s.collisions++
	} else if s.maxReplay != nil && bytes.Compare(rid, s.maxReplay) < 0 {
		s.outOfOrder++
	}
	if blank {
		s.blankSchema++
	}
	if s.minReplay == nil || bytes.Compare(rid, s.minReplay) < 0 {
		s.minReplay = rid
	}
	if s.maxReplay == nil || bytes.Compare(rid, s.maxReplay) > 0 {
		s.maxReplay = rid
	}
	switch {
	case !s.hasReceived:
		s.hasReceived, s.firstReceived, s.lastReceived = true, nanos, nanos
	case nanos < s.lastReceived:
		s.unorderedTime++
		s.firstReceived = min(s.firstReceived, nanos)
	default:
		s.lastReceived = nanos
	}
}

// schemaUse is the record topics/<topic>/schemas-used/<schema id> → version byte, uvarint count, first and last
// replay ID (length-prefixed), first and last receive time (8-byte big-endian unix nanos).
type schemaUse struct {
	count               uint64
	first, last         []byte
	firstNano, lastNano int64
}

const schemaUseV1 = 1

// blankSchemaKey is the schemas-used key for events with an empty schema ID (bbolt keys cannot be empty, and
// real schema IDs never start with a NUL byte).
var blankSchemaKey = []byte{0}

func schemaUseKey(id string) []byte {
	if id == "" {
		return blankSchemaKey
	}
	return []byte(id)
}

func schemaIDFromUseKey(k []byte) string {
	if bytes.Equal(k, blankSchemaKey) {
		return ""
	}
	return string(k)
}

func (u *schemaUse) encode() []byte {
	b := []byte{schemaUseV1}
	b = binary.AppendUvarint(b, u.count)
	b = appendBytes(b, u.first)
	b = appendBytes(b, u.last)
	b = binary.BigEndian.AppendUint64(b, uint64(u.firstNano))
	return binary.BigEndian.AppendUint64(b, uint64(u.lastNano))
}

func decodeSchemaUse(b []byte) (schemaUse, error) {
	var u schemaUse
	if len(b) == 0 || b[0] != schemaUseV1 {
		return u, fmt.Errorf("schema use record: unknown version")
	}
	d := decoder{b: b, off: 1}
	u.count = d.uvarint("count")
	u.first = clone(d.bytes("first replay id"))
	u.last = clone(d.bytes("last replay id"))
	u.firstNano = int64(d.fixed64("first received"))
	u.lastNano = int64(d.fixed64("last received"))
	if d.err == nil && d.off != len(b) {
		d.fail("schema use record", fmt.Errorf("trailing bytes"))
	}
	return u, d.err
}

func (u *schemaUse) toPublic(id string) SchemaUse {
	return SchemaUse{SchemaID: id, Count: u.count, FirstReplayID: u.first, LastReplayID: u.last,
		FirstReceived: nanoTime(u.firstNano), LastReceived: nanoTime(u.lastNano)}
}

func nanoTime(n int64) time.Time { return time.Unix(0, n).UTC() }

// timeKey is the times/ index key: unix nanos as 8-byte big-endian (times before 1970 clamp to 0).
func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0)))
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
