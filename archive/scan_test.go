package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var scanBase = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// fillTopic appends commits×perCommit events; event n (1-based) is received at scanBase + commit seconds + i ms.
func fillTopic(t testing.TB, a *Archive, topic string, commits, perCommit int) []Event {
	var all []Event
	for c := range commits {
		var evs []Event
		for i := range perCommit {
			n := uint64(c*perCommit + i + 1)
			evs = append(evs, testEvent(n, "s", scanBase.Add(time.Duration(c)*time.Second+time.Duration(i)*time.Millisecond)))
		}
		mustAppend(t, a, TopicBatch{Topic: topic, Events: evs, Schemas: map[string]string{"s": "{}"}})
		all = append(all, evs...)
	}
	return all
}

// expected filters events by opts the slow way.
func expected(all []Event, o ScanOptions) []Event {
	var out []Event
	for _, ev := range all {
		if o.AfterReplayID != nil && bytes.Compare(ev.ReplayID, o.AfterReplayID) <= 0 ||
			o.BeforeReplayID != nil && bytes.Compare(ev.ReplayID, o.BeforeReplayID) >= 0 ||
			!o.ReceivedSince.IsZero() && ev.ReceivedAt.Before(o.ReceivedSince) ||
			!o.ReceivedUntil.IsZero() && !ev.ReceivedAt.Before(o.ReceivedUntil) {
			continue
		}
		out = append(out, ev)
	}
	if o.Reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

func sameEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		if err := sameEvent(got[i], want[i]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
}

func TestScanReplayBounds(t *testing.T) {
	a := newTest(t)
	all := fillTopic(t, a, topicA, 3, 10) // replay counters 1..30
	tests := []struct {
		name string
		o    ScanOptions
		want string // first..last replay counters, "" for none
	}{
		{"all", ScanOptions{}, "1..30"},
		{"after", ScanOptions{AfterReplayID: rid10(10)}, "11..30"},
		{"before", ScanOptions{BeforeReplayID: rid10(10)}, "1..9"},
		{"between", ScanOptions{AfterReplayID: rid10(3), BeforeReplayID: rid10(7)}, "4..6"},
		{"after an absent key", ScanOptions{AfterReplayID: append(rid10(3), 1)}, "4..30"},
		{"after the last", ScanOptions{AfterReplayID: rid10(30)}, ""},
		{"empty range", ScanOptions{AfterReplayID: rid10(5), BeforeReplayID: rid10(6)}, ""},
		{"reverse all", ScanOptions{Reverse: true}, "30..1"},
		{"reverse between", ScanOptions{Reverse: true, AfterReplayID: rid10(3), BeforeReplayID: rid10(7)}, "6..4"},
		{"reverse before past the end", ScanOptions{Reverse: true, BeforeReplayID: rid10(99)}, "30..1"},
		{"reverse before the first", ScanOptions{Reverse: true, BeforeReplayID: rid10(1)}, ""},
		{"8-byte bound below 10-byte keys", ScanOptions{AfterReplayID: rid10(29)[:8]}, "29..30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, a, topicA, tt.o)
			sameEvents(t, got, expected(all, tt.o))
			span := ""
			if len(got) > 0 {
				span = fmt.Sprintf("%d..%d", got[0].ReplayID[7], got[len(got)-1].ReplayID[7])
			}
			if span != tt.want {
				t.Fatalf("span %q, want %q", span, tt.want)
			}
		})
	}
}

func TestScanReceivedTimeUsesIndex(t *testing.T) {
	a := newTest(t)
	const commits, per = 100, 100
	all := fillTopic(t, a, topicA, commits, per)
	tests := []struct {
		name       string
		o          ScanOptions
		maxDecoded uint64
	}{
		// The last 1%: one commit, found by seeking the index (one commit before it is read too).
		{"since last commit", ScanOptions{ReceivedSince: scanBase.Add(99 * time.Second)}, 2 * per},
		{"since mid-commit", ScanOptions{ReceivedSince: scanBase.Add(99*time.Second + 50*time.Millisecond)}, 2 * per},
		{"until the second commit", ScanOptions{ReceivedUntil: scanBase.Add(time.Second)}, per},
		{"one commit window", ScanOptions{ReceivedSince: scanBase.Add(50 * time.Second),
			ReceivedUntil: scanBase.Add(51 * time.Second)}, 2 * per},
		{"reverse window", ScanOptions{Reverse: true, ReceivedSince: scanBase.Add(10 * time.Second),
			ReceivedUntil: scanBase.Add(12 * time.Second)}, 3 * per},
		{"since before everything", ScanOptions{ReceivedSince: scanBase.Add(-time.Hour)}, commits * per},
		{"since after everything", ScanOptions{ReceivedSince: scanBase.Add(time.Hour)}, per},
		{"until before everything", ScanOptions{ReceivedUntil: scanBase.Add(-time.Hour)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.decoded.Load()
			got := collect(t, a, topicA, tt.o)
			decoded := a.decoded.Load() - before
			sameEvents(t, got, expected(all, tt.o))
			if decoded > tt.maxDecoded {
				t.Fatalf("decoded %d envelopes for %d results, want at most %d (the index should seek)",
					decoded, len(got), tt.maxDecoded)
			}
		})
	}
}

// TestScanMatchesBruteForce compares random combinations of every bound against a plain filter, on a topic whose
// index is usable and on one where out-of-order keys switched it off.
func TestScanMatchesBruteForce(t *testing.T) {
	a := newTest(t)
	ordered := fillTopic(t, a, "/event/Ordered__e", 40, 25)
	var shuffled []Event
	rng := rand.New(rand.NewPCG(1, 2))
	perm := rng.Perm(1000)
	for c := range 40 {
		var evs []Event
		for i := range 25 {
			n := uint64(perm[c*25+i] + 1)
			evs = append(evs, testEvent(n, "s", scanBase.Add(time.Duration(c)*time.Second+time.Duration(i)*time.Millisecond)))
		}
		mustAppend(t, a, TopicBatch{Topic: "/event/Shuffled__e", Events: evs})
		shuffled = append(shuffled, evs...)
	}
	// The shuffled topic's scan order is key order, not arrival order.
	sortedShuffled := append([]Event{}, shuffled...)
	sortByKey(sortedShuffled)
	if ts := topicStatsOf(t, a, "/event/Shuffled__e"); ts.OutOfOrder == 0 {
		t.Fatal("shuffled topic has no out-of-order count")
	}
	randTime := func() time.Time {
		if rng.IntN(3) == 0 {
			return time.Time{}
		}
		return scanBase.Add(time.Duration(rng.IntN(42000)-1000) * time.Millisecond)
	}
	randRID := func() []byte {
		if rng.IntN(2) == 0 {
			return nil
		}
		return rid10(uint64(rng.IntN(1002)))
	}
	for i := range 300 {
		o := ScanOptions{AfterReplayID: randRID(), BeforeReplayID: randRID(), ReceivedSince: randTime(),
			ReceivedUntil: randTime(), Reverse: rng.IntN(2) == 0}
		for _, tc := range []struct {
			topic string
			all   []Event
		}{{"/event/Ordered__e", ordered}, {"/event/Shuffled__e", sortedShuffled}} {
			got := collect(t, a, tc.topic, o)
			want := expected(tc.all, o)
			if len(got) != len(want) {
				t.Fatalf("case %d %s %+v: %d events, want %d", i, tc.topic, o, len(got), len(want))
			}
			for j := range got {
				if err := sameEvent(got[j], want[j]); err != nil {
					t.Fatalf("case %d %s event %d: %v", i, tc.topic, j, err)
				}
			}
		}
	}
}

func sortByKey(evs []Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && bytes.Compare(evs[j].ReplayID, evs[j-1].ReplayID) < 0; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func TestScanBadEnvelope(t *testing.T) {
	a := newTest(t)
	fillTopic(t, a, topicA, 1, 5)
	corrupt(t, a, topicA, rid10(3), []byte{9, 9, 9}) // version 9
	var ee *EnvelopeError
	err := a.Scan(t.Context(), topicA, ScanOptions{}, func(*Event) error { return nil })
	if !errors.As(err, &ee) || ee.Topic != topicA || !bytes.Equal(ee.ReplayID, rid10(3)) || !errors.Is(err, ErrEnvelope) {
		t.Fatalf("Scan = %v, want *EnvelopeError for %s %x", err, topicA, rid10(3))
	}
	if !strings.Contains(err.Error(), topicA) || !strings.Contains(err.Error(), "00000000000000030000") {
		t.Fatalf("error %q does not name topic and replay ID", err)
	}
	// OnBadEnvelope: report and continue.
	var bad [][]byte
	var n int
	err = a.Scan(t.Context(), topicA, ScanOptions{OnBadEnvelope: func(topic string, rid []byte, err error) error {
		if topic != topicA || !errors.As(err, &ee) {
			t.Errorf("OnBadEnvelope(%s, %x, %v)", topic, rid, err)
		}
		bad = append(bad, clone(rid))
		return nil
	}}, func(*Event) error { n++; return nil })
	if err != nil || n != 4 || len(bad) != 1 || !bytes.Equal(bad[0], rid10(3)) {
		t.Fatalf("continue: err %v, %d events, bad %x", err, n, bad)
	}
	// OnBadEnvelope returning an error stops the scan with it.
	stop := errors.New("enough")
	err = a.Scan(t.Context(), topicA, ScanOptions{OnBadEnvelope: func(string, []byte, error) error { return stop }},
		func(*Event) error { return nil })
	if !errors.Is(err, stop) {
		t.Fatalf("Scan = %v, want the callback's error", err)
	}
	if p, err := a.Verify(t.Context()); err != nil || len(p) != 1 || !bytes.Equal(p[0].ReplayID, rid10(3)) {
		t.Fatalf("Verify = %v, %v", p, err)
	}
}

func TestScanStopsAndErrors(t *testing.T) {
	a := newTest(t)
	fillTopic(t, a, topicA, 2, 300)
	if err := a.Scan(t.Context(), "/event/Nope__e", ScanOptions{}, func(*Event) error { return nil }); !errors.Is(err, ErrTopicNotFound) ||
		!strings.Contains(err.Error(), "/event/Nope__e") {
		t.Fatalf("unknown topic: %v", err)
	}
	n := 0
	if err := a.Scan(t.Context(), topicA, ScanOptions{}, func(*Event) error {
		if n++; n == 3 {
			return StopScan
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("StopScan: %v after %d", err, n)
	}
	mine := errors.New("mine")
	if err := a.Scan(t.Context(), topicA, ScanOptions{}, func(*Event) error { return mine }); !errors.Is(err, mine) {
		t.Fatalf("fn error: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n = 0
	err := a.Scan(ctx, topicA, ScanOptions{}, func(*Event) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n >= 600 {
		t.Fatalf("cancelled scan: %v after %d events", err, n)
	}
}

// corrupt replaces the stored value of key in topic's events bucket.
func corrupt(t *testing.T, a *Archive, topic string, key, value []byte) {
	t.Helper()
	if err := a.db.Update(func(tx *bolt.Tx) error {
		return topicBucket(tx, topic).Bucket(bucketEvents).Put(key, value)
	}); err != nil {
		t.Fatal(err)
	}
}
