package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

// richArchive archives Account events across a schema change, plus Order
// events, and returns the archive's path and the two Account schema IDs.
func richArchive(t *testing.T, te *testEmulator) (path, oldSchema, newSchema string) {
	t.Helper()
	before, err := te.srv.Topic(accountTopic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := te.gen.PublishN(accountTopic, 40); err != nil {
		t.Fatal(err)
	}
	newSchema, err = te.gen.EvolveSchema(accountTopic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := te.gen.PublishN(accountTopic, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := te.gen.PublishN(orderTopic, 20); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "rich.db")
	r := runCLI(t, append(te.subscribeArgs(path, accountTopic, orderTopic), "--max-events", "100", "--exit-when-idle", "10s")...)
	if r.code != 0 {
		t.Fatalf("subscribe: exit %d: %s", r.code, r.stderr)
	}
	return path, before.SchemaID, newSchema
}

// query, status, schemas and verify never change the archive: the file's
// bytes and modification time are the same after each.
func TestReadOnlyCommandsLeaveTheFileUnchanged(t *testing.T) {
	te := startEmulator(t)
	path, oldID, newID := richArchive(t, te)
	before := fileBytes(t, path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"query", "--archive", path},
		{"query", "--archive", path, "--format", "json", "--reverse"},
		{"query", "--archive", path, "--format", "csv", "--fields", "replay_id,changeType,Name"},
		{"query", "--archive", path, "--format", "table", "--topic", orderTopic},
		{"query", "--archive", path, "--format", "raw", "--topic", orderTopic},
		{"query", "--archive", path, "--where", "changeType == \"UPDATE\"", "--time-format", "rfc3339"},
		{"query", "--archive", path, "--gaps"},
		{"status", "--archive", path},
		{"status", "--archive", path, "--format", "json"},
		{"schemas", "--archive", path},
		{"schemas", "show", "--archive", path, newID},
		{"schemas", "show", "--archive", path, "--json", oldID},
		{"schemas", "diff", "--archive", path, "--topic", accountTopic},
		{"verify", "--archive", path},
	}
	for _, args := range commands {
		r := runCLI(t, args...)
		if r.code != 0 {
			t.Errorf("%s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		if r.stdout == "" && !strings.Contains(strings.Join(args, " "), "--gaps") {
			t.Errorf("%s printed nothing", strings.Join(args, " "))
		}
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, fileBytes(t, path)) || !after.ModTime().Equal(st.ModTime()) {
		t.Fatal("a read-only command changed the archive")
	}
}

func TestSchemasAndStatusDescribeTheArchive(t *testing.T) {
	te := startEmulator(t)
	path, oldID, newID := richArchive(t, te)

	r := runCLI(t, "schemas", "diff", "--archive", path, "--topic", accountTopic)
	if r.code != 0 || !strings.Contains(r.stdout, oldID+" → "+newID) || !strings.Contains(r.stdout, "1 difference") ||
		!strings.Contains(r.stdout, "+ Loyalty_Tier_1__c [null,string]") {
		t.Errorf("schemas diff: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "schemas", "--archive", path)
	for _, id := range []string{oldID, newID} {
		if !strings.Contains(r.stdout, id) {
			t.Errorf("schemas list does not show %s:\n%s", id, r.stdout)
		}
	}
	r = runCLI(t, "schemas", "show", "--archive", path, "--json", oldID)
	js, err := te.srv.Schema(oldID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(r.stdout) != strings.TrimSpace(js) {
		t.Errorf("schemas show --json does not print the schema exactly as the server returned it")
	}
	r = runCLI(t, "schemas", "show", "--archive", path, "NoSuchSchemaId")
	assertCleanFailure(t, r, exitFailure, "NoSuchSchemaId")

	r = runCLI(t, "status", "--archive", path, "--format", "json")
	var status struct {
		OrgID  string `json:"org_id"`
		Topics []struct {
			Topic   string `json:"topic"`
			Events  int    `json:"events"`
			Mark    string `json:"mark"`
			Schemas []struct {
				SchemaID string `json:"schema_id"`
				Events   int    `json:"events"`
			} `json:"schemas"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	if status.OrgID != te.srv.OrgID() || len(status.Topics) != 2 {
		t.Fatalf("status = %+v", status)
	}
	for _, ts := range status.Topics {
		want := te.srv.Events(ts.Topic)
		if ts.Events != len(want) || ts.Mark != hex.EncodeToString(want[len(want)-1].ReplayID) {
			t.Errorf("%s: %d events, mark %s; want %d, %x", ts.Topic, ts.Events, ts.Mark, len(want), want[len(want)-1].ReplayID)
		}
		sum := 0
		for _, s := range ts.Schemas {
			sum += s.Events
		}
		if sum != ts.Events {
			t.Errorf("%s: schema uses add up to %d, want %d", ts.Topic, sum, ts.Events)
		}
	}
}

// A stored position older than retention: the default policy records a gap
// (topic, time, the rejected position) and restarts from the oldest
// retained event; status and query --gaps show it.
func TestExpiredPositionRecordsAGap(t *testing.T) {
	te := startEmulator(t)
	path := filepath.Join(t.TempDir(), "events.db")
	if _, err := te.gen.PublishN(orderTopic, 10); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, append(te.subscribeArgs(path, orderTopic), "--max-events", "10", "--exit-when-idle", "10s")...)
	if r.code != 0 {
		t.Fatalf("first run: %s", r.stderr)
	}
	stale := te.srv.Events(orderTopic)[9].ReplayID

	te.srv.Purge(time.Now().Add(time.Hour)) // everything published so far ages out
	if _, err := te.gen.PublishN(orderTopic, 5); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, append(te.subscribeArgs(path, orderTopic), "--max-events", "5", "--exit-when-idle", "10s")...)
	if r.code != 0 {
		t.Fatalf("second run: %s", r.stderr)
	}
	var earliest, customStale int
	for _, req := range te.srv.Requests() {
		if req.RPC == "Subscribe" && req.Preset == "EARLIEST" {
			earliest++
		}
		if req.RPC == "Subscribe" && req.Preset == "CUSTOM" && bytes.Equal(req.ReplayID, stale) {
			customStale++
		}
	}
	if customStale != 1 || earliest != 2 {
		t.Errorf("requests: CUSTOM from the stale position %d time(s), EARLIEST %d time(s); want 1 and 2 (first run, then after the gap)", customStale, earliest)
	}

	arc, err := archive.Open(path, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	gaps, err := arc.Gaps()
	arc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].Topic != orderTopic || !bytes.Equal(gaps[0].FromReplayID, stale) || gaps[0].Time.IsZero() {
		t.Fatalf("gap records = %+v; want one for %s from %x", gaps, orderTopic, stale)
	}
	r = runCLI(t, "status", "--archive", path)
	if !strings.Contains(r.stdout, "GAPS") || !strings.Contains(r.stdout, hex.EncodeToString(stale)) {
		t.Errorf("status does not list the gap:\n%s", r.stdout)
	}
	r = runCLI(t, "query", "--archive", path, "--gaps")
	if r.code != 0 || !strings.Contains(r.stdout, hex.EncodeToString(stale)) {
		t.Errorf("query --gaps: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// 10 + 5 events: the 5 published after the purge are there, once.
	r = runCLI(t, "query", "--archive", path, "--topic", orderTopic, "--fields", "Order_Number__c")
	if n := strings.Count(r.stdout, "\n"); n != 15 {
		t.Errorf("query printed %d events, want 15", n)
	}
}

func TestVerifyReportsDamage(t *testing.T) {
	te := startEmulator(t)
	path, _, _ := richArchive(t, te)
	r := runCLI(t, "verify", "--archive", path)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 100 events in 2 topics") {
		t.Fatalf("verify of a healthy archive: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Damage the header (page type flags) of the page that holds a known event.
	b := fileBytes(t, path)
	id := te.srv.Events(orderTopic)[0].Event.ID
	at := bytes.Index(b, []byte(id))
	if at < 0 {
		t.Fatalf("event %s not found in the file", id)
	}
	page := at - at%os.Getpagesize()
	b[page+8], b[page+9] = 0xff, 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "verify", "--archive", path)
	if r.code == 0 {
		t.Fatalf("verify of a damaged archive exited 0:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, "panic") {
		t.Fatalf("verify panicked:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, "problem") && !strings.Contains(r.stderr, "damaged") {
		t.Errorf("verify does not say what is wrong:\n%s%s", r.stdout, r.stderr)
	}
}
