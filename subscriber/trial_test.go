package subscriber

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/emulator"
)

// MaxEvents N archives exactly N events, however many were already requested
// and received on however many topics; the rest are redelivered from the
// marks by the next run, with no loss and no duplicate.
func TestMaxEventsIsExact(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
	}{{"one", 1}, {"one-and-a-half-topics", 150}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, emulatorConfig())
			e.publish(orderTopic, 100, 100)
			e.publish(secondTopic, 100, 100)
			a := e.open()
			cfg := e.config(orderTopic, secondTopic)
			cfg.MaxEvents = tc.limit
			sum, err := start(t, cfg, a).wait(t)
			if err != nil {
				t.Fatalf("first run: %v", err)
			}
			total := count(a, orderTopic) + count(a, secondTopic)
			archived := int64(0)
			for _, ts := range sum.Topics {
				archived += ts.Archived
			}
			if total != tc.limit || sum.Stored != tc.limit || archived != int64(tc.limit) || sum.Reason != ReasonMaxEvents {
				t.Fatalf("MaxEvents %d: archive holds %d, summary stored %d, topics archived %d, reason %s",
					tc.limit, total, sum.Stored, archived, sum.Reason)
			}
			// Each mark is the replay ID of the topic's last archived event
			// (or absent): never past an event that was not committed.
			for _, topic := range cfg.Topics {
				got := stored(t, a, topic)
				mark, err := a.HighWaterMark(topic)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					if len(mark) != 0 {
						t.Fatalf("%s: mark %x with no event archived", topic, mark)
					}
					continue
				}
				if last := got[len(got)-1].ReplayID; !bytes.Equal(mark, last) {
					t.Fatalf("%s: mark %x, want the last archived event's %x", topic, mark, last)
				}
			}

			cfg.MaxEvents = 0
			cfg.ExitWhenIdle = time.Second
			sum, err = start(t, cfg, a).wait(t)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if sum.Stored != 200-tc.limit || sum.Duplicates != 0 || sum.Reason != ReasonIdle {
				t.Fatalf("second run: %+v, want %d stored, no duplicate", sum, 200-tc.limit)
			}
			for _, topic := range cfg.Topics {
				sameAsEmulator(t, a, e.srv, topic)
			}
		})
	}
}

// countingStore records the batches passed to Append.
type countingStore struct {
	Store
	mu      sync.Mutex
	batches [][]archive.TopicBatch
}

func (s *countingStore) Append(b []archive.TopicBatch) (archive.AppendStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, b)
	n := 0
	for _, tb := range b {
		n += len(tb.Events)
	}
	return archive.AppendStats{Stored: n}, nil
}

// The writer cuts a group at the limit: the cut batch ends at its last kept
// event and marks it, later batches (keepalives included) are dropped, and the
// topics' counters settle what was handed, not what was kept.
func TestWriterLimitTrimsGroup(t *testing.T) {
	ev := func(id byte) archive.Event {
		return archive.Event{ReplayID: []byte{0, id}, EventID: string(rune('a' + id))}
	}
	a, b := newTopicState("/a", []byte{0, 0}), newTopicState("/b", []byte{0, 50})
	group := []handoff{
		{a, archive.TopicBatch{Topic: "/a", Events: []archive.Event{ev(1), ev(2)}, LatestReplayID: []byte{0, 2}}},
		{b, archive.TopicBatch{Topic: "/b", Events: []archive.Event{ev(51), ev(52), ev(53)}, LatestReplayID: []byte{0, 53}}},
		{a, archive.TopicBatch{Topic: "/a", Events: []archive.Event{ev(3)}, LatestReplayID: []byte{0, 3}}},
		{b, archive.TopicBatch{Topic: "/b", LatestReplayID: []byte{0, 60}}}, // keepalive
	}
	for _, h := range group {
		h.t.handed(len(h.batch.Events))
	}
	st := &countingStore{}
	var committed int
	w := &writer{store: st, schemas: newSchemaCache(st), log: testLogger(t), limit: 3,
		afterCommit: func(n int) { committed += n }, fatal: func(err error) { t.Fatal(err) }}
	w.commit(group)
	if len(st.batches) != 1 || len(st.batches[0]) != 2 {
		t.Fatalf("appended %+v", st.batches)
	}
	ba, bb := st.batches[0][0], st.batches[0][1]
	if len(ba.Events) != 2 || !bytes.Equal(batchMark(ba), []byte{0, 2}) {
		t.Fatalf("topic a appended %+v", ba)
	}
	if len(bb.Events) != 1 || !bytes.Equal(bb.Events[0].ReplayID, []byte{0, 51}) || !bytes.Equal(batchMark(bb), []byte{0, 51}) {
		t.Fatalf("topic b appended %+v, want its first event, marked at it", bb)
	}
	if committed != 3 {
		t.Fatalf("afterCommit saw %d events, want 3", committed)
	}
	for _, tc := range []struct {
		t        *topicState
		mark     []byte
		archived int64
	}{{a, []byte{0, 2}, 2}, {b, []byte{0, 51}, 1}} {
		mark, unc, inFlight := tc.t.snapshot()
		if !bytes.Equal(mark, tc.mark) || unc != 0 || inFlight != 0 || tc.t.archived != tc.archived {
			t.Fatalf("%s: mark %x uncommitted %d in flight %d archived %d; want mark %x, 0, 0, %d",
				tc.t.name, mark, unc, inFlight, tc.t.archived, tc.mark, tc.archived)
		}
	}
	// Past the limit nothing more is appended, and the counters still settle.
	a.handed(1)
	w.commit([]handoff{{a, archive.TopicBatch{Topic: "/a", Events: []archive.Event{ev(4)}}}})
	if mark, unc, inFlight := a.snapshot(); len(st.batches) != 1 || !bytes.Equal(mark, []byte{0, 2}) || unc != 0 || inFlight != 0 {
		t.Fatalf("after the limit: %d appends, mark %x, uncommitted %d, in flight %d", len(st.batches), mark, unc, inFlight)
	}
}

// ExitWhenIdle does not end the run while streams are reconnecting: a gap
// between streams longer than ExitWhenIdle is an outage, not an idle topic.
func TestExitWhenIdleWaitsForReconnect(t *testing.T) {
	e := newTestEnv(t, emulatorConfig())
	e.publish(orderTopic, 150, 100)
	e.srv.EndStreamsAfter(30, codes.Unavailable, "")
	for nth := 2; nth <= 4; nth++ { // the first three resubscribes fail at once
		e.srv.FailCall(emulator.RPCSubscribe, nth, codes.Unavailable, "", "")
	}
	a := e.open()
	cfg := e.config(orderTopic)
	cfg.ExitWhenIdle = 200 * time.Millisecond
	cfg.BackoffMin = 600 * time.Millisecond // each wait is 300-600ms: longer than ExitWhenIdle
	cfg.BackoffMax = 600 * time.Millisecond
	sum, err := start(t, cfg, a).wait(t)
	if err != nil || sum.Reason != ReasonIdle {
		t.Fatalf("run: %+v, %v", sum, err)
	}
	sameAsEmulator(t, a, e.srv, orderTopic)
	if n := sum.Topics[0].Subscribes; n < 8 {
		t.Fatalf("%d subscribes, want at least 8 (5 streams of 30, 3 failed)", n)
	}
}

// A refused static token is not necessarily expired: the server answers the
// same for a wrong instance URL or org ID, and the error says so.
func TestStaticCredentialsRefusedNamesAllThree(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	for _, tc := range []struct{ name, token, instance, org string }{
		{"wrong-org", testToken, testInstance, "00D000000000999AAA"},
		{"wrong-instance", testToken, "https://other.my.salesforce.com", e.srv.OrgID()},
		{"wrong-token", "00Dtest!wrong", testInstance, e.srv.OrgID()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := archive.Open(filepath.Join(t.TempDir(), "a.db"), archive.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			cfg := e.config(orderTopic)
			cfg.Auth = auth.NewStatic(tc.token, tc.instance, tc.org)
			_, err = Run(t.Context(), cfg, a)
			if !errors.Is(err, ErrAuth) || !errors.Is(err, auth.ErrCannotRefresh) {
				t.Fatalf("got %v, want ErrAuth and auth.ErrCannotRefresh", err)
			}
			msg := err.Error()
			for _, want := range []string{"access token", "instance URL (" + tc.instance + ")", "org ID (" + tc.org + ")", "cannot be renewed", "expired"} {
				if !strings.Contains(msg, want) {
					t.Fatalf("error does not mention %q: %s", want, msg)
				}
			}
			if strings.Contains(msg, "revoked") || strings.Count(msg, "renew") > 1 {
				t.Fatalf("error blames only the token or repeats itself: %s", msg)
			}
		})
	}
}

// The final progress report says the run stopped and gives the rate over the
// whole run, not "not connected" at 0/s.
func TestFinalProgressReport(t *testing.T) {
	e := newTestEnv(t, emulatorConfig())
	e.publish(orderTopic, 50, 100)
	a := e.open()
	cfg := e.config(orderTopic)
	cfg.MaxEvents = 50
	cfg.ProgressEvery = time.Hour // no periodic report: only the final one
	var mu sync.Mutex
	var reports []TopicProgress
	cfg.Progress = func(p TopicProgress) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, p)
	}
	began := time.Now()
	if _, err := start(t, cfg, a).wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	elapsed := time.Since(began).Seconds()
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 {
		t.Fatalf("%d reports, want the final one: %+v", len(reports), reports)
	}
	p := reports[0]
	if !p.Stopped || p.Connected || p.Archived != 50 {
		t.Fatalf("final report %+v, want Stopped with 50 archived", p)
	}
	if min := 50 / elapsed; p.Rate < min {
		t.Fatalf("final rate %.1f/s, want the run's average (at least %.1f/s)", p.Rate, min)
	}
}

// A start position given in the configuration (no stored mark) that the
// server rejects is called the start position, not a stored one.
func TestRejectedStartPositionWording(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 3, 100)
	old := e.srv.Events(orderTopic)[2].ReplayID
	time.Sleep(2 * time.Millisecond)
	e.srv.Purge(time.Now()) // the given position ages out
	e.publish(orderTopic, 2, 100)
	open := func(t *testing.T) *archive.Archive {
		a, err := archive.Open(filepath.Join(t.TempDir(), "a.db"), archive.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		return a
	}
	// A position the user gave with --from (no stored mark) that the server
	// rejects ends the run whatever the policy: nothing was archived from it,
	// so there is no gap to record, only an ID to correct.
	for _, policy := range []string{OnInvalidReplayFail, OnInvalidReplayEarliest} {
		t.Run(policy, func(t *testing.T) {
			a := open(t)
			cfg := e.config(orderTopic)
			cfg.From = StartPosition{Kind: StartCustom, ReplayID: old}
			cfg.OnInvalidReplay = policy
			_, err := start(t, cfg, a).wait(t)
			if !errors.Is(err, ErrInvalidReplay) || !strings.Contains(err.Error(), "start position given with --from") ||
				strings.Contains(err.Error(), "stored") {
				t.Fatalf("run error %v, want ErrInvalidReplay naming the --from start position", err)
			}
			if gaps, err := a.Gaps(); err != nil || len(gaps) != 0 {
				t.Fatalf("gaps %+v, %v; want none", gaps, err)
			}
			if n := count(a, orderTopic); n != 0 {
				t.Fatalf("archived %d events after a rejected --from, want 0", n)
			}
		})
	}
}
