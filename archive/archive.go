package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
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
	// LockTimeout bounds the wait for another process's lock (0 → DefaultLockTimeout). A locked file gives an
	// error wrapping ErrLocked within about that time, never a hang.
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
	path     string
	readOnly bool
	log      *slog.Logger
	closed   atomic.Bool

	decoded atomic.Uint64 // envelopes decoded by Scan (tests assert that the time index seeks)

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
	if opts.LockTimeout <= 0 {
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

	bopts := &bolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
		NoSync:   opts.NoSync,
		// Lock and check the header ourselves before bbolt reads the file: bbolt may misbehave on garbage.
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			return openLocked(name, flag, mode, !opts.ReadOnly, opts.LockTimeout)
		},
	}
	// A file created here is never removed on failure: another process may already be waiting for its lock.
	// An empty or layout-less bbolt file left behind becomes an archive at the next writable open.
	db, err := bolt.Open(path, 0o600, bopts)
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", path, translateOpenError(opts, err))
	}
	a := &Archive{db: db, path: path, readOnly: opts.ReadOnly, log: log}
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

func translateOpenError(opts Options, err error) error {
	switch {
	case (errors.Is(err, errLockTimeout) || errors.Is(err, berrors.ErrTimeout)) && opts.ReadOnly:
		return fmt.Errorf("%w: another sfarchive process (probably a running `sfarchive subscribe`) is writing "+
			"it; gave up after %s", ErrLocked, opts.LockTimeout)
	case errors.Is(err, errLockTimeout), errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: another sfarchive process (probably a running `sfarchive subscribe`, or a query "+
			"still reading) holds it; gave up after %s", ErrLocked, opts.LockTimeout)
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

// view runs fn in a read transaction. bbolt asserts (panics) on damaged pages; bbolt's View rolls the
// transaction back on a panic, so here the panic becomes an error wrapping ErrCorrupt. Panics raised by caller
// code (a Scan callback) while *userCode is true are passed on untouched.
func (a *Archive) view(fn func(tx *bolt.Tx) error, userCode *bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if userCode != nil && *userCode {
				panic(r)
			}
			err = fmt.Errorf("%w: %v; run `sfarchive verify` on it", ErrCorrupt, r)
		}
	}()
	return a.db.View(fn)
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
