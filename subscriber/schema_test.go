package subscriber

import (
	"context"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/emulator"
)

// Case 4: an event with a blank schema ID is archived raw, GetSchema is never
// called with "", and the stream goes on; so are events whose schema the
// server refuses (asked once). Case 3: events of several schemas
// interleaved on one topic: each schema fetched once and stored with the
// events that first use it.
func TestSchemasBlankAndInterleaved(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	const topic = "/data/ChangeEvents"
	ti := mustTopic(t, e.srv, topic)
	if len(ti.SchemaIDs) < 2 {
		t.Fatalf("emulator topic %s has schemas %v; need two", topic, ti.SchemaIDs)
	}
	a0, b0 := ti.SchemaIDs[0], ti.SchemaIDs[1]
	payload := func(i int) []byte { return []byte{byte(i), 0x02, 0x04} } // opaque to the subscriber
	evs := []emulator.Event{
		{SchemaID: a0, Payload: payload(1)},
		{SchemaID: "", Payload: payload(2)},
		{SchemaID: b0, Payload: payload(3)},
		{SchemaID: a0, Payload: payload(4)},
		{SchemaID: "", Payload: payload(5)},
		{SchemaID: b0, Payload: payload(6)},
		{SchemaID: "unknownSchemaId0000000", Payload: payload(7)}, // GetSchema refuses it
		{SchemaID: "unknownSchemaId0000000", Payload: payload(8)},
		{SchemaID: a0, Payload: payload(9)},
	}
	if _, err := e.srv.Publish(topic, evs...); err != nil {
		t.Fatal(err)
	}
	a := e.open()
	cfg := e.config(topic)
	cfg.MaxEvents = len(evs)
	if _, err := start(t, cfg, a).wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	sameAsEmulator(t, a, e.srv, topic)
	calls := map[string]int{}
	for _, r := range e.srv.Requests() {
		if r.RPC == emulator.RPCGetSchema {
			calls[r.SchemaID]++
		}
	}
	if calls[""] != 0 || calls[a0] != 1 || calls[b0] != 1 || calls["unknownSchemaId0000000"] != 1 || len(calls) != 3 {
		t.Fatalf("GetSchema calls %v; want each schema ID once, never blank", calls)
	}
	if ok, _ := a.HasSchema("unknownSchemaId0000000"); ok {
		t.Fatalf("a refused schema was stored")
	}
	for _, id := range []string{a0, b0} {
		js, err := a.Schema(id)
		want, _ := e.srv.Schema(id)
		if err != nil || js != want {
			t.Fatalf("schema %s stored as %d bytes (%v), want the server's %d bytes", id, len(js), err, len(want))
		}
	}
}

// Cancelling ctx stops asking for events, commits what was received and
// returns nil; a later run takes over from the mark with nothing lost or
// duplicated.
func TestCancelCommitsAndResumes(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	a := e.open()
	cfg := e.config(orderTopic, secondTopic)
	cfg.Batch = 10
	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	go func() { // publishes while the run is cancelled
		defer close(pubDone)
		for {
			select {
			case <-stopPub:
				return
			default:
			}
			e.publish(orderTopic, 3, 200)
			e.publish(secondTopic, 2, 200)
			time.Sleep(time.Millisecond)
		}
	}()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var sum Summary
	go func() {
		var err error
		sum, err = Run(ctx, cfg, a)
		done <- err
	}()
	eventually(t, "some events", 10*time.Second, func() bool { return count(a, orderTopic) > 200 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("cancelled run returned %v, want nil", err)
	}
	close(stopPub)
	<-pubDone
	if sum.Reason != ReasonCanceled || sum.Stored == 0 {
		t.Fatalf("summary %+v", sum)
	}
	for _, topic := range cfg.Topics {
		m, _ := a.HighWaterMark(topic)
		got := stored(t, a, topic)
		if len(got) == 0 || hexID(m) != hexID(got[len(got)-1].ReplayID) {
			t.Fatalf("%s: mark %x is not the last committed event", topic, m)
		}
	}
	if rest := len(e.srv.Events(orderTopic)) + len(e.srv.Events(secondTopic)) - count(a, orderTopic) - count(a, secondTopic); rest > 0 {
		cfg.MaxEvents = rest
		if _, err := start(t, cfg, a).wait(t); err != nil {
			t.Fatalf("second run: %v", err)
		}
	}
	for _, topic := range cfg.Topics {
		sameAsEmulator(t, a, e.srv, topic)
	}
}

// Config.From applies to topics without a mark: latest skips the backlog, a
// custom position starts after it; a topic with a mark ignores From.
func TestStartPositions(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 10, 100)
	e.publish(secondTopic, 10, 100)
	a := e.open()
	from := e.srv.Events(secondTopic)[6].ReplayID

	cfg := e.config(orderTopic)
	cfg.From = StartPosition{Kind: StartLatest}
	r := start(t, cfg, a)
	eventually(t, "latest subscribe", 10*time.Second, func() bool { return len(subscribes(e.srv, orderTopic)) == 1 })
	time.Sleep(50 * time.Millisecond) // the server has placed the LATEST cursor
	e.publish(orderTopic, 4, 100)
	eventually(t, "new events", 10*time.Second, func() bool { return count(a, orderTopic) == 4 })
	if _, err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if s := subscribes(e.srv, orderTopic)[0]; s.Preset != "LATEST" {
		t.Fatalf("subscribed with %s, want LATEST", s.Preset)
	}

	cfg = e.config(orderTopic, secondTopic)
	cfg.From = StartPosition{Kind: StartCustom, ReplayID: from}
	r = start(t, cfg, a)
	eventually(t, "both topics subscribed", 10*time.Second, func() bool {
		return len(subscribes(e.srv, orderTopic)) == 2 && count(a, secondTopic) == 3
	})
	if _, err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	subs := subscribes(e.srv, secondTopic)
	if len(subs) != 1 || subs[0].Preset != "CUSTOM" || hexID(subs[0].ReplayID) != hexID(from) || count(a, secondTopic) != 3 {
		t.Fatalf("second topic subscribed %+v and archived %d; want CUSTOM %x and the 3 events after it", subs, count(a, secondTopic), from)
	}
	mark, _ := a.HighWaterMark(orderTopic)
	if s := subscribes(e.srv, orderTopic); s[len(s)-1].Preset != "CUSTOM" || hexID(s[len(s)-1].ReplayID) != hexID(mark) {
		t.Fatalf("topic with a mark subscribed %+v, want CUSTOM from its mark %x", s[len(s)-1], mark)
	}
}
