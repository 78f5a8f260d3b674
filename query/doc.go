// Package query reads an sfarchive archive offline: it selects events, decodes each with its own writer schema,
// expands CDC bitmaps and writes them out. It works through the small Source interface (satisfied by
// *archive.Archive however it was opened), never imports subscriber or proto, and streams: memory does not grow
// with the archive.
//
// # Pipeline
//
// For each selected topic (names or path.Match globs, in sorted order; reversed with Reverse), the archive scan
// applies the envelope bounds (replay IDs, receive time through the time index). Each event's schema is
// fetched and compiled once per schema ID (hamba/avro, each ID in its own name cache, so versions never
// collide). Filters that need values decode only the fields they use; output is written straight from the
// Avro bytes by a walker compiled from the schema (no maps, no allocations per event for JSON).
//
// # Output record
//
// jsonl (default) writes one object per line; json writes the same objects as one array:
//
//	{"topic":"/data/AccountChangeEvent","replay_id":"000000000104b674","event_id":"7cb5…","schema_id":"vjfS…",
//	 "received_at":"2024-03-01T12:00:00.000001Z","event":{…},"changed_fields":["LastModifiedDate",
//	 "BillingAddress.Street"],"nulled_fields":[],"diff_fields":[]}
//
// replay_id is the stored bytes in hex; received_at is RFC 3339 UTC with nanoseconds. The event keeps schema
// field order; unions are unwrapped to their value; long and int are exact integers (never through float64);
// float and double use the shortest form that reads back to the same value (plain digits between 1e-6 and
// 1e21, exponent form outside), and NaN, +Inf and -Inf, which JSON cannot hold, are the strings "NaN",
// "Infinity" and "-Infinity"; bytes and fixed are standard base64; enums are their symbol; maps are objects.
// Strings with invalid UTF-8 get U+FFFD.
//
// The three bitmap keys appear only for change events (field 0 is ChangeEventHeader); "bitmap_errors" appears
// only when an element could not be expanded (see ExpandBitmap). With FlattenCompound the lists use SOQL
// names (see SOQLName). Fields projects the event object (paths such as BillingAddress.City, or a
// ChangeEventHeader field by its own name, e.g. changeType); the envelope keys stay.
//
// TimeRFC3339 renders epoch-millisecond fields as RFC 3339 UTC strings with milliseconds: commitTimestamp,
// CreatedDate, LastModifiedDate, SystemModstamp, fields whose doc is Role:DateTime[:FieldId], and the logical
// type timestamp-millis. By default they stay numbers.
//
// csv writes a header and one row per event: Fields in that order (record columns topic, replay_id, event_id,
// schema_id, received_at, changed_fields, nulled_fields, diff_fields, bitmap_errors, or event paths); without
// Fields, the record columns, every leaf of the first event's schema as a dotted column (schema order) and the
// bitmap columns. Strings are written as they are, null as an empty cell, numbers and booleans as in JSON, and
// records, arrays and maps (bitmap lists too) as compact JSON. Columns a schema lacks are empty (use Fields
// for stable columns across schema versions and topics).
//
// table aligns the same cells to Width columns (default 120), fixing widths from the first 100 rows, narrowing
// the widest columns first and ending cut cells with "…". Lists are comma-separated there.
//
// raw writes each stored payload as it is, prefixed by its length as an unsigned varint (encoding/binary
// AppendUvarint, the protobuf length prefix): read a uvarint n, then n bytes of Avro binary, repeat to EOF. The
// writer schema is not included; `sfarchive schemas` shows it.
//
// # Filters
//
// Since/Until compare the event's own time (commitTimestamp for change events, CreatedDate for platform
// events; Since inclusive, Until exclusive); ChangeTypes are globs (GAP_*) and, like Entities, ignore case;
// RecordIDs match any of recordIds, a 15-character ID also matching its 18-character form; ChangedFields match
// an expanded changed field by dotted name, SOQL name, or compound parent (BillingAddress).
//
// Where is an expression in the expr language (github.com/expr-lang/expr), compiled once. Its names are the
// event's top-level fields (records as maps: BillingAddress.City), the ChangeEventHeader fields also at the top
// level (changeType, entityName, recordIds, commitTimestamp, commitNumber, commitUser, …; the raw bitmaps as
// changedFields), and topic, replay_id (hex), event_id, schema_id, received_at (a time), changed_fields,
// nulled_fields and diff_fields (expanded names). Integer literals are 64-bit integers and long fields are
// int64, so comparisons are exact. A name no event has is nil (a field can exist in one schema version only);
// names that no scanned schema has are reported in Result.Warnings. Member access is nil-safe, as with expr's
// ?. operator: BillingAddress.City is nil when BillingAddress is null or missing. ms("2024-03-01T10:00:00Z") or
// ms("2024-03-01") gives epoch milliseconds; a constant argument of ms() or date() that does not parse is an
// ErrBadExpression. Examples:
//
//	commitNumber == 1698100138468892700
//	changeType == "UPDATE" && "Industry" in changed_fields
//	BillingAddress.City == "Paris" || BillingAddress.Country in ["FR", "France"]
//	Amount__c >= 1000 && Order_Number__c startsWith "ORD-"
//	LastModifiedDate >= ms("2024-03-01") && commitUser == "005xx000001X8Uz"
//	any(recordIds, # startsWith "001") && received_at > date("2024-03-01T00:00:00Z")
//
// An expression that fails on an event (e.g. a comparison with a null field) leaves that event out; the count
// and the first error are in Result.WhereErrors and Result.Warnings.
//
// # Bad data
//
// A blank schema ID, a missing or invalid schema, a payload that does not decode (truncated, bad union or enum
// index, impossible length, trailing bytes) or a damaged envelope stops the run with an error naming the topic
// and replay ID (*EventError, or the archive's *EnvelopeError). With SkipBad each is passed to OnBad and the
// run goes on. A write that fails with EPIPE (the reader went away, `| head`) returns ErrOutputClosed, which
// callers treat as success. For a CLI writing to stdout, that needs SIGPIPE not to kill the process first:
// call signal.Ignore(syscall.SIGPIPE) or signal.Notify for it.
package query
