package archive

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that matches one of these wraps it, so callers test with
// errors.Is and the message still names the file, topic or schema involved.
var (
	// ErrNotFound: a read-only open of a path that does not exist.
	ErrNotFound = errors.New("archive not found")
	// ErrNotArchive: the file is not a bbolt file, or a bbolt file without sfarchive's meta bucket.
	ErrNotArchive = errors.New("not an sfarchive archive")
	// ErrLocked: another process holds the file's lock longer than Options.LockTimeout.
	ErrLocked = errors.New("archive is locked by another process")
	// ErrFormatVersion: the archive was written in a format version this build does not know.
	ErrFormatVersion = errors.New("unsupported archive format version")
	// ErrOrgMismatch: the archive is bound to another Salesforce org.
	ErrOrgMismatch = errors.New("archive belongs to another org")
	// ErrSchemaNotFound: no schema with that ID is stored.
	ErrSchemaNotFound = errors.New("schema not found")
	// ErrTopicNotFound: the archive holds nothing for that topic.
	ErrTopicNotFound = errors.New("topic not found")
	// ErrReadOnly: a write on an archive opened read-only.
	ErrReadOnly = errors.New("archive is open read-only")
	// ErrCorrupt: bbolt found the file's pages inconsistent while reading (a damaged archive; see Verify).
	ErrCorrupt = errors.New("archive file is damaged")
	// ErrEnvelope is wrapped by every envelope decoding failure (see *EnvelopeError for the stored location).
	ErrEnvelope = errors.New("bad envelope")
)

// EnvelopeError is a stored envelope that could not be decoded: it names the topic and the storage key (the
// replay ID, or a collision key derived from it).
type EnvelopeError struct {
	Topic    string
	ReplayID []byte
	Err      error
}

func (e *EnvelopeError) Error() string {
	return fmt.Sprintf("topic %s replay id %s: %v", e.Topic, hex.EncodeToString(e.ReplayID), e.Err)
}

// Unwrap returns the decoding error (which wraps ErrEnvelope).
func (e *EnvelopeError) Unwrap() error { return e.Err }
