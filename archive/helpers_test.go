package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTest opens (creating if needed) an archive in a test and registers a Cleanup that runs bbolt's consistency
// check on the file and closes it, whether or not the test closed it already.
func openTest(tb testing.TB, path string, opts Options) *Archive {
	tb.Helper()
	a, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if a.closed.Load() {
			ro, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				tb.Errorf("reopen %s for the consistency check: %v", path, err)
				return
			}
			a = ro
		}
		checkConsistent(tb, a)
		if err := a.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return a
}

// newTest creates a fresh writable archive in t.TempDir() (NoSync: tests do not need fsync).
func newTest(tb testing.TB) *Archive {
	tb.Helper()
	return openTest(tb, filepath.Join(tb.TempDir(), "test.sfa"), Options{NoSync: true})
}

func checkConsistent(tb testing.TB, a *Archive) {
	tb.Helper()
	err := a.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			tb.Errorf("bbolt consistency check of %s: %v", a.path, err)
		}
		return nil
	})
	if err != nil {
		tb.Errorf("consistency check: %v", err)
	}
}

// rid10 is a 10-byte replay ID as the real service and the emulator make them: an 8-byte big-endian counter and
// two zero bytes.
func rid10(n uint64) []byte {
	return append(binary.BigEndian.AppendUint64(nil, n), 0, 0)
}

// testEvent builds an event with a deterministic ID and payload for replay counter n.
func testEvent(n uint64, schemaID string, at time.Time) Event {
	return Event{
		ReplayID:   rid10(n),
		EventID:    fmt.Sprintf("ev-%d", n),
		SchemaID:   schemaID,
		Headers:    []Header{{Key: "sfdc.rpc-id", Value: []byte(fmt.Sprintf("rpc-%d", n))}},
		Payload:    bytes.Repeat([]byte{byte(n)}, 16+int(n%7)),
		ReceivedAt: at,
	}
}

// collect scans topic and returns deep copies of the events.
func collect(tb testing.TB, a *Archive, topic string, opts ScanOptions) []Event {
	tb.Helper()
	var out []Event
	err := a.Scan(tb.Context(), topic, opts, func(ev *Event) error {
		out = append(out, copyEvent(ev))
		return nil
	})
	if err != nil {
		tb.Fatalf("Scan(%s): %v", topic, err)
	}
	return out
}

func copyEvent(ev *Event) Event {
	c := *ev
	c.ReplayID = clone(ev.ReplayID)
	c.Payload = clone(ev.Payload)
	c.Headers = nil
	for _, h := range ev.Headers {
		c.Headers = append(c.Headers, Header{Key: h.Key, Value: clone(h.Value)})
	}
	return c
}

func mustAppend(tb testing.TB, a *Archive, batches ...TopicBatch) AppendStats {
	tb.Helper()
	st, err := a.Append(batches)
	if err != nil {
		tb.Fatalf("Append: %v", err)
	}
	return st
}

// sameEvent compares everything but Seq (assigned by Append) and time zones.
func sameEvent(got, want Event) error {
	switch {
	case !bytes.Equal(got.ReplayID, want.ReplayID):
		return fmt.Errorf("replay id %x, want %x", got.ReplayID, want.ReplayID)
	case got.EventID != want.EventID:
		return fmt.Errorf("event id %q, want %q", got.EventID, want.EventID)
	case got.SchemaID != want.SchemaID:
		return fmt.Errorf("schema id %q, want %q", got.SchemaID, want.SchemaID)
	case !bytes.Equal(got.Payload, want.Payload):
		return fmt.Errorf("payload %x, want %x", got.Payload, want.Payload)
	case !got.ReceivedAt.Equal(want.ReceivedAt):
		return fmt.Errorf("received %v, want %v", got.ReceivedAt, want.ReceivedAt)
	case len(got.Headers) != len(want.Headers):
		return fmt.Errorf("%d headers, want %d", len(got.Headers), len(want.Headers))
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			return fmt.Errorf("header %d = %q:%x, want %q:%x", i, got.Headers[i].Key, got.Headers[i].Value,
				want.Headers[i].Key, want.Headers[i].Value)
		}
	}
	return nil
}

func contextWithCancelNow(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx, cancel
}
