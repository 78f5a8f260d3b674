// Package archive stores Salesforce Pub/Sub API events in one bbolt file: the durable heart of sfarchive.
//
// It knows nothing of gRPC or Avro: events arrive as raw bytes with their replay ID, event ID, schema ID and
// headers, and leave the same way. One process writes (sfarchive subscribe); any number of later processes read.
//
// # Layout (format version 1)
//
//	meta/            format = "1", created_at (RFC 3339), org_id, instance_url, writer_version
//	schemas/         <schema ID> → schema JSON exactly as GetSchema returned it (first copy kept)
//	topics/
//	  <topic name>/  e.g. "/data/AccountChangeEvent"
//	    events/        <replay ID bytes, verbatim> → envelope
//	    state/         hwm → the mark; counters events, duplicates, collisions, out_of_order, blank_schema, seq,
//	                   unordered_time (8-byte big-endian); min_replay, max_replay; first_received, last_received
//	    times/         <receive time, 8-byte big-endian unix nanos> → first replay ID of that commit
//	    schemas-used/  <schema ID, or one NUL byte for a blank ID> → count, first/last replay ID and receive time
//	gaps/            <8-byte big-endian sequence> → gap record (topic, time, kind, from/to replay ID, reason)
//
// Every record carries a leading version byte; a reader meets an unknown version with an error, never a guess.
//
// # Keys
//
// Event keys are the replay ID bytes exactly as the server sent them, whatever their length (10 bytes today, 8
// before late 2022); they are never parsed. A topic's replay IDs are one length and big-endian, so key order is
// delivery order. A key below the topic's highest key is still stored and counted in state/out_of_order.
//
// Redelivery is normal: an event whose replay ID is stored with the same event ID is skipped and counted as a
// duplicate. The same replay ID with a different event ID (replay IDs can repeat after an org migration) is kept
// under a collision key, replay ID + 0x00 + a 16-bit big-endian counter from 1, which sorts right after the
// original; its envelope carries the collision flag and the real replay ID, which Scan reports. Nothing is ever
// overwritten. (An archive mixing 8- and 10-byte IDs of the same counter could interleave a collision key with a
// longer ID; the envelope flag keeps the reported replay ID right.)
//
// # Envelope (version 1)
//
//	version byte 1
//	uvarint flags          1 blank schema ID, 2 zero receive time, 4 collision entry; other bits are an error
//	uvarint len + bytes    event ID (ProducerEvent.id)
//	uvarint len + bytes    schema ID ("" with the blank flag)
//	uvarint count          headers, each key and value as uvarint len + bytes, in delivery order
//	8 bytes big-endian     receive time, unix nanos
//	uvarint                per-topic arrival sequence (1, 2, ...; assigned by Append)
//	uvarint len + bytes    real replay ID, only with the collision flag
//	uvarint len + bytes    payload: the Avro bytes byte-for-byte; must end exactly at the end of the value
//
// Varints must be minimal, so one event has one encoding. Nothing is decoded or re-encoded on the way in.
//
// # Time index
//
// Each commit adds, per topic, one times/ entry: the first stored event's receive time → its replay ID. Scan turns
// ReceivedSince/ReceivedUntil into key bounds with two index seeks and then filters exactly by each event's own
// receive time. This relies on receive times growing with key order, which holds for one subscriber with a sane
// clock; a topic with out-of-order keys, collisions or a receive time that went backwards (counted in state/) is
// scanned whole instead, so a time-bounded scan is always exact.
//
// # Writing and durability
//
// Append writes the events of all topics in a call, the schemas they need, every topic's mark, counters,
// schema-use records and time index entries in ONE explicit bbolt Update, and so in one fsync (group commit).
// When it returns nil all of it is on disk; after a crash either all of it is there or none of it. The mark moves
// only with the events before it, so a crash costs a redelivery (skipped as duplicates), never a loss. A keepalive
// batch (no events, a latest replay ID) moves the mark alone, so a quiet topic's position never ages out of
// retention. Buckets written in key order use FillPercent 1.0 (≈1.43 KB of file per 1 KiB event).
// Options.NoSync drops the fsync and with it every guarantee: tests and benchmarks only.
//
// # Memory
//
// bbolt reads through a shared memory map of the whole file, and every page a process touches stays in its
// resident set. So the writer drops the map's resident pages every 32 MiB of appended payload, and a Scan every
// 16 MiB of envelopes read (madvise MADV_DONTNEED on Linux: the pages stay in the page cache and fault back in when
// read again), and memory does not grow with the file. Measured: a subscriber draining a 1,000,000-event backlog
// of 1 KiB events peaks at 45 MiB resident (116 MiB without); a full query of a 416 MB archive at 63 MB (425 MB
// without), at the same speed.
//
// # Locking
//
// bbolt allows one writer process: a writable Open takes an exclusive flock, a read-only Open a shared one. Open
// waits at most Options.LockTimeout (default 2 s; negative: try once) and then fails with a *LockedError wrapping
// ErrLocked that names the file and the holder; it never hangs. On Linux the holder is looked up in /proc/locks
// (a FLOCK entry on the file's device and inode) and its command line in /proc/<pid>/cmdline: "archive events.db
// is locked by process 12345 (sfarchive subscribe --archive events.db …)". Where that fails (another OS, no
// permission, the lock already gone) the error says the holder is probably a running `sfarchive subscribe`. flock belongs to the open file description, so two Opens of one path
// in one process exclude each other like two processes do. Open checks the bbolt header itself, under the lock and
// before bbolt reads the file, so a file that is not an archive gives ErrNotArchive rather than a bbolt panic or a
// fault on a truncated map. A read-only Open never creates or changes the file, and replaces bbolt's MADV_RANDOM
// with normal readahead so a scan of a file not in the page cache reads sequentially (Linux).
//
// # Hazards
//
//   - Slices in an Event given to a Scan callback (ReplayID, Payload, header values) point into the memory map and
//     the Event is reused: they are valid only during the callback. Copy what you keep.
//   - A Scan holds a read transaction for its whole length. In the writing process, a long scan can delay a
//     commit that must grow the file, and calling Append from inside a Scan callback can deadlock.
//   - Stats and Topics read counters kept by Append; Verify recounts and reports any disagreement.
//   - bbolt trusts the file's pages: on a damaged page it asserts, reads out of range or (with a cycle) loops.
//     Reads turn panics and memory faults in their own goroutine into a *CorruptError (ErrCorrupt, in plain words;
//     the raw text in its Detail). Verify first walks the page tree itself with pread (bounds, types, each page
//     reached once) and reports damage as problems, so `sfarchive verify` lists it instead of crashing; only a
//     sound tree is handed to bbolt's Check and to the per-event checks.
package archive
