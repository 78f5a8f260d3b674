package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the archive format this build writes and the only one it reads.
const FormatVersion = 1

// DefaultLockTimeout is how long Open waits for another process's lock when Options.LockTimeout is 0.
const DefaultLockTimeout = 2 * time.Second

// Bucket and key names of format version 1 (see doc.go).
var (
	bucketMeta    = []byte("meta")
	bucketSchemas = []byte("schemas")
	bucketTopics  = []byte("topics")
	bucketGaps    = []byte("gaps")

	bucketEvents      = []byte("events")
	bucketState       = []byte("state")
	bucketTimes       = []byte("times")
	bucketSchemasUsed = []byte("schemas-used")

	metaFormat        = []byte("format")
	metaCreatedAt     = []byte("created_at")
	metaOrgID         = []byte("org_id")
	metaInstanceURL   = []byte("instance_url")
	metaWriterVersion = []byte("writer_version")
)

// Options configures Open.
type Options struct {
	// ReadOnly opens with a shared lock; the file is never created or modified.
	ReadOnly bool
	// LockTimeout bounds the wait for another process's lock: 0 → DefaultLockTimeout; negative → do not wait
	// (try the lock once). A locked file gives a *LockedError wrapping ErrLocked within about that time, never a
	// hang; on Linux it names the process holding the lock.
	LockTimeout time.Duration
	// NoSync skips fsync on commit. For tests and benchmarks only: a crash can lose or corrupt committed data.
	NoSync bool
	// WriterVersion is recorded in meta/writer_version by writable opens ("" → "sfarchive").
	WriterVersion string
	// Logger receives diagnostics (nil → discard).
	Logger *slog.Logger
}

// Archive is an open archive file. Its methods are safe for concurrent use; bbolt serialises writers and lets
// readers run beside them.
type Archive struct {
	db       *bolt.DB
	file     *os.File // bbolt's file (closed by bbolt), read with pread by Verify's structure walk
	path     string
	readOnly bool
	log      *slog.Logger
	closed   atomic.Bool

	decoded atomic.Uint64 // envelopes decoded by Scan (tests assert that the time index seeks)

	// brokenTree is set by Verify when its page walk found the tree of a transaction damaged; a Scan of that same
	// transaction (same ID: a read-only handle, or a writer that has not committed since) then fails at once with
	// ErrCorrupt instead of letting bbolt's cursor loop on a cycle.
	brokenTree atomic.Pointer[treeDamage]

	// appendedSinceTrim counts payload bytes appended since the writer last
	// dropped its mapped pages (see trimResident).
	appendedSinceTrim atomic.Int64
}

// trimEvery is how many payload bytes a writer appends between two calls to
// trimResident: large enough that the syscall costs nothing, small enough
// that the resident set stays far below 100 MB.
const trimEvery = 32 << 20

// Open opens the archive at path. A writable open creates the file (mode 0600) and its layout if it does not exist.
//
// Errors: a read-only open of a missing file → ErrNotFound (the file is not created); a file that is not bbolt, or a
// bbolt file without sfarchive's meta bucket → ErrNotArchive; an unknown format version → ErrFormatVersion; a lock
// held by another process for longer than LockTimeout → ErrLocked. All are wrapped with the path.
func Open(path string, opts Options) (*Archive, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.WriterVersion == "" {
		opts.WriterVersion = "sfarchive"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch st, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		if opts.ReadOnly {
			return nil, fmt.Errorf("open archive %s: %w", path, ErrNotFound)
		}
	case err != nil:
		return nil, fmt.Errorf("open archive %s: %w", path, err)
	case st.IsDir():
		return nil, fmt.Errorf("open archive %s: is a directory: %w", path, ErrNotArchive)
	case opts.ReadOnly && st.Size() == 0:
		return nil, fmt.Errorf("open archive %s: empty file: %w", path, ErrNotArchive)
	}

	var file *os.File
	bopts := &bolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
		NoSync:   opts.NoSync,
		// Lock and check the header ourselves before bbolt reads the file: bbolt may misbehave on garbage.
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := openLocked(name, flag, mode, !opts.ReadOnly, opts.LockTimeout)
			file = f
			return f, err
		},
	}
	// A file created here is never removed on failure: another process may already be waiting for its lock.
	// An empty or layout-less bbolt file left behind becomes an archive at the next writable open.
	db, err := bolt.Open(path, 0o600, bopts)
	if errors.Is(err, errLockTimeout) || errors.Is(err, berrors.ErrTimeout) {
		return nil, lockedError(path, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", path, translateOpenError(err))
	}
	a := &Archive{db: db, file: file, path: path, readOnly: opts.ReadOnly, log: log}
	if err := a.checkLayout(opts.WriterVersion); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open archive %s: %w", path, err)
	}
	if opts.ReadOnly {
		if err := adviseReadahead(db); err != nil {
			log.Debug("archive: readahead advice failed", "path", path, "err", err)
		}
	}
	log.Debug("archive opened", "path", path, "read_only", opts.ReadOnly)
	return a, nil
}

// lockedError describes a lock Open gave up on, naming the holder when it can be found. The lookup never fails
// the Open: without it the error keeps its general wording.
func lockedError(path string, opts Options) *LockedError {
	e := &LockedError{Path: path, ReadOnly: opts.ReadOnly, Waited: opts.LockTimeout}
	if h, ok := findLockHolder(path); ok {
		e.PID, e.Command, e.Others = h.PID, h.Command, h.Others
	}
	return e
}

func translateOpenError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("%w: %v", ErrNotArchive, err)
	}
	return err
}

// checkLayout verifies the meta bucket and format version; a writable open of an empty bbolt file creates the
// layout, and a writable open of an archive records the writer version. A read-only open only reads.
func (a *Archive) checkLayout(writer string) error {
	var fresh, stamp bool
	err := a.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty || a.readOnly {
				return fmt.Errorf("%w: no meta bucket", ErrNotArchive)
			}
			fresh = true
			return nil
		}
		f := meta.Get(metaFormat)
		if f == nil {
			return fmt.Errorf("%w: meta bucket has no format", ErrNotArchive)
		}
		if v, err := strconv.Atoi(string(f)); err != nil || v != FormatVersion {
			return fmt.Errorf("%w: file has format %q, this build reads format %d", ErrFormatVersion, f, FormatVersion)
		}
		for _, name := range [][]byte{bucketSchemas, bucketTopics, bucketGaps} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: missing bucket %s", ErrNotArchive, name)
			}
		}
		stamp = !a.readOnly && !bytes.Equal(meta.Get(metaWriterVersion), []byte(writer))
		return nil
	}, nil)
	if err != nil || (!fresh && !stamp) {
		return err
	}
	return a.db.Update(func(tx *bolt.Tx) error {
		if fresh {
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return fmt.Errorf("create meta bucket: %w", err)
			}
			if err := meta.Put(metaFormat, []byte(strconv.Itoa(FormatVersion))); err != nil {
				return err
			}
			now := time.Now().UTC().Format(time.RFC3339Nano)
			if err := meta.Put(metaCreatedAt, []byte(now)); err != nil {
				return err
			}
			for _, name := range [][]byte{bucketSchemas, bucketTopics, bucketGaps} {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(metaWriterVersion, []byte(writer))
	})
}

// view runs fn in a read transaction. bbolt asserts (panics) on damaged pages, or reads out of range; bbolt's View
// rolls the transaction back on a panic, so here the panic becomes a *CorruptError (wrapping ErrCorrupt) whose
// message is plain and whose Detail keeps the raw text (also logged at debug level). A memory fault in the map
// (a damaged page pointing past the file) is turned into such a panic too, for this goroutine. Panics raised by
// caller code (a Scan callback) while *userCode is true are passed on untouched.
func (a *Archive) view(fn func(tx *bolt.Tx) error, userCode *bool) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if userCode != nil && *userCode {
				panic(r)
			}
			ce := &CorruptError{Detail: fmt.Sprint(r)}
			a.log.Debug("archive: damaged page", "path", a.path, "panic", ce.Detail)
			err = ce
		}
	}()
	return a.db.View(fn)
}

// treeDamage is the page-tree damage Verify found in transaction txid.
type treeDamage struct {
	txid   int
	reason string
}

// checkTree fails with a *CorruptError if Verify found tx's page tree damaged.
func (a *Archive) checkTree(tx *bolt.Tx) error {
	if d := a.brokenTree.Load(); d != nil && d.txid == tx.ID() {
		return &CorruptError{Reason: d.reason + " (found by Verify)", Detail: d.reason}
	}
	return nil
}

// Close releases the file and its lock. Closing twice is harmless.
func (a *Archive) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	if err := a.db.Close(); err != nil {
		return fmt.Errorf("close archive %s: %w", a.path, err)
	}
	return nil
}

// Path returns the file path given to Open.
func (a *Archive) Path() string { return a.path }

// ReadOnly reports whether the archive was opened read-only.
func (a *Archive) ReadOnly() bool { return a.readOnly }

func (a *Archive) writable(op string) error {
	if a.readOnly {
		return fmt.Errorf("%s %s: %w", op, a.path, ErrReadOnly)
	}
	return nil
}
