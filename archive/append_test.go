package archive

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const topicA = "/data/AccountChangeEvent"

func TestAppendKeepsReplayIDVerbatim(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rid  []byte
	}{
		{"10-byte real form", []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0xDB, 0x4D, 0x00, 0x00}},
		{"8-byte pre-2022 form", []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0xDB, 0x4D}},
		{"all 0xff", bytes.Repeat([]byte{0xff}, 10)},
		{"one byte", []byte{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTest(t)
			ev := Event{ReplayID: tt.rid, EventID: "e", SchemaID: "s", Payload: []byte{1}, ReceivedAt: at}
			mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{ev}})
			err := a.db.View(func(tx *bolt.Tx) error {
				k, _ := topicBucket(tx, topicA).Bucket(bucketEvents).Cursor().First()
				if !bytes.Equal(k, tt.rid) {
					t.Errorf("stored key %x, want %x", k, tt.rid)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, a, topicA, ScanOptions{})
			if len(got) != 1 || !bytes.Equal(got[0].ReplayID, tt.rid) || len(got[0].ReplayID) != len(tt.rid) {
				t.Fatalf("scanned %x, want %x", got, tt.rid)
			}
			if mark, _ := a.HighWaterMark(topicA); !bytes.Equal(mark, tt.rid) {
				t.Fatalf("mark %x, want %x", mark, tt.rid)
			}
		})
	}
}

func TestAppendRoundTripAndSeq(t *testing.T) {
	a := newTest(t)
	at := time.Unix(1767225600, 123456789)
	in := []Event{testEvent(1, "s1", at), testEvent(2, "", at), testEvent(3, "s1", at.Add(time.Millisecond))}
	orig := append([]Event{}, in...)
	st := mustAppend(t, a, TopicBatch{Topic: topicA, Events: in, Schemas: map[string]string{"s1": "{}"}})
	if st != (AppendStats{Stored: 3}) {
		t.Fatalf("stats %+v", st)
	}
	for i := range in {
		if in[i].Seq != 0 || !bytes.Equal(in[i].ReplayID, orig[i].ReplayID) {
			t.Fatal("Append modified the caller's events")
		}
	}
	got := collect(t, a, topicA, ScanOptions{})
	for i := range in {
		if err := sameEvent(got[i], in[i]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got[i].Seq != uint64(i+1) {
			t.Fatalf("event %d seq %d", i, got[i].Seq)
		}
	}
	// Sequence continues across commits; a zero ReceivedAt is stamped with the commit time.
	before := time.Now()
	ev := testEvent(4, "s1", time.Time{})
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{ev}})
	got = collect(t, a, topicA, ScanOptions{AfterReplayID: rid10(3)})
	if len(got) != 1 || got[0].Seq != 4 || got[0].ReceivedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("after second commit: %+v", got)
	}
}

func TestAppendIdempotent(t *testing.T) {
	a := newTest(t)
	at := time.Now()
	batch := TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "s", at), testEvent(2, "s", at)}}
	mustAppend(t, a, batch)
	// Redelivery after a reconnect: the same events again, plus one new, plus a duplicate inside the batch.
	again := TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "s", at), testEvent(2, "s", at),
		testEvent(3, "s", at), testEvent(3, "s", at)}}
	st := mustAppend(t, a, again)
	if st != (AppendStats{Stored: 1, Duplicates: 3}) {
		t.Fatalf("stats %+v", st)
	}
	if n := len(collect(t, a, topicA, ScanOptions{})); n != 3 {
		t.Fatalf("%d events stored, want 3", n)
	}
	ts := topicStatsOf(t, a, topicA)
	if ts.Events != 3 || ts.Duplicates != 3 || ts.Collisions != 0 {
		t.Fatalf("topic stats %+v", ts)
	}
}

func TestAppendCollisionKeptNotOverwritten(t *testing.T) {
	a := newTest(t)
	at := time.Now()
	first := testEvent(5, "s", at)
	other := testEvent(5, "s", at.Add(time.Second))
	other.EventID, other.Payload = "migrated-org-event", []byte("different")
	third := testEvent(5, "s", at.Add(2*time.Second))
	third.EventID = "third"
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(4, "s", at), first, testEvent(6, "s", at)}})
	st := mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{other, third}})
	if st != (AppendStats{Stored: 2, Collisions: 2}) {
		t.Fatalf("stats %+v", st)
	}
	// Both collisions redelivered: duplicates now, not new collisions.
	if st := mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{other, third, first}}); st != (AppendStats{Duplicates: 3}) {
		t.Fatalf("redelivered collisions: %+v", st)
	}
	got := collect(t, a, topicA, ScanOptions{})
	ids := []string{}
	for _, ev := range got {
		ids = append(ids, ev.EventID)
	}
	// The collision entries sort right after the original and before the next replay ID.
	if want := "ev-4 ev-5 migrated-org-event third ev-6"; strings.Join(ids, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(ids, " "), want)
	}
	for _, i := range []int{1, 2, 3} {
		if !bytes.Equal(got[i].ReplayID, rid10(5)) {
			t.Fatalf("event %d replay id %x, want the real one %x", i, got[i].ReplayID, rid10(5))
		}
	}
	if err := sameEvent(got[2], other); err != nil {
		t.Fatal(err)
	}
	if ts := topicStatsOf(t, a, topicA); ts.Collisions != 2 || ts.Events != 5 {
		t.Fatalf("topic stats %+v", ts)
	}
	// Bounds treat collision entries as their replay ID.
	if n := len(collect(t, a, topicA, ScanOptions{AfterReplayID: rid10(5)})); n != 1 {
		t.Fatalf("after 5: %d events, want 1", n)
	}
	if n := len(collect(t, a, topicA, ScanOptions{AfterReplayID: rid10(5), Reverse: true})); n != 1 {
		t.Fatalf("after 5 reverse: %d events, want 1", n)
	}
	if n := len(collect(t, a, topicA, ScanOptions{BeforeReplayID: rid10(6)})); n != 4 {
		t.Fatalf("before 6: %d events, want 4", n)
	}
}

func TestAppendOutOfOrderStoredAndCounted(t *testing.T) {
	a := newTest(t)
	at := time.Now()
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(10, "s", at), testEvent(20, "s", at)}})
	st := mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(15, "s", at), testEvent(30, "s", at)}})
	if st.Stored != 2 {
		t.Fatalf("stats %+v", st)
	}
	ts := topicStatsOf(t, a, topicA)
	if ts.OutOfOrder != 1 || ts.Events != 4 || !bytes.Equal(ts.FirstReplayID, rid10(10)) ||
		!bytes.Equal(ts.LastReplayID, rid10(30)) {
		t.Fatalf("topic stats %+v", ts)
	}
	var seqs []uint64
	for _, ev := range collect(t, a, topicA, ScanOptions{}) {
		seqs = append(seqs, ev.Seq)
	}
	// Key order 10, 15, 20, 30; arrival order 1, 3, 2, 4.
	if want := []uint64{1, 3, 2, 4}; !slices.Equal(seqs, want) {
		t.Fatalf("seqs %v, want %v", seqs, want)
	}
}

func TestAppendMarks(t *testing.T) {
	a := newTest(t)
	at := time.Now()
	if m, err := a.HighWaterMark(topicA); m != nil || err != nil {
		t.Fatalf("mark of an unknown topic: %x, %v", m, err)
	}
	// nil LatestReplayID → last event's replay ID.
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "s", at), testEvent(2, "s", at)}})
	assertMark(t, a, topicA, rid10(2))
	// latest_replay_id beyond the events.
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(3, "s", at)}, LatestReplayID: rid10(7)})
	assertMark(t, a, topicA, rid10(7))
	// A keepalive (no events) moves the mark, also for a topic that has no events yet.
	st := mustAppend(t, a, TopicBatch{Topic: topicA, LatestReplayID: rid10(99)},
		TopicBatch{Topic: "/event/Quiet__e", LatestReplayID: rid10(42)})
	if st != (AppendStats{}) {
		t.Fatalf("keepalive stats %+v", st)
	}
	assertMark(t, a, topicA, rid10(99))
	assertMark(t, a, "/event/Quiet__e", rid10(42))
	// An empty latest_replay_id (proto3's unset bytes) is not a position: the mark stays.
	mustAppend(t, a, TopicBatch{Topic: topicA, LatestReplayID: []byte{}})
	assertMark(t, a, topicA, rid10(99))
	if topics, _ := a.Topics(); strings.Join(topics, ",") != topicA+",/event/Quiet__e" {
		t.Fatalf("topics %v", topics)
	}
	if n := len(collect(t, a, "/event/Quiet__e", ScanOptions{})); n != 0 {
		t.Fatalf("quiet topic has %d events", n)
	}
}

func TestAppendIsOneTransaction(t *testing.T) {
	a := newTest(t)
	txid := func() (id int) {
		_ = a.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	before := txid()
	at := time.Now()
	mustAppend(t, a,
		TopicBatch{Topic: "/event/A__e", Events: []Event{testEvent(1, "s", at)}, Schemas: map[string]string{"s": "{}"}},
		TopicBatch{Topic: "/event/B__e", Events: []Event{testEvent(1, "s", at), testEvent(2, "s", at)}},
		TopicBatch{Topic: "/event/C__e", LatestReplayID: rid10(3)})
	if after := txid(); after != before+1 {
		t.Fatalf("Append of three topics used %d transactions, want 1", after-before)
	}
	// A failing batch rolls the whole call back: nothing of the valid batches lands.
	_, err := a.Append([]TopicBatch{{Topic: "/event/D__e", Events: []Event{testEvent(1, "s", at)}},
		{Topic: "/event/E__e", Events: []Event{{EventID: "no replay id"}}}})
	if err == nil {
		t.Fatal("Append with an empty replay ID succeeded")
	}
	if topics, _ := a.Topics(); len(topics) != 3 {
		t.Fatalf("topics after a failed append: %v", topics)
	}
	if _, err := a.Append([]TopicBatch{{Topic: ""}}); err == nil {
		t.Fatal("Append with an empty topic succeeded")
	}
}

func TestSchemasStoredWithFirstEvents(t *testing.T) {
	a := newTest(t)
	at := time.Now()
	js := `{"type":"record","name":"AccountChangeEvent","namespace":"com.sforce.eventbus","fields":[]}`
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(1, "S1", at), testEvent(2, "S1", at)},
		Schemas: map[string]string{"S1": js}})
	if ok, err := a.HasSchema("S1"); !ok || err != nil {
		t.Fatalf("HasSchema = %t, %v", ok, err)
	}
	if got, err := a.Schema("S1"); got != js || err != nil {
		t.Fatalf("Schema = %q, %v", got, err)
	}
	if ok, _ := a.HasSchema("S2"); ok {
		t.Fatal("HasSchema(S2) true")
	}
	if _, err := a.Schema("S2"); !errors.Is(err, ErrSchemaNotFound) || !strings.Contains(err.Error(), "S2") {
		t.Fatalf("Schema(S2) = %v", err)
	}
	// A schema change mid-stream, and a blank schema ID.
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{testEvent(3, "S2", at.Add(time.Second)),
		testEvent(4, "", at.Add(2*time.Second)), testEvent(5, "S1", at.Add(3*time.Second))},
		Schemas: map[string]string{"S2": "{}", "S1": "changed copy is ignored"}})
	if got, _ := a.Schema("S1"); got != js {
		t.Fatal("a stored schema was overwritten")
	}
	ids, err := a.SchemaIDs()
	if err != nil || strings.Join(ids, ",") != "S1,S2" {
		t.Fatalf("SchemaIDs = %v, %v", ids, err)
	}
	ts := topicStatsOf(t, a, topicA)
	if ts.BlankSchema != 1 || len(ts.Schemas) != 3 {
		t.Fatalf("topic stats %+v", ts)
	}
	use := map[string]SchemaUse{}
	for _, u := range ts.Schemas {
		use[u.SchemaID] = u
	}
	s1 := use["S1"]
	if s1.Count != 3 || !bytes.Equal(s1.FirstReplayID, rid10(1)) || !bytes.Equal(s1.LastReplayID, rid10(5)) ||
		!s1.FirstReceived.Equal(at) || !s1.LastReceived.Equal(at.Add(3*time.Second)) {
		t.Fatalf("S1 use %+v", s1)
	}
	if b := use[""]; b.Count != 1 || !bytes.Equal(b.FirstReplayID, rid10(4)) {
		t.Fatalf("blank schema use %+v", b)
	}
}

func TestBindOrg(t *testing.T) {
	a := newTest(t)
	if org, url, err := a.Org(); org != "" || url != "" || err != nil {
		t.Fatalf("unbound Org = %q %q %v", org, url, err)
	}
	if err := a.BindOrg("00D000000000001AAA", "https://a.my.salesforce.com"); err != nil {
		t.Fatal(err)
	}
	// Same org, 15-character form, new instance URL: accepted, URL updated.
	if err := a.BindOrg("00D000000000001", "https://b.my.salesforce.com"); err != nil {
		t.Fatal(err)
	}
	if org, url, _ := a.Org(); org != "00D000000000001AAA" || url != "https://b.my.salesforce.com" {
		t.Fatalf("Org = %q %q", org, url)
	}
	err := a.BindOrg("00D000000000002AAA", "https://evil.my.salesforce.com")
	if !errors.Is(err, ErrOrgMismatch) || !strings.Contains(err.Error(), "00D000000000001AAA") ||
		!strings.Contains(err.Error(), "00D000000000002AAA") {
		t.Fatalf("BindOrg(other) = %v", err)
	}
	if org, url, _ := a.Org(); org != "00D000000000001AAA" || url != "https://b.my.salesforce.com" {
		t.Fatalf("refused bind changed the org: %q %q", org, url)
	}
	if err := a.BindOrg("", "x"); err == nil {
		t.Fatal("empty org accepted")
	}
}

func TestGaps(t *testing.T) {
	a := newTest(t)
	at := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
	in := []Gap{
		{Topic: topicA, Time: at, Kind: "invalid-replay", FromReplayID: rid10(5), Reason: "replayid.corrupted"},
		{Topic: "/event/X__e", Time: at.Add(time.Hour), Kind: "gap-event", FromReplayID: rid10(1), ToReplayID: rid10(9)},
	}
	for _, g := range in {
		if err := a.AddGap(g); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.Gaps()
	if err != nil || len(got) != 2 {
		t.Fatalf("Gaps = %v, %v", got, err)
	}
	for i, g := range got {
		w := in[i]
		if g.Seq != uint64(i+1) || g.Topic != w.Topic || !g.Time.Equal(w.Time) || g.Kind != w.Kind ||
			!bytes.Equal(g.FromReplayID, w.FromReplayID) || !bytes.Equal(g.ToReplayID, w.ToReplayID) ||
			g.Reason != w.Reason {
			t.Fatalf("gap %d = %+v, want %+v", i, g, w)
		}
	}
	if st, _ := a.Stats(); st.Gaps != 2 {
		t.Fatalf("Stats.Gaps = %d", st.Gaps)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	a := newTest(t)
	seedArchive(t, a)
	want, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openTest(t, a.Path(), Options{NoSync: true})
	got, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != 2 || got.Topics[0].Events != want.Topics[0].Events || got.Schemas != 2 || got.Gaps != 1 ||
		got.OrgID != "00D000000000001AAA" || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("after reopen %+v, before %+v", got, want)
	}
	// Appending continues the sequence after a reopen.
	mustAppend(t, b, TopicBatch{Topic: topicA, Events: []Event{testEvent(100, "acc1", time.Now())}})
	evs := collect(t, b, topicA, ScanOptions{Reverse: true})
	if evs[0].Seq != 51 {
		t.Fatalf("seq after reopen %d, want 51", evs[0].Seq)
	}
}

func topicStatsOf(t *testing.T, a *Archive, topic string) TopicStats {
	t.Helper()
	st, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range st.Topics {
		if ts.Topic == topic {
			return ts
		}
	}
	t.Fatalf("no stats for %s", topic)
	return TopicStats{}
}

func assertMark(t *testing.T, a *Archive, topic string, want []byte) {
	t.Helper()
	got, err := a.HighWaterMark(topic)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("mark of %s = %x, %v; want %x", topic, got, err, want)
	}
}

func TestConcurrentAppendAndScan(t *testing.T) {
	a := newTest(t)
	topics := []string{"/event/A__e", "/event/B__e", "/event/C__e"}
	const commits, per = 30, 20
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, topic := range topics {
		wg.Go(func() {
			for c := range commits {
				var evs []Event
				for i := range per {
					evs = append(evs, testEvent(uint64(c*per+i+1), "s", time.Now()))
				}
				if _, err := a.Append([]TopicBatch{{Topic: topic, Events: evs, Schemas: map[string]string{"s": "{}"}}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 50 {
				for _, topic := range topics {
					var last []byte
					err := a.Scan(t.Context(), topic, ScanOptions{}, func(ev *Event) error {
						if last != nil && bytes.Compare(ev.ReplayID, last) <= 0 {
							return fmt.Errorf("scan out of order")
						}
						last = clone(ev.ReplayID)
						return nil
					})
					if err != nil && !errors.Is(err, ErrTopicNotFound) {
						errs <- err
						return
					}
				}
				if _, err := a.Stats(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if n := len(collect(t, a, topic, ScanOptions{})); n != commits*per {
			t.Fatalf("%s: %d events, want %d", topic, n, commits*per)
		}
	}
	if p, err := a.Verify(t.Context()); err != nil || len(p) != 0 {
		t.Fatalf("Verify = %v, %v", p, err)
	}
}

func TestCollisionLogged(t *testing.T) {
	var buf bytes.Buffer
	path := filepath.Join(t.TempDir(), "log.sfa")
	a := openTest(t, path, Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	ev := testEvent(1, "s", time.Now())
	other := ev
	other.EventID = "other"
	mustAppend(t, a, TopicBatch{Topic: topicA, Events: []Event{ev, other}})
	if !strings.Contains(buf.String(), "replay_id=00000000000000010000") || !strings.Contains(buf.String(), "event_id=other") {
		t.Fatalf("log: %s", buf.String())
	}
}
