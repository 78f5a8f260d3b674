package emulator

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

//go:embed schemas/*.avsc
var schemaFiles embed.FS

// MaxEventSize is the largest payload the service accepts per event (1 MB).
const MaxEventSize = 1 << 20

// ReplayIDLen is the length of the replay IDs the emulator issues: an 8-byte big-endian counter and 00 00.
const ReplayIDLen = 10

// builtinTopic describes a topic created by New.
type builtinTopic struct {
	name       string
	file       string // under schemas/
	schemaID   string // "" = fingerprint
	canPublish bool
}

var builtinTopics = []builtinTopic{
	{name: "/data/AccountChangeEvent", file: "AccountChangeEvent.avsc"},
	{name: "/data/ContactChangeEvent", file: "ContactChangeEvent.avsc"},
	{name: "/data/OpportunityChangeEvent", file: "OpportunityChangeEvent.avsc"},
	// The standard channel carries every entity; its current schema is Account's.
	{name: "/data/ChangeEvents", file: "AccountChangeEvent.avsc"},
	{name: "/event/Order_Event__e", file: "Order_Event__e.avsc", schemaID: "_CADE3qaegX3ECEW0rlbYA", canPublish: true},
	{name: "/event/Test_Event__e", file: "Test_Event__e.avsc", canPublish: true},
	{name: "/event/CM_Test_Event_Two__e", file: "CM_Test_Event_Two__e.avsc", schemaID: "K98aAtiNFBjA-PJlcvaQ2g", canPublish: true},
}

// BuiltinSchema returns the JSON of an embedded schema file, e.g. "AccountChangeEvent.avsc".
func BuiltinSchema(file string) (string, error) {
	b, err := schemaFiles.ReadFile("schemas/" + file)
	if err != nil {
		return "", fmt.Errorf("read embedded schema %s: %w", file, err)
	}
	return string(b), nil
}

// SchemaFingerprint returns the schema ID the emulator gives a schema JSON: the first 16 bytes of its SHA-256,
// base64url without padding (22 characters, the shape of real IDs; the real hash is unknown).
func SchemaFingerprint(schemaJSON string) string {
	sum := sha256.Sum256([]byte(schemaJSON))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// ParseSchema parses schema JSON into its own cache, so two versions of one record name never collide.
func ParseSchema(schemaJSON string) (avro.Schema, error) {
	sch, err := avro.ParseWithCache(schemaJSON, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSchema, err)
	}
	return sch, nil
}

// EncodeReplayID returns the 10-byte replay ID for counter n.
func EncodeReplayID(n uint64) []byte {
	b := make([]byte, ReplayIDLen)
	binary.BigEndian.PutUint64(b, n)
	return b
}

// DecodeReplayID reads the counter of an 8- or 10-byte replay ID. A 10-byte ID must end in 00 00.
func DecodeReplayID(b []byte) (uint64, bool) {
	switch len(b) {
	case 8:
		return binary.BigEndian.Uint64(b), true
	case 10:
		if b[8] != 0 || b[9] != 0 {
			return 0, false
		}
		return binary.BigEndian.Uint64(b[:8]), true
	}
	return 0, false
}

// schema is one registered schema.
type schema struct {
	id     string
	json   string
	parsed avro.Schema
}

// stored is one event in a topic log.
type stored struct {
	counter uint64
	ev      Event
	at      time.Time
}

// topic is one topic's state; guarded by Server.mu.
type topic struct {
	name        string
	schemaID    string   // current schema
	schemaIDs   []string // every schema ever attached, oldest first
	canPublish  bool
	log         []stored
	floor       uint64        // replay counters <= floor were purged (no longer valid in CUSTOM)
	notify      chan struct{} // closed and replaced on every publish
	subscribers int           // open subscription streams past their first request
}

func isCDC(name string) bool { return strings.HasPrefix(name, "/data/") }

func copyEvent(e Event) Event {
	out := Event{ID: e.ID, SchemaID: e.SchemaID, Payload: append([]byte(nil), e.Payload...)}
	if e.Headers != nil {
		out.Headers = make(map[string][]byte, len(e.Headers))
		for k, v := range e.Headers {
			out.Headers[k] = append([]byte(nil), v...)
		}
	}
	return out
}
