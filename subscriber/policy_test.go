package subscriber

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/emulator"
)

// Each transient row of the error-policy table: the stream ends after k events
// with the given status and error-code; the client resubscribes with CUSTOM from
// the mark (the last event it committed), never LATEST, and archives everything
// exactly once.
func TestTransientFailuresResumeFromMark(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      codes.Code
		errorCode string
	}{
		{"unavailable-no-trailer", codes.Unavailable, ""}, // case 7: RST_STREAM without error-code
		{"internal-service-unavailable", codes.Internal, emulator.CodeUnavailable},
		{"resource-exhausted", codes.ResourceExhausted, emulator.CodeProtection},
		{"unknown-no-trailer", codes.Unknown, ""}, // unexpected end of stream
		{"closed-with-ok", codes.OK, ""},          // case 6: idle close
	} {
		t.Run(tc.name, func(t *testing.T) {
			const k, total = 40, 200
			e := newTestEnv(t, emulator.Config{})
			e.publish(orderTopic, total, 300)
			e.srv.EndStreamsAfter(k, tc.code, tc.errorCode)
			a := e.open()
			cfg := e.config(orderTopic)
			cfg.Batch = 30 // streams end inside a response's batch as well as at its edge
			cfg.MaxEvents = total
			sum, err := start(t, cfg, a).wait(t)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			sameAsEmulator(t, a, e.srv, orderTopic)
			evs := e.srv.Events(orderTopic)
			subs := subscribes(e.srv, orderTopic)
			if len(subs) < total/k {
				t.Fatalf("%d subscribes, want at least %d", len(subs), total/k)
			}
			if subs[0].Preset != "EARLIEST" {
				t.Fatalf("first subscribe %s, want EARLIEST", subs[0].Preset)
			}
			for i, s := range subs[1:] {
				want := hexID(evs[(i+1)*k-1].ReplayID)
				if s.Preset != "CUSTOM" || hexID(s.ReplayID) != want {
					t.Fatalf("subscribe %d after failure: %s %s, want CUSTOM %s", i+2, s.Preset, hexID(s.ReplayID), want)
				}
			}
			if sum.Duplicates != 0 || sum.Topics[0].Subscribes < len(subs) {
				t.Fatalf("summary %+v, %d subscribes on the wire", sum, len(subs))
			}
		})
	}
}

// A failure when the stream opens (no event delivered) backs off and retries
// from the same mark; a refused topic stops with the server's message and rpc-id.
func TestFailureAtOpen(t *testing.T) {
	t.Run("unavailable-retried", func(t *testing.T) {
		e := newTestEnv(t, emulator.Config{})
		e.publish(orderTopic, 50, 100)
		e.srv.FailCall(emulator.RPCSubscribe, 1, codes.Unavailable, "", "")
		e.srv.FailCall(emulator.RPCSubscribe, 2, codes.Internal, emulator.CodeUnavailable, "")
		a := e.open()
		cfg := e.config(orderTopic)
		cfg.MaxEvents = 50
		if _, err := start(t, cfg, a).wait(t); err != nil {
			t.Fatalf("run: %v", err)
		}
		sameAsEmulator(t, a, e.srv, orderTopic)
		if n := e.srv.Calls(emulator.RPCSubscribe); n != 3 {
			t.Fatalf("%d Subscribe calls, want 3 (two failures, one success)", n)
		}
	})
	for _, tc := range []struct {
		name      string
		code      codes.Code
		errorCode string
	}{
		{"permission-denied", codes.PermissionDenied, emulator.ErrorCodePrefix + "topic.meta.permission"},
		{"invalid-argument", codes.InvalidArgument, emulator.CodeFetchRequestInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, emulator.Config{})
			e.publish(orderTopic, 30, 100)
			e.publish(secondTopic, 30, 100)
			e.srv.EndStreamsAfter(10, codes.Unavailable, "")
			a := e.open()
			cfg := e.config(orderTopic)
			// The first stream delivers 10 events and breaks; the second is refused.
			e.srv.FailCall(emulator.RPCSubscribe, 2, tc.code, tc.errorCode, "Refused for this test.")
			sum, err := start(t, cfg, a).wait(t)
			if !errors.Is(err, ErrTopicRefused) {
				t.Fatalf("run error %v, want ErrTopicRefused", err)
			}
			var re *RemoteError
			if !errors.As(err, &re) || re.Code != tc.code || re.ErrorCode != tc.errorCode || re.RPCID == "" ||
				!strings.Contains(err.Error(), "Refused for this test.") || !strings.Contains(err.Error(), re.RPCID) {
				t.Fatalf("error lacks the server's message, code or rpc-id: %v (%+v)", err, re)
			}
			if sum.Reason != ReasonTopicsDone || !errors.Is(sum.Topics[0].Err, ErrTopicRefused) {
				t.Fatalf("summary %+v", sum)
			}
			if n := count(a, orderTopic); n != 10 {
				t.Fatalf("archived %d, want the 10 delivered before the refusal", n)
			}
		})
	}
}

// A refused topic stops alone; the other topic keeps archiving.
func TestRefusedTopicStopsAlone(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 20, 100)
	e.publish(secondTopic, 20, 100)
	a := e.open()
	cfg := e.config(orderTopic, secondTopic)
	r := start(t, cfg, a)
	eventually(t, "both topics archived", 10*time.Second, func() bool {
		return count(a, orderTopic) == 20 && count(a, secondTopic) == 20
	})
	calls := e.srv.Calls(emulator.RPCSubscribe)
	e.srv.FailCall(emulator.RPCSubscribe, 1, codes.PermissionDenied, emulator.ErrorCodePrefix+"topic.meta.permission", "")
	e.srv.EndStreamsAfter(1, codes.Unavailable, "")
	e.publish(orderTopic, 1, 100)
	eventually(t, "the order stream to resubscribe", 10*time.Second, func() bool { return e.srv.Calls(emulator.RPCSubscribe) >= calls+1 })
	e.srv.EndStreamsAfter(0, codes.OK, "")
	e.publish(secondTopic, 5, 100)
	e.publish(orderTopic, 5, 100)
	eventually(t, "the surviving topic to go on", 10*time.Second, func() bool {
		return count(a, secondTopic) == 25
	})
	if n := count(a, orderTopic); n != 21 {
		t.Fatalf("refused topic archived %d, want the 21 delivered before the refusal", n)
	}
	sum, err := r.stop(t)
	if !errors.Is(err, ErrTopicRefused) {
		t.Fatalf("run error %v, want the refused topic's error", err)
	}
	refused := 0
	for _, ts := range sum.Topics {
		if ts.Err != nil {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d topics stopped, want 1: %+v", refused, sum.Topics)
	}
}

// Case 13: a stored position older than retention → a gap record (topic, time,
// rejected position), resume from EARLIEST (never LATEST), the rejected ID never
// sent again. With "fail": the run stops and explains.
func TestInvalidReplay(t *testing.T) {
	setup := func(t *testing.T) (*testEnv, *archive.Archive, []byte) {
		e := newTestEnv(t, emulator.Config{})
		e.publish(orderTopic, 10, 100)
		a := e.open()
		cfg := e.config(orderTopic)
		cfg.MaxEvents = 10
		if _, err := start(t, cfg, a).wait(t); err != nil {
			t.Fatalf("first run: %v", err)
		}
		mark, _ := a.HighWaterMark(orderTopic)
		time.Sleep(2 * time.Millisecond)
		e.srv.Purge(time.Now()) // the 10 events age out; the mark is no longer valid
		e.publish(orderTopic, 5, 100)
		return e, a, mark
	}
	t.Run("earliest", func(t *testing.T) {
		e, a, mark := setup(t)
		before := len(subscribes(e.srv, orderTopic))
		cfg := e.config(orderTopic)
		cfg.MaxEvents = 5
		sum, err := start(t, cfg, a).wait(t)
		if err != nil {
			t.Fatalf("second run: %v", err)
		}
		subs := subscribes(e.srv, orderTopic)[before:]
		if len(subs) != 2 || subs[0].Preset != "CUSTOM" || hexID(subs[0].ReplayID) != hexID(mark) || subs[1].Preset != "EARLIEST" {
			t.Fatalf("subscribes %+v, want CUSTOM %x then EARLIEST", subs, mark)
		}
		gaps, err := a.Gaps()
		if err != nil || len(gaps) != 1 {
			t.Fatalf("gaps %+v, %v", gaps, err)
		}
		g := gaps[0]
		if g.Topic != orderTopic || hexID(g.FromReplayID) != hexID(mark) || g.Time.IsZero() ||
			!strings.Contains(g.Reason, "replayid.corrupted") {
			t.Fatalf("gap record %+v", g)
		}
		if n := count(a, orderTopic); n != 15 || sum.Topics[0].Gaps != 1 {
			t.Fatalf("archived %d (want 15), summary %+v", n, sum.Topics[0])
		}
		newMark, _ := a.HighWaterMark(orderTopic)
		evs := e.srv.Events(orderTopic)
		if hexID(newMark) != hexID(evs[len(evs)-1].ReplayID) {
			t.Fatalf("mark %x after recovery, want %x", newMark, evs[len(evs)-1].ReplayID)
		}
	})
	t.Run("rejected-id-not-retried", func(t *testing.T) {
		e, a, mark := setup(t)
		// EARLIEST fails too (transiently): the next attempt must still be
		// EARLIEST, not the rejected ID again.
		e.srv.FailCall(emulator.RPCSubscribe, 2, codes.Unavailable, "", "")
		before := len(subscribes(e.srv, orderTopic))
		cfg := e.config(orderTopic)
		cfg.MaxEvents = 5
		if _, err := start(t, cfg, a).wait(t); err != nil {
			t.Fatalf("run: %v", err)
		}
		for _, s := range subscribes(e.srv, orderTopic)[before+1:] {
			if s.Preset != "EARLIEST" {
				t.Fatalf("after the rejection subscribed with %s %x (rejected %x)", s.Preset, s.ReplayID, mark)
			}
		}
		if n := count(a, orderTopic); n != 15 {
			t.Fatalf("archived %d, want 15", n)
		}
	})
	t.Run("restart-after-gap", func(t *testing.T) {
		// A run recorded the gap and stopped before committing anything
		// newer: the stored mark is still the rejected ID. The next run must
		// start from EARLIEST at once, without a second rejection or gap.
		e, a, mark := setup(t)
		if err := a.AddGap(archive.Gap{Topic: orderTopic, Time: time.Now(), Kind: GapReplayRejected, FromReplayID: mark,
			Reason: "rejected by an earlier run"}); err != nil {
			t.Fatal(err)
		}
		before := len(subscribes(e.srv, orderTopic))
		cfg := e.config(orderTopic)
		cfg.MaxEvents = 5
		if _, err := start(t, cfg, a).wait(t); err != nil {
			t.Fatalf("run: %v", err)
		}
		subs := subscribes(e.srv, orderTopic)[before:]
		if len(subs) != 1 || subs[0].Preset != "EARLIEST" {
			t.Fatalf("subscribes %+v, want one EARLIEST (the stored mark %x was rejected before)", subs, mark)
		}
		if gaps, _ := a.Gaps(); len(gaps) != 1 {
			t.Fatalf("%d gap records, want the one from the earlier run", len(gaps))
		}
		if n := count(a, orderTopic); n != 15 {
			t.Fatalf("archived %d, want 15", n)
		}
	})
	t.Run("fail", func(t *testing.T) {
		e, a, mark := setup(t)
		cfg := e.config(orderTopic)
		cfg.OnInvalidReplay = OnInvalidReplayFail
		_, err := start(t, cfg, a).wait(t)
		if !errors.Is(err, ErrInvalidReplay) || !strings.Contains(err.Error(), hexID(mark)) ||
			!strings.Contains(err.Error(), "--on-invalid-replay earliest") {
			t.Fatalf("run error %v, want ErrInvalidReplay naming %x", err, mark)
		}
		if gaps, _ := a.Gaps(); len(gaps) != 0 {
			t.Fatalf("fail policy wrote gaps %+v", gaps)
		}
		if n := count(a, orderTopic); n != 10 {
			t.Fatalf("archived %d, want 10", n)
		}
	})
}
