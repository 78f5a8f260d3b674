//go:build linux

package query

import (
	"context"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sfarchive/sfarchive/archive"
)

// evictFile drops a file's pages from the page cache (fsync, then POSIX_FADV_DONTNEED, which drops clean,
// unmapped pages without privileges), so the next read comes from the disk.
func evictFile(tb testing.TB, path string) {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil { // dirty pages are not dropped
		tb.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkColdQueryJSONL is a full JSON-lines query on an archive evicted from the page cache before each run
// (the archive is closed while evicting, so no map pins its pages).
func BenchmarkColdQueryJSONL(b *testing.B) {
	warm, _ := benchArchive(b)
	path := warm.Path()
	if err := warm.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	scanned := 0
	for b.Loop() {
		b.StopTimer()
		evictFile(b, path)
		b.StartTimer()
		a, err := archive.Open(path, archive.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		res, err := Run(context.Background(), a, Options{}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		scanned += res.Scanned
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(scanned)/secs, "events/s")
	b.ReportMetric(float64(fi.Size())*float64(b.N)/secs/(1<<20), "file-MB/s")
}
