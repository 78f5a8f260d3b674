//go:build linux

package archive

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkScanCold scans a file evicted from the page cache (posix_fadvise DONTNEED) before every iteration,
// with the advice a read-only open gives (readaheadAdvice, MADV_NORMAL), bbolt's own MADV_RANDOM and
// MADV_SEQUENTIAL for comparison.
func BenchmarkScanCold(b *testing.B) {
	path := buildBenchArchive(b, 1000, 100)
	for _, bc := range []struct {
		name   string
		advice int
	}{{"archive-advice", readaheadAdvice}, {"bbolt-random", unix.MADV_RANDOM}, {"sequential", unix.MADV_SEQUENTIAL}} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				b.StopTimer()
				evict(b, path)
				b.StartTimer()
				a, err := Open(path, Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				if err := advise(a.db, bc.advice); err != nil {
					b.Fatal(err)
				}
				if err := a.Scan(b.Context(), topicA, ScanOptions{}, func(*Event) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if err := a.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			if fi, err := os.Stat(path); err == nil {
				b.ReportMetric(float64(fi.Size())*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
			}
		})
	}
}

// evict drops the file's pages from the page cache.
func evict(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}
