package query

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/sfarchive/sfarchive/archive"
)

// benchPayloads returns n seeded change events of about 1 KiB (CREATE and UPDATE mixed).
func benchPayloads(tb testing.TB, n int) (js string, payloads [][]byte) {
	js = readTestdata(tb, "AccountChangeEvent.avsc")
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range n {
		ct := "UPDATE"
		if i%2 == 0 {
			ct = "CREATE"
		}
		v := genAccount(rng, i, ct).values
		// Fill a few more text fields so that events average about 1 KiB.
		v["AccountNumber"] = u("string", fmt.Sprintf("CD%08d", rng.IntN(1e8)))
		v["Site"] = u("string", "Headquarters")
		v["Sic"] = u("string", "7372")
		v["SicDesc"] = u("string", "Prepackaged Software")
		v["Ownership"] = u("string", "Public")
		v["TickerSymbol"] = u("string", "ACME")
		v["Rating"] = u("string", "Hot")
		v["AccountSource"] = u("string", "Partner Referral")
		v["Region__c"] = u("string", "EMEA")
		v["CustomerPriority__c"] = u("string", "High")
		payloads = append(payloads, marshal(tb, js, v))
	}
	return js, payloads
}

func avgSize(ps [][]byte) float64 {
	t := 0
	for _, p := range ps {
		t += len(p)
	}
	return float64(t) / float64(len(ps))
}

func reportRate(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

func reportSize(b *testing.B, payloads [][]byte) { b.ReportMetric(avgSize(payloads), "bytes/event") }

// BenchmarkMapDecode is the baseline: hamba/avro decoding into map[string]any.
func BenchmarkMapDecode(b *testing.B) {
	js, payloads := benchPayloads(b, 256)
	s, err := avro.ParseWithCache(js, "", &avro.SchemaCache{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		var m map[string]any
		if err := avroAPI.Unmarshal(s, payloads[n%len(payloads)], &m); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportRate(b, n)
	reportSize(b, payloads)
}

// BenchmarkJSONL is the JSON-lines writer on the same payloads: the whole record (envelope, event, expanded
// bitmaps) into a reused buffer.
func BenchmarkJSONL(b *testing.B) {
	js, payloads := benchPayloads(b, 256)
	s := mustSchema(b, accountSchemaID, js)
	r := &runner{dec: NewDecoder(), out: newOutput(io.Discard)}
	f := &jsonFormatter{r: r}
	ev := &archive.Event{ReplayID: replayID(1), EventID: "7cb562f2-c7aa-427d-99eb-f2a93b11cdd6", SchemaID: accountSchemaID, ReceivedAt: time.Now()}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		ev.Payload = payloads[n%len(payloads)]
		if err := f.event("/data/AccountChangeEvent", ev, s); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportRate(b, n)
	reportSize(b, payloads)
}

// benchArchive builds (once per process) an archive of SFARCHIVE_BENCH_EVENTS change events (default 100,000).
// It is shared by the process's benchmarks and removed by TestMain; set SFARCHIVE_BENCH_EVENTS=1000000 for the
// issue's figure.
var benchArchivePath string

func TestMain(m *testing.M) {
	code := m.Run()
	if benchArchivePath != "" {
		_ = os.RemoveAll(filepath.Dir(benchArchivePath))
	}
	os.Exit(code)
}

func benchArchive(b *testing.B) (*archive.Archive, int) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SFARCHIVE_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	if benchArchivePath == "" {
		dir, err := os.MkdirTemp("", "query-bench")
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, "bench.sfarchive")
		a, err := archive.Open(path, archive.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		js, payloads := benchPayloads(b, 512)
		base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
		for start := 0; start < n; start += 1000 {
			batch := archive.TopicBatch{Topic: "/data/AccountChangeEvent", Schemas: map[string]string{accountSchemaID: js}}
			for i := start; i < min(start+1000, n); i++ {
				batch.Events = append(batch.Events, archive.Event{ReplayID: replayID(uint64(i + 1)), EventID: fmt.Sprint(i),
					SchemaID: accountSchemaID, Payload: payloads[i%len(payloads)], ReceivedAt: base.Add(time.Duration(i) * time.Millisecond)})
			}
			if _, err := a.Append([]archive.TopicBatch{batch}); err != nil {
				b.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
		benchArchivePath = path
	}
	a, err := archive.Open(benchArchivePath, archive.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close() })
	return a, n
}

// BenchmarkArchiveQueries measures, interleaved in one run so that machine load affects all alike, on the
// bench archive: a bare scan decoding every payload with hamba/avro into map[string]any (the baseline), a full
// query to JSON lines, a --where query selecting 1%, a csv query, and --received-since over the last 1%. It
// reports each rate and the ratios to the baseline (the targets: jsonl >= 3x, where-1% >= 2x; received-since
// time < 5% of the full query's).
func BenchmarkArchiveQueries(b *testing.B) {
	a, n := benchArchive(b)
	hs, err := avro.ParseWithCache(readTestdata(b, "AccountChangeEvent.avsc"), "", &avro.SchemaCache{})
	if err != nil {
		b.Fatal(err)
	}
	since := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n*99/100) * time.Millisecond)
	runs := []struct {
		name string
		fn   func() (int, error)
	}{
		{"mapdecode", func() (int, error) {
			c := 0
			err := a.Scan(context.Background(), "/data/AccountChangeEvent", archive.ScanOptions{}, func(ev *archive.Event) error {
				var m map[string]any
				c++
				return avroAPI.Unmarshal(hs, ev.Payload, &m)
			})
			return c, err
		}},
		{"jsonl", func() (int, error) {
			res, err := Run(context.Background(), a, Options{}, io.Discard)
			return res.Scanned, err
		}},
		{"where1pct", func() (int, error) {
			res, err := Run(context.Background(), a, Options{Where: `commitNumber % 100 == 7`}, io.Discard)
			if err == nil && (res.Written < n/200 || res.Written > n/50) { // about 1% (6 of the 512 payloads)
				err = fmt.Errorf("where selected %d of %d", res.Written, n)
			}
			return res.Scanned, err
		}},
		{"csv", func() (int, error) {
			res, err := Run(context.Background(), a, Options{Format: FormatCSV}, io.Discard)
			return res.Scanned, err
		}},
		{"recvsince1pct", func() (int, error) {
			_, err := Run(context.Background(), a, Options{ReceivedSince: since}, io.Discard)
			return n, err // counted as the whole archive: its rate compares with jsonl
		}},
	}
	// Heap in use after a full query (the file's pages are mapped by bbolt, outside the Go heap).
	runtime.GC()
	if _, err := runs[1].fn(); err != nil {
		b.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapMB := float64(ms.HeapInuse) / (1 << 20)
	b.ResetTimer()
	elapsed := make([]time.Duration, len(runs))
	events := make([]int, len(runs))
	for b.Loop() {
		for i, r := range runs {
			start := time.Now()
			c, err := r.fn()
			if err != nil {
				b.Fatal(err)
			}
			elapsed[i] += time.Since(start)
			events[i] += c
		}
	}
	base := float64(events[0]) / elapsed[0].Seconds()
	for i, r := range runs {
		rate := float64(events[i]) / elapsed[i].Seconds()
		b.ReportMetric(rate, r.name+"-events/s")
		if i > 0 {
			b.ReportMetric(rate/base, r.name+"-x")
		}
	}
	b.ReportMetric(100*elapsed[4].Seconds()/elapsed[1].Seconds(), "recvsince-%time")
	b.ReportMetric(heapMB, "heap-MB")
}
