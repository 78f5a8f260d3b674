package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/emulator"
)

const (
	accountTopic = "/data/AccountChangeEvent"
	orderTopic   = "/event/Order_Event__e"
	contactTopic = "/data/ContactChangeEvent"
)

// The first whole path: 1,000 events on two topics archived by a real
// subprocess, 500 more published while it is stopped, and a second run that
// resumes with CUSTOM from the stored mark: exactly 1,500 events, each
// byte-identical, none twice.
func TestSubscribeResumesFromStoredMark(t *testing.T) {
	te := startEmulator(t)
	path := filepath.Join(t.TempDir(), "events.db")
	for _, topic := range []string{accountTopic, orderTopic} {
		if _, err := te.gen.PublishN(topic, 500); err != nil {
			t.Fatal(err)
		}
	}
	args := append(te.subscribeArgs(path, accountTopic, orderTopic), "--max-events", "1000", "--exit-when-idle", "20s")
	if r := runBinary(t, time.Minute, args...); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	if n := assertArchiveMatches(t, path, te.srv, accountTopic, orderTopic); n != 1000 {
		t.Fatalf("after the first run the archive holds %d events, want 1000", n)
	}
	marks := map[string][]byte{}
	arc, err := archive.Open(path, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{accountTopic, orderTopic} {
		if marks[topic], err = arc.HighWaterMark(topic); err != nil || len(marks[topic]) != 10 {
			t.Fatalf("mark of %s = %x, %v; want a 10-byte replay ID", topic, marks[topic], err)
		}
	}
	arc.Close()

	for _, topic := range []string{accountTopic, orderTopic} {
		if _, err := te.gen.PublishN(topic, 250); err != nil {
			t.Fatal(err)
		}
	}
	before := len(te.srv.Requests())
	args = append(te.subscribeArgs(path, accountTopic, orderTopic), "--max-events", "500", "--exit-when-idle", "20s")
	if r := runBinary(t, time.Minute, args...); r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	firsts := map[string]emulator.Request{}
	for _, req := range te.srv.Requests()[before:] {
		if req.RPC == "Subscribe" && req.Preset != "" {
			if _, seen := firsts[req.Topic]; !seen {
				firsts[req.Topic] = req
			}
		}
	}
	for _, topic := range []string{accountTopic, orderTopic} {
		req, ok := firsts[topic]
		if !ok {
			t.Fatalf("second run never subscribed to %s", topic)
		}
		if req.Preset != "CUSTOM" || !bytes.Equal(req.ReplayID, marks[topic]) {
			t.Errorf("%s resumed with %s %x, want CUSTOM %x (the stored mark)", topic, req.Preset, req.ReplayID, marks[topic])
		}
		if req.NumRequested < 1 || req.NumRequested > 100 {
			t.Errorf("%s first request asked for %d events, want 1..100", topic, req.NumRequested)
		}
	}
	if n := assertArchiveMatches(t, path, te.srv, accountTopic, orderTopic); n != 1500 {
		t.Fatalf("archive holds %d events, want 1500", n)
	}
}

// The real event captured from a live org, served byte for byte by the
// emulator, archived and queried: every field equals the recorded decode.
func TestRealSampleArchivedAndQueried(t *testing.T) {
	samplePath := filepath.Join("..", "..", "..", "shared", "pubsub", "samples", "AccountChangeEvent-update-2022.json")
	raw, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatalf("read the sample (shared/ must sit beside the repository): %v", err)
	}
	var sample struct {
		ConsumerEvent struct {
			Event struct {
				ID       string `json:"id"`
				SchemaID string `json:"schema_id"`
			} `json:"event"`
		} `json:"consumer_event"`
		Decoded map[string]any `json:"decoded"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&sample); err != nil {
		t.Fatal(err)
	}

	te := startEmulator(t)
	stored, err := te.srv.LoadSample(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sample.db")
	r := runCLI(t, append(te.subscribeArgs(path, accountTopic), "--max-events", "1", "--exit-when-idle", "10s")...)
	if r.code != 0 {
		t.Fatalf("subscribe: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, "query", "--archive", path, "--topic", accountTopic)
	if r.code != 0 {
		t.Fatalf("query: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("query printed %d lines, want 1:\n%s", len(lines), r.stdout)
	}
	var rec struct {
		Topic         string         `json:"topic"`
		ReplayID      string         `json:"replay_id"`
		EventID       string         `json:"event_id"`
		SchemaID      string         `json:"schema_id"`
		ReceivedAt    string         `json:"received_at"`
		Event         map[string]any `json:"event"`
		ChangedFields []string       `json:"changed_fields"`
		NulledFields  []string       `json:"nulled_fields"`
		DiffFields    []string       `json:"diff_fields"`
	}
	dec = json.NewDecoder(strings.NewReader(lines[0]))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		t.Fatalf("query output is not JSON: %v\n%s", err, lines[0])
	}
	if rec.Topic != accountTopic || rec.ReplayID != hex.EncodeToString(stored.ReplayID) ||
		rec.EventID != sample.ConsumerEvent.Event.ID || rec.SchemaID != sample.ConsumerEvent.Event.SchemaID {
		t.Errorf("envelope = %s %s %s %s, want %s %x %s %s", rec.Topic, rec.ReplayID, rec.EventID, rec.SchemaID,
			accountTopic, stored.ReplayID, sample.ConsumerEvent.Event.ID, sample.ConsumerEvent.Event.SchemaID)
	}
	if _, err := time.Parse(time.RFC3339Nano, rec.ReceivedAt); err != nil {
		t.Errorf("received_at %q: %v", rec.ReceivedAt, err)
	}
	if !reflect.DeepEqual(rec.Event, sample.Decoded) {
		for k, want := range sample.Decoded {
			if got := rec.Event[k]; !reflect.DeepEqual(got, want) {
				t.Errorf("field %s = %#v, want %#v", k, got, want)
			}
		}
		if len(rec.Event) != len(sample.Decoded) {
			t.Errorf("decoded event has %d fields, sample %d", len(rec.Event), len(sample.Decoded))
		}
	}
	if want := []string{"LastModifiedDate", "BillingAddress.Street"}; !reflect.DeepEqual(rec.ChangedFields, want) {
		t.Errorf("changed_fields = %q, want %q", rec.ChangedFields, want)
	}
	if len(rec.NulledFields) != 0 || len(rec.DiffFields) != 0 {
		t.Errorf("nulled/diff = %q/%q, want empty", rec.NulledFields, rec.DiffFields)
	}
	// Field order is the schema's: ChangeEventHeader first, Region__c last.
	if !strings.HasPrefix(lines[0][strings.Index(lines[0], `"event":`):], `"event":{"ChangeEventHeader":`) ||
		!strings.Contains(lines[0], `"Region__c":null}`) {
		t.Errorf("event fields are not in schema order:\n%s", lines[0])
	}
}
