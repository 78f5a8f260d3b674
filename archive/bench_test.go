package archive

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// benchEvents returns n events of 1 KiB payload with 10-byte replay IDs starting after counter start.
func benchEvents(start uint64, n int, payload []byte, at time.Time) []Event {
	evs := make([]Event, n)
	for i := range evs {
		c := start + uint64(i) + 1
		evs[i] = Event{ReplayID: rid10(c), EventID: fmt.Sprintf("%08x-bench-event-%012d", c, c),
			SchemaID: "0Zz1pfNpyWfPUKDGAHHQsQ", Payload: payload, ReceivedAt: at,
			Headers: []Header{{Key: "sfdc.event.source", Value: []byte("bench")}}}
	}
	return evs
}

// BenchmarkAppend: one Append of 100 events of 1 KiB per iteration, fsync on (and off, for comparison), on one
// topic or spread over 4 topics (group commit). Reports events/s and the file and page bytes per event (run with
// e.g. -benchtime=2000x so the file's growth steps average out).
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		sync   bool
		topics int
	}{{true, 1}, {true, 4}, {false, 1}} {
		b.Run(fmt.Sprintf("fsync=%t/topics=%d", bc.sync, bc.topics), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.sfa")
			a := openTest(b, path, Options{NoSync: !bc.sync})
			payload := make([]byte, 1024)
			_, _ = rand.Read(payload)
			const per = 100
			perTopic := per / bc.topics
			var next uint64
			b.SetBytes(per * 1024)
			b.ResetTimer()
			for b.Loop() {
				batches := make([]TopicBatch, bc.topics)
				for i := range batches {
					batches[i] = TopicBatch{Topic: fmt.Sprintf("/event/Bench%d__e", i),
						Events: benchEvents(next, perTopic, payload, time.Now())}
				}
				next += uint64(perTopic)
				if _, err := a.Append(batches); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			events := float64(next) * float64(bc.topics)
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			if fi, err := os.Stat(path); err == nil && next > 0 {
				b.ReportMetric(float64(fi.Size())/events, "file-bytes/event")
			}
			var used int64
			_ = a.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
			b.ReportMetric(float64(used)/events, "page-bytes/event")
		})
	}
}

// BenchmarkScan scans a 100,000-event topic (1 KiB payloads), warm, per iteration: the whole topic, and the last
// 1% by receive time (served by the time index).
func BenchmarkScan(b *testing.B) {
	path := buildBenchArchive(b, 1000, 100)
	a := openTest(b, path, Options{ReadOnly: true})
	last := scanBase.Add(990 * time.Second)
	for _, bc := range []struct {
		name string
		o    ScanOptions
	}{{"full", ScanOptions{}}, {"received-since-last-1pct", ScanOptions{ReceivedSince: last}},
		{"reverse", ScanOptions{Reverse: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			var n, bytes int
			for b.Loop() {
				if err := a.Scan(b.Context(), topicA, bc.o, func(ev *Event) error {
					n++
					bytes += len(ev.Payload)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			b.SetBytes(int64(bytes / max(b.N, 1)))
		})
	}
}

// buildBenchArchive writes commits×per events of 1 KiB to topicA (NoSync: building is not what is measured) and
// returns the path.
func buildBenchArchive(b *testing.B, commits, per int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "scan.sfa")
	a, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1024)
	_, _ = rand.Read(payload)
	for c := range commits {
		evs := benchEvents(uint64(c*per), per, payload, scanBase.Add(time.Duration(c)*time.Second))
		if _, err := a.Append([]TopicBatch{{Topic: topicA, Events: evs}}); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}
