package query

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrOutputClosed means the output went away (EPIPE, e.g. `| head`). The CLI treats it as a quiet,
	// successful end of the run.
	ErrOutputClosed = errors.New("output closed")
	// ErrUndecodable means a payload does not decode with its writer schema (truncated, bad union index,
	// trailing bytes, …).
	ErrUndecodable = errors.New("payload does not decode with its schema")
	// ErrBlankSchemaID means an event was archived without a schema ID, so it cannot be decoded.
	ErrBlankSchemaID = errors.New("undecodable: the event has a blank schema ID")
	// ErrBadSchema means a stored schema is not valid Avro schema JSON.
	ErrBadSchema = errors.New("invalid Avro schema")
	// ErrNoTopicMatch means a --topic name or glob matched no topic of the archive.
	ErrNoTopicMatch = errors.New("no topic matches")
	// ErrBadOption means an option value is invalid (a usage error: format, glob, time, replay ID, field path).
	ErrBadOption = errors.New("invalid option")
	// ErrBitmap marks a change event whose changedFields/nulledFields/diffFields do not expand cleanly with
	// its own schema (bits beyond the fields, malformed elements). Only VerifyPayloads reports it; queries put
	// such problems in the record's bitmap_errors.
	ErrBitmap = errors.New("bitmap does not match the schema")
	// ErrBadExpression means the --where expression does not compile (a usage error).
	ErrBadExpression = errors.New("invalid --where expression")
)

// EventError names the event a decoding problem belongs to. It wraps ErrBlankSchemaID, ErrUndecodable,
// archive.ErrSchemaNotFound or ErrBadSchema.
type EventError struct {
	Topic    string
	ReplayID []byte
	SchemaID string
	Err      error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("topic %s replay %s (schema %q): %v", e.Topic, hex.EncodeToString(e.ReplayID), e.SchemaID, e.Err)
}

// Unwrap returns the cause.
func (e *EventError) Unwrap() error { return e.Err }
