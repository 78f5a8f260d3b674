package archive

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TopicBatch is what the subscriber hands over for one topic: the events of one or more responses in delivery
// order, the stream's position after them, and any schemas first needed by them.
type TopicBatch struct {
	Topic  string
	Events []Event // delivery order
	// LatestReplayID is the stream's latest_replay_id after these events and becomes the topic's mark (hwm).
	// nil or empty → the last event's replay ID. A batch with no events and a LatestReplayID (a keepalive) just moves
	// the mark.
	LatestReplayID []byte
	Schemas        map[string]string // schema ID → schema JSON, stored in the same transaction
}

// AppendStats counts what one Append did. Stored includes Collisions.
type AppendStats struct {
	Stored, Duplicates, Collisions int
}

// maxCollisions bounds the collision keys of one replay ID (the suffix is a 16-bit counter).
const maxCollisions = 1<<16 - 1

// Append writes all batches, their schemas, per-topic marks, counters, per-topic schema-use records and the time
// index in ONE bbolt read-write transaction, so one fsync covers every topic (group commit). Either all of it is
// durable when Append returns nil, or none of it is.
//
// Same replay ID + same event ID → skipped (Duplicates). Same replay ID + different event ID → kept under a
// collision key (Collisions), never overwritten. A key below the topic's highest key is stored and counted as
// out of order. Events with a zero ReceivedAt are stamped with the commit time. Append does not modify batches.
func (a *Archive) Append(batches []TopicBatch) (AppendStats, error) {
	var st AppendStats
	if err := a.writable("append to"); err != nil {
		return st, err
	}
	for i := range batches {
		if err := validateBatch(&batches[i]); err != nil {
			return st, fmt.Errorf("append to %s: %w", a.path, err)
		}
	}
	now := time.Now()
	var collisions []collisionNote
	err := a.db.Update(func(tx *bolt.Tx) error {
		st, collisions = AppendStats{}, collisions[:0]
		for i := range batches {
			if err := appendTopic(tx, &batches[i], now, &st, &collisions); err != nil {
				return fmt.Errorf("topic %s: %w", batches[i].Topic, err)
			}
		}
		return nil
	})
	if err != nil {
		return AppendStats{}, fmt.Errorf("append to %s: %w", a.path, err)
	}
	for _, c := range collisions {
		a.log.Warn("archive: replay ID seen again with another event ID; both kept", "topic", c.topic,
			"replay_id", hex.EncodeToString(c.replayID), "event_id", c.eventID)
	}
	a.trimAfter(batches)
	return st, nil
}

// trimAfter drops the map's resident pages once trimEvery payload bytes were
// appended since the last time, so a writer's memory does not grow with the
// file. A failure only costs memory, so it is logged, not returned.
func (a *Archive) trimAfter(batches []TopicBatch) {
	var n int64
	for i := range batches {
		for j := range batches[i].Events {
			n += int64(len(batches[i].Events[j].Payload))
		}
	}
	if a.appendedSinceTrim.Add(n) < trimEvery {
		return
	}
	a.appendedSinceTrim.Store(0)
	if err := trimResident(a.db); err != nil {
		a.log.Debug("archive: could not trim the resident map", "path", a.path, "err", err)
	}
}

func validateBatch(b *TopicBatch) error {
	if b.Topic == "" {
		return fmt.Errorf("batch with an empty topic name")
	}
	if len(b.Topic) > bolt.MaxKeySize {
		return fmt.Errorf("topic name of %d bytes is too long", len(b.Topic))
	}
	for i := range b.Events {
		n := len(b.Events[i].ReplayID)
		if n == 0 {
			return fmt.Errorf("topic %s: event %d (id %q) has an empty replay ID", b.Topic, i, b.Events[i].EventID)
		}
		if n > bolt.MaxKeySize-3 {
			return fmt.Errorf("topic %s: event %d has a %d-byte replay ID", b.Topic, i, n)
		}
	}
	for id := range b.Schemas {
		if id == "" || len(id) > bolt.MaxKeySize {
			return fmt.Errorf("topic %s: schema with an empty or oversized ID", b.Topic)
		}
	}
	return nil
}

// topicBuckets are the nested buckets of one topic.
type topicBuckets struct {
	events, state, times, used *bolt.Bucket
}

func createTopicBuckets(tx *bolt.Tx, topic string) (topicBuckets, error) {
	var tb topicBuckets
	root := tx.Bucket(bucketTopics)
	if root == nil {
		return tb, fmt.Errorf("%w: missing bucket %s", ErrNotArchive, bucketTopics)
	}
	t, err := root.CreateBucketIfNotExists([]byte(topic))
	if err != nil {
		return tb, err
	}
	for _, x := range []struct {
		name []byte
		dst  **bolt.Bucket
	}{{bucketEvents, &tb.events}, {bucketState, &tb.state}, {bucketTimes, &tb.times}, {bucketSchemasUsed, &tb.used}} {
		if *x.dst, err = t.CreateBucketIfNotExists(x.name); err != nil {
			return tb, fmt.Errorf("bucket %s: %w", x.name, err)
		}
	}
	// Events and index entries arrive in key order: fill pages completely (FillPercent is per transaction).
	tb.events.FillPercent = 1.0
	tb.times.FillPercent = 1.0
	return tb, nil
}

// collisionNote is logged after a commit that stored a collision.
type collisionNote struct {
	topic, eventID string
	replayID       []byte
}

func appendTopic(tx *bolt.Tx, b *TopicBatch, now time.Time, st *AppendStats, notes *[]collisionNote) error {
	tb, err := createTopicBuckets(tx, b.Topic)
	if err != nil {
		return err
	}
	if err := storeSchemas(tx, b.Schemas); err != nil {
		return err
	}
	s, err := loadState(tb.state)
	if err != nil {
		return err
	}
	uses := map[string]*schemaUse{}
	var indexed bool
	for i := range b.Events {
		ev := b.Events[i] // a copy: Seq and ReceivedAt are set here, the caller's slice is left alone
		if ev.ReceivedAt.IsZero() {
			ev.ReceivedAt = now
		}
		key, dup, err := placeEvent(tb.events, &ev)
		if err != nil {
			return err
		}
		if dup {
			s.duplicates++
			st.Duplicates++
			continue
		}
		collision := !bytes.Equal(key, ev.ReplayID)
		s.seq++
		ev.Seq = s.seq
		var collisionOf []byte
		if collision {
			collisionOf = ev.ReplayID
			st.Collisions++
			*notes = append(*notes, collisionNote{topic: b.Topic, eventID: ev.EventID, replayID: ev.ReplayID})
		}
		if err := tb.events.Put(key, encodeEnvelope(nil, &ev, collisionOf)); err != nil {
			return fmt.Errorf("put event: %w", err)
		}
		st.Stored++
		nanos := ev.ReceivedAt.UnixNano()
		s.observe(ev.ReplayID, nanos, ev.SchemaID == "", collision)
		if u := uses[ev.SchemaID]; u == nil {
			uses[ev.SchemaID] = &schemaUse{count: 1, first: ev.ReplayID, last: ev.ReplayID, firstNano: nanos,
				lastNano: nanos}
		} else {
			u.count++
			u.last, u.lastNano = ev.ReplayID, nanos
		}
		if !indexed && !collision {
			// Sparse time index: one entry per commit and topic, its first event. Equal times keep the earlier.
			indexed = true
			k := timeKey(ev.ReceivedAt)
			if tb.times.Get(k) == nil {
				if err := tb.times.Put(k, ev.ReplayID); err != nil {
					return fmt.Errorf("put time index: %w", err)
				}
			}
		}
	}
	switch {
	case len(b.LatestReplayID) > 0: // proto3 gives an empty slice for an unset bytes field: not a position
		s.hwm = b.LatestReplayID
	case len(b.Events) > 0:
		s.hwm = b.Events[len(b.Events)-1].ReplayID
	}
	for _, id := range slices.Sorted(maps.Keys(uses)) {
		if err := mergeSchemaUse(tb.used, id, uses[id]); err != nil {
			return err
		}
	}
	return s.save(tb.state)
}

// placeEvent finds where ev goes: its replay ID, or the next free collision key. dup reports that an event with
// the same replay ID and event ID is already stored (under the key or one of its collision keys).
func placeEvent(events *bolt.Bucket, ev *Event) (key []byte, dup bool, err error) {
	existing := events.Get(ev.ReplayID)
	if existing == nil {
		return ev.ReplayID, false, nil
	}
	if id, ok := envelopeEventID(existing); ok && id == ev.EventID {
		return nil, true, nil
	}
	for n := 1; n <= maxCollisions; n++ {
		ck := collisionKey(ev.ReplayID, n)
		v := events.Get(ck)
		if v == nil {
			return ck, false, nil
		}
		if id, ok := envelopeEventID(v); ok && id == ev.EventID {
			return nil, true, nil
		}
	}
	return nil, false, fmt.Errorf("replay id %x: more than %d collisions", ev.ReplayID, maxCollisions)
}

// collisionKey is the replay ID followed by 0x00 and a 16-bit big-endian counter (1, 2, ...): it sorts right after
// the original key and before the next replay ID of the same length.
func collisionKey(rid []byte, n int) []byte {
	k := make([]byte, 0, len(rid)+3)
	k = append(k, rid...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint16(k, uint16(n))
}

// envelopeEventID reads just the event ID of an envelope, without allocating.
func envelopeEventID(b []byte) (string, bool) {
	if len(b) == 0 || b[0] != envelopeV1 {
		return "", false
	}
	d := decoder{b: b, off: 1}
	d.uvarint("flags")
	id := d.bytes("event id")
	if d.err != nil {
		return "", false
	}
	return string(id), true
}

func storeSchemas(tx *bolt.Tx, schemas map[string]string) error {
	if len(schemas) == 0 {
		return nil
	}
	sb := tx.Bucket(bucketSchemas)
	if sb == nil {
		return fmt.Errorf("%w: missing bucket %s", ErrNotArchive, bucketSchemas)
	}
	for id, js := range schemas {
		if sb.Get([]byte(id)) != nil {
			continue // schema IDs name immutable schemas: the first copy stays
		}
		if err := sb.Put([]byte(id), []byte(js)); err != nil {
			return fmt.Errorf("put schema %s: %w", id, err)
		}
	}
	return nil
}

func mergeSchemaUse(b *bolt.Bucket, id string, u *schemaUse) error {
	key := schemaUseKey(id)
	if v := b.Get(key); v != nil {
		old, err := decodeSchemaUse(v)
		if err != nil {
			return fmt.Errorf("schema use %q: %w", id, err)
		}
		old.count += u.count
		old.last, old.lastNano = u.last, u.lastNano
		u = &old
	}
	if err := b.Put(key, u.encode()); err != nil {
		return fmt.Errorf("put schema use %q: %w", id, err)
	}
	return nil
}
