package archive

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// bbolt page layout facts used by the structure walk (bbolt data format version 2).
const (
	pageFlagBranch   = 0x01
	pageFlagLeaf     = 0x02
	pageFlagFreelist = 0x10
	elemSize         = 16 // branch: pos, ksize, pgid; leaf: flags, pos, ksize, vsize
	leafFlagBucket   = 0x01
	bucketHeaderSize = 16 // root pgid, sequence
	maxTreeDepth     = 64 // nested buckets × b+tree height; far beyond any real archive
	noFreelist       = ^uint64(0)
)

// errDamaged marks a structural fault found by walkPages.
var errDamaged = errors.New("file damaged")

// pageWalker checks, reading the file with pread (never through the memory map), that the page tree reachable
// from a transaction's root is sound enough for bbolt to walk: every page ID is inside the file and below the
// high-water mark, every page is reached once (no cycles), page types are branch or leaf, and every element and
// key lies inside its page. bbolt trusts all of this: a damaged page would make it panic, fault on the map, or
// loop for ever. Key order and free-page bookkeeping are left to bbolt's own Check, which is safe to run once
// this walk passes.
type pageWalker struct {
	ctx      context.Context
	f        io.ReaderAt
	pageSize uint64
	hwm      uint64 // pages below this belong to the transaction
	fileSize uint64
	seen     []uint64 // bit set of the pages reached, by page ID
	pages    int
}

// walkPages runs the walk on file f for a transaction with root page root, high-water mark hwm and
// transaction ID txid (used to find its meta page, for the freelist). It returns nil, an error wrapping
// errDamaged that names the first fault, or the context's error.
func walkPages(ctx context.Context, f *os.File, pageSize int, root, hwm, txid uint64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("structure check: %w", err)
	}
	w := &pageWalker{ctx: ctx, f: f, pageSize: uint64(pageSize), hwm: hwm, fileSize: uint64(st.Size())}
	if w.pageSize < 512 || hwm < 2 || hwm > w.fileSize/w.pageSize {
		return fmt.Errorf("%w: %d pages of %d bytes do not fit in %d bytes", errDamaged, hwm, pageSize, w.fileSize)
	}
	w.seen = make([]uint64, (hwm+63)/64)
	w.mark(0)
	w.mark(1)
	if err := w.freelist(txid); err != nil {
		return err
	}
	return w.page(root, 0)
}

// freelist checks the freelist page named by the meta page of txid, when that meta page is still on disk.
func (w *pageWalker) freelist(txid uint64) error {
	var id uint64 = noFreelist
	for _, off := range []uint64{0, w.pageSize} {
		var buf [boltPageHeader + boltMetaSize]byte
		if _, err := w.f.ReadAt(buf[:], int64(off)); err != nil {
			continue
		}
		m := buf[boltPageHeader:]
		if _, _, ok := parseMeta(m); ok && binary.NativeEndian.Uint64(m[48:]) == txid {
			id = binary.NativeEndian.Uint64(m[32:])
			break
		}
	}
	if id == noFreelist {
		return nil
	}
	buf, err := w.read(id, "freelist")
	if err != nil {
		return err
	}
	if flags := binary.NativeEndian.Uint16(buf[8:]); flags != pageFlagFreelist {
		return fmt.Errorf("%w: freelist page %d has type %#x", errDamaged, id, flags)
	}
	n, start := uint64(binary.NativeEndian.Uint16(buf[10:])), uint64(boltPageHeader)
	if n == 0xFFFF {
		if len(buf) < boltPageHeader+8 {
			return fmt.Errorf("%w: freelist page %d is cut short", errDamaged, id)
		}
		n, start = binary.NativeEndian.Uint64(buf[boltPageHeader:]), boltPageHeader+8
	}
	if n > (uint64(len(buf))-start)/8 {
		return fmt.Errorf("%w: freelist page %d claims %d entries", errDamaged, id, n)
	}
	return nil
}

// read checks page id's bounds and header and returns the whole page, overflow included.
func (w *pageWalker) read(id uint64, what string) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("%w: %s page %d is out of range (the file has %d pages)", errDamaged, what, id, w.hwm)
	}
	if w.reached(id) {
		return nil, fmt.Errorf("%w: page %d is referenced twice", errDamaged, id)
	}
	w.pages++
	if w.pages%1024 == 0 {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, w.pageSize)
	if (id+1)*w.pageSize > w.fileSize {
		return nil, fmt.Errorf("%w: %s page %d lies past the end of the file", errDamaged, what, id)
	}
	if _, err := w.f.ReadAt(buf, int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("structure check: read page %d: %w", id, err)
	}
	if got := binary.NativeEndian.Uint64(buf); got != id {
		return nil, fmt.Errorf("%w: page %d says it is page %d", errDamaged, id, got)
	}
	overflow := uint64(binary.NativeEndian.Uint32(buf[12:]))
	if overflow >= w.hwm-id || (id+1+overflow)*w.pageSize > w.fileSize {
		return nil, fmt.Errorf("%w: %s page %d claims %d overflow pages, past the end of the file", errDamaged,
			what, id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if w.reached(i) {
			return nil, fmt.Errorf("%w: page %d is referenced twice", errDamaged, i)
		}
		w.mark(i)
	}
	if overflow > 0 {
		buf = append(buf, make([]byte, overflow*w.pageSize)...)
		if _, err := w.f.ReadAt(buf[w.pageSize:], int64((id+1)*w.pageSize)); err != nil {
			return nil, fmt.Errorf("structure check: read page %d: %w", id, err)
		}
	}
	return buf, nil
}

// reached and mark read and set page id's bit; id < hwm.
func (w *pageWalker) reached(id uint64) bool { return w.seen[id/64]&(1<<(id%64)) != 0 }
func (w *pageWalker) mark(id uint64)         { w.seen[id/64] |= 1 << (id % 64) }

func (w *pageWalker) page(id uint64, depth int) error {
	buf, err := w.read(id, "tree")
	if err != nil {
		return err
	}
	return w.node(buf, fmt.Sprintf("page %d", id), depth)
}

// node checks one branch or leaf page held in buf (a whole page, or an inline bucket's page inside a value).
func (w *pageWalker) node(buf []byte, where string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("%w: %s: the page tree is nested %d deep", errDamaged, where, depth)
	}
	if len(buf) < boltPageHeader {
		return fmt.Errorf("%w: %s is cut short", errDamaged, where)
	}
	flags, count := binary.NativeEndian.Uint16(buf[8:]), uint64(binary.NativeEndian.Uint16(buf[10:]))
	size := uint64(len(buf))
	if boltPageHeader+count*elemSize > size {
		return fmt.Errorf("%w: %s claims %d elements, more than fit", errDamaged, where, count)
	}
	switch flags {
	case pageFlagBranch:
		if count == 0 {
			return fmt.Errorf("%w: %s is an empty branch page", errDamaged, where)
		}
		for i := range count {
			off := boltPageHeader + i*elemSize
			e := buf[off:]
			pos, ksize := uint64(binary.NativeEndian.Uint32(e[0:])), uint64(binary.NativeEndian.Uint32(e[4:]))
			if off+pos+ksize > size {
				return fmt.Errorf("%w: %s element %d points outside the page", errDamaged, where, i)
			}
			if err := w.page(binary.NativeEndian.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		}
	case pageFlagLeaf:
		for i := range count {
			off := boltPageHeader + i*elemSize
			e := buf[off:]
			eflags := binary.NativeEndian.Uint32(e[0:])
			pos, ksize := uint64(binary.NativeEndian.Uint32(e[4:])), uint64(binary.NativeEndian.Uint32(e[8:]))
			vsize := uint64(binary.NativeEndian.Uint32(e[12:]))
			if off+pos+ksize+vsize > size {
				return fmt.Errorf("%w: %s element %d points outside the page", errDamaged, where, i)
			}
			if eflags&leafFlagBucket == 0 {
				continue
			}
			v := buf[off+pos+ksize : off+pos+ksize+vsize]
			if len(v) < bucketHeaderSize {
				return fmt.Errorf("%w: %s element %d: bucket record cut short", errDamaged, where, i)
			}
			if root := binary.NativeEndian.Uint64(v); root != 0 {
				if err := w.page(root, depth+1); err != nil {
					return err
				}
				continue
			}
			inline := v[bucketHeaderSize:]
			if len(inline) < boltPageHeader || binary.NativeEndian.Uint16(inline[8:]) != pageFlagLeaf {
				return fmt.Errorf("%w: %s element %d: inline bucket damaged", errDamaged, where, i)
			}
			if err := w.node(inline, fmt.Sprintf("%s element %d (inline bucket)", where, i), depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: %s has type %#x, not a branch or leaf page", errDamaged, where, flags)
	}
	return nil
}
