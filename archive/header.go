package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"
)

// errLockTimeout is returned by openLocked when the file lock was not obtained in time (translated to ErrLocked).
var errLockTimeout = errors.New("file lock timeout")

// bbolt file header facts (bbolt data format version 2, as written by go.etcd.io/bbolt).
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16 // page id, flags, count, overflow
	boltMetaSize   = 64 // magic, version, page size, flags, root bucket (16), freelist, pgid, txid, checksum
)

// openLocked is bbolt's OpenFile hook: it opens the file, takes the lock bbolt will take (exclusive for writers,
// shared for readers) with our timeout, and checks the bbolt header while holding it, so garbage never reaches
// bbolt. bbolt's own flock on the same open file description then succeeds at once.
func openLocked(name string, flag int, mode os.FileMode, exclusive bool, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(name, flag, mode)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, exclusive, timeout); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := checkHeader(f, !exclusive); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// checkHeader accepts an empty file only for a writable open (bbolt initialises it) and otherwise requires at least
// one valid bbolt meta page whose page count fits in the file (a truncated file would fault bbolt's mmap).
func checkHeader(f *os.File, readOnly bool) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		if readOnly {
			return fmt.Errorf("%w: empty file", ErrNotArchive)
		}
		return nil
	}
	var buf [boltPageHeader + boltMetaSize]byte
	valid := 0
	// Meta page 0 sits at offset 0; meta page 1 one page further. Try the page sizes bbolt itself would try.
	offsets := []int64{0}
	for i := 0; i <= 14; i++ {
		offsets = append(offsets, 1024<<i)
	}
	for _, off := range offsets {
		if off+int64(len(buf)) > size {
			break
		}
		if _, err := f.ReadAt(buf[:], off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		pageSize, pgid, ok := parseMeta(buf[boltPageHeader:])
		if !ok {
			continue
		}
		if off != 0 && off != int64(pageSize) {
			continue
		}
		if pgid > uint64(size)/uint64(pageSize) {
			return fmt.Errorf("%w: bbolt file truncated (%d bytes, meta says %d pages of %d)", ErrNotArchive,
				size, pgid, pageSize)
		}
		valid++
	}
	if valid == 0 {
		return fmt.Errorf("%w: no valid bbolt header", ErrNotArchive)
	}
	return nil
}

// parseMeta validates a bbolt meta structure (magic, version, checksum, sane page size and page ids).
func parseMeta(m []byte) (pageSize uint32, pgid uint64, ok bool) {
	ne := binary.NativeEndian
	if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion {
		return 0, 0, false
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if h.Sum64() != ne.Uint64(m[56:]) {
		return 0, 0, false
	}
	pageSize = ne.Uint32(m[8:])
	if pageSize < 512 || pageSize > 1<<24 || pageSize&(pageSize-1) != 0 {
		return 0, 0, false
	}
	root, freelist, pgid := ne.Uint64(m[16:]), ne.Uint64(m[32:]), ne.Uint64(m[40:])
	const noFreelist = ^uint64(0)
	if root >= pgid || (freelist >= pgid && freelist != noFreelist) {
		return 0, 0, false
	}
	return pageSize, pgid, true
}
