package archive

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// A writer drops its mapped pages every trimEvery bytes appended and a scan
// every scanTrimEvery bytes read. Neither may change what is read: append
// well past both thresholds, then scan forward and backward and compare
// every byte, in a fresh read-only handle too.
func TestTrimmingTheMapKeepsReadsExact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trim.db")
	a := openTest(t, path, Options{NoSync: true})
	const n, size = 40000, 1024 // 40 MB of payload: more than trimEvery and twice scanTrimEvery
	payload := func(i uint64) []byte {
		p := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
		copy(p, fmt.Sprintf("event %d", i))
		return p
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for batch := uint64(0); batch < n/500; batch++ {
		evs := make([]Event, 500)
		for j := range evs {
			i := batch*500 + uint64(j) + 1
			evs[j] = Event{ReplayID: rid10(i), EventID: fmt.Sprintf("id-%d", i), SchemaID: "s1", Payload: payload(i),
				ReceivedAt: start.Add(time.Duration(i) * time.Millisecond)}
		}
		mustAppend(t, a, TopicBatch{Topic: "/event/Big__e", Events: evs, Schemas: map[string]string{"s1": "{}"}})
	}
	check := func(a *Archive, reverse bool) {
		t.Helper()
		seen := uint64(0)
		err := a.Scan(context.Background(), "/event/Big__e", ScanOptions{Reverse: reverse}, func(ev *Event) error {
			seen++
			i := seen
			if reverse {
				i = n + 1 - seen
			}
			if !bytes.Equal(ev.ReplayID, rid10(i)) || ev.EventID != fmt.Sprintf("id-%d", i) || !bytes.Equal(ev.Payload, payload(i)) {
				return fmt.Errorf("event %d read back wrong (replay %x, id %s)", i, ev.ReplayID, ev.EventID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != n {
			t.Fatalf("scanned %d events, want %d", seen, n)
		}
	}
	check(a, false)
	check(a, true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ro := openTest(t, path, Options{ReadOnly: true})
	check(ro, false)
}
