package subscriber

import (
	"bytes"
	"testing"
	"time"
)

// Issue 2: 1,000 events on two topics archived, stop, 500 more, run again →
// resume with CUSTOM from the stored mark; exactly 1,500 stored, byte-identical.
func TestArchiveStopResume(t *testing.T) {
	e := newTestEnv(t, emulatorConfig())
	e.publish(orderTopic, 500, 1024)
	e.publish(secondTopic, 500, 1024)

	a := e.open()
	cfg := e.config(orderTopic, secondTopic)
	cfg.MaxEvents = 1000
	sum, err := start(t, cfg, a).wait(t)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if sum.Reason != ReasonMaxEvents || sum.Stored != 1000 || sum.Duplicates != 0 {
		t.Fatalf("first run summary: %+v", sum)
	}
	marks := map[string][]byte{}
	for _, topic := range cfg.Topics {
		sameAsEmulator(t, a, e.srv, topic)
		m, err := a.HighWaterMark(topic)
		if err != nil || len(m) != 10 {
			t.Fatalf("mark of %s: %x, %v", topic, m, err)
		}
		evs := e.srv.Events(topic)
		if !bytes.Equal(m, evs[len(evs)-1].ReplayID) {
			t.Fatalf("mark of %s is %x, want the last event's %x", topic, m, evs[len(evs)-1].ReplayID)
		}
		marks[topic] = m
	}
	before := len(e.srv.Requests())

	e.publish(orderTopic, 250, 1024)
	e.publish(secondTopic, 250, 1024)
	cfg.MaxEvents = 500
	sum, err = start(t, cfg, a).wait(t)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if sum.Reason != ReasonMaxEvents || sum.Stored != 500 || sum.Duplicates != 0 {
		t.Fatalf("second run summary: %+v", sum)
	}
	total := 0
	for _, topic := range cfg.Topics {
		sameAsEmulator(t, a, e.srv, topic)
		total += count(a, topic)
		var first []string
		for _, r := range e.srv.Requests()[before:] {
			if r.Topic == topic && r.Preset != "" {
				first = append(first, r.Preset+" "+hexID(r.ReplayID))
			}
		}
		want := "CUSTOM " + hexID(marks[topic])
		if len(first) != 1 || first[0] != want {
			t.Fatalf("%s: second run subscribed with %v, want [%s]", topic, first, want)
		}
	}
	if total != 1500 {
		t.Fatalf("archive holds %d events, want 1500", total)
	}
	// Every schema used is stored, fetched once per schema ID.
	fetched := map[string]int{}
	for _, r := range e.srv.Requests() {
		if r.RPC == "GetSchema" {
			fetched[r.SchemaID]++
		}
	}
	for _, topic := range cfg.Topics {
		id := mustTopic(t, e.srv, topic).SchemaID
		if ok, err := a.HasSchema(id); !ok || err != nil {
			t.Fatalf("schema %s of %s not stored: %v", id, topic, err)
		}
		if fetched[id] != 1 {
			t.Fatalf("GetSchema %s called %d times, want 1", id, fetched[id])
		}
	}
}

// ExitWhenIdle ends a catch-up run once the backlog is drained: Run returns
// nil with ReasonIdle after the idle period, having archived the backlog.
func TestExitWhenIdle(t *testing.T) {
	e := newTestEnv(t, emulatorConfig())
	a := e.open()
	cfg := e.config(orderTopic)
	cfg.ExitWhenIdle = 200 * time.Millisecond
	began := time.Now()
	sum, err := start(t, cfg, a).wait(t)
	if err != nil || sum.Reason != ReasonIdle || sum.Stored != 0 {
		t.Fatalf("empty topic: %+v, %v", sum, err)
	}
	if took := time.Since(began); took < cfg.ExitWhenIdle {
		t.Fatalf("stopped after %s, before the idle period", took)
	}
	e.publish(orderTopic, 120, 100)
	cfg.ExitWhenIdle = 2 * time.Second // generous: events flow within it even on a loaded machine
	sum, err = start(t, cfg, a).wait(t)
	if err != nil || sum.Reason != ReasonIdle {
		t.Fatalf("backlog: %+v, %v", sum, err)
	}
	sameAsEmulator(t, a, e.srv, orderTopic)
}
