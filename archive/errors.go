package archive

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
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
	// ErrCorrupt: bbolt found the file's pages inconsistent while reading (a damaged archive; see Verify, which
	// reports damage as problems instead). Returned as a *CorruptError.
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

// maxHolderCommand bounds the holder's command line quoted in a lock error (runes).
const maxHolderCommand = 80

// lockHolder is the process found holding an archive's lock.
type lockHolder struct {
	PID     int
	Command string // command line, cut short; "" when it could not be read
	Others  int    // further processes sharing the lock
}

// LockedError is Open giving up on a lock held by another process (or another handle in this one). It wraps
// ErrLocked. PID and Command name the holder when it could be found (Linux, from /proc/locks); else they are zero.
type LockedError struct {
	Path     string
	ReadOnly bool          // the failed Open wanted a shared lock
	Waited   time.Duration // the LockTimeout given up after; negative = did not wait
	PID      int           // holder's process ID; 0 = unknown
	Command  string        // holder's command line, cut short; "" = unknown
	Others   int           // further processes sharing the lock (readers)
}

func (e *LockedError) Error() string {
	waited := "gave up after " + e.Waited.String()
	if e.Waited < 0 {
		waited = "did not wait (negative lock timeout)"
	}
	if e.PID <= 0 {
		if e.ReadOnly {
			return fmt.Sprintf("open archive %s: %v: another sfarchive process (probably a running `sfarchive "+
				"subscribe`) is writing it; %s", e.Path, ErrLocked, waited)
		}
		return fmt.Sprintf("open archive %s: %v: another sfarchive process (probably a running `sfarchive "+
			"subscribe`, or a query still reading) holds it; %s", e.Path, ErrLocked, waited)
	}
	holder := fmt.Sprintf("process %d", e.PID)
	if e.Command != "" {
		holder += " (" + e.Command + ")"
	}
	switch {
	case e.Others == 1:
		holder += " and 1 other"
	case e.Others > 1:
		holder += fmt.Sprintf(" and %d others", e.Others)
	}
	return fmt.Sprintf("archive %s is locked by %s; %s", e.Path, holder, waited)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// CorruptError is a read that failed because bbolt met a damaged page (it asserts, or reads out of range). It wraps
// ErrCorrupt. Error says so in plain words; Detail keeps bbolt's or the runtime's own text for a bug report (also
// printed by %+v).
type CorruptError struct {
	Reason string // plain words; "" → "a page could not be read"
	Detail string
}

func (e *CorruptError) Error() string {
	if e.Reason != "" {
		return ErrCorrupt.Error() + ": " + e.Reason
	}
	return ErrCorrupt.Error() + ": a page could not be read"
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Format prints Error for %v and %s, and adds Detail for %+v.
func (e *CorruptError) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('+'):
		fmt.Fprintf(f, "%s (%s)", e.Error(), e.Detail)
	case verb == 'q':
		fmt.Fprintf(f, "%q", e.Error())
	default:
		_, _ = io.WriteString(f, e.Error())
	}
}
