package query

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var _ Source = (*archive.Archive)(nil)

// buildArchive writes the fixture events (seeded account changes, the real captured sample, a GAP_OVERFLOW event,
// order platform events) and a gap record into a real archive file, and reopens it read-only.
func buildArchive(tb testing.TB) *archive.Archive {
	tb.Helper()
	mem := fixtureSource(tb)
	path := filepath.Join(tb.TempDir(), "fixture.sfarchive")
	a, err := archive.Open(path, archive.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	topics, _ := mem.Topics()
	var batches []archive.TopicBatch
	for _, topic := range topics {
		batches = append(batches, archive.TopicBatch{Topic: topic, Events: mem.topics[topic], Schemas: mem.schemas})
	}
	if _, err := a.Append(batches); err != nil {
		tb.Fatal(err)
	}
	if err := a.AddGap(archive.Gap{Topic: "/data/AccountChangeEvent", Time: time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC),
		Kind: "invalid_replay", FromReplayID: replayID(3), Reason: "replay ID expired"}); err != nil {
		tb.Fatal(err)
	}
	if err := a.Close(); err != nil {
		tb.Fatal(err)
	}
	ro, err := archive.Open(path, archive.Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ro.Close() })
	return ro
}

func TestGolden(t *testing.T) {
	a := buildArchive(t)
	acct := []string{"/data/AccountChangeEvent"}
	cases := []struct {
		name string
		opts Options
	}{
		{"all.jsonl", Options{}},
		{"account.json", Options{Topics: acct, Format: FormatJSON, Limit: 3}},
		{"empty.json", Options{Topics: acct, Format: FormatJSON, ChangeTypes: []string{"SNAPSHOT"}}},
		{"account.csv", Options{Topics: acct, Format: FormatCSV}},
		{"fields.csv", Options{Format: FormatCSV, TimeFormat: TimeRFC3339, FlattenCompound: true,
			Fields: []string{"replay_id", "changeType", "commitNumber", "commitTimestamp", "BillingAddress.City", "Name", "changed_fields", "Amount__c"}}},
		{"account.table", Options{Topics: acct, Format: FormatTable, Width: 100}},
		{"orders.table", Options{Topics: []string{"/event/*"}, Format: FormatTable, TimeFormat: TimeRFC3339, Width: 80}},
		{"projected.jsonl", Options{Topics: acct, TimeFormat: TimeRFC3339, FlattenCompound: true, ChangeTypes: []string{"UPDATE"},
			Fields: []string{"changeType", "BillingAddress.City", "LastModifiedDate"}}},
		{"reverse.jsonl", Options{Reverse: true, Limit: 4}},
		{"gaps.jsonl", Options{Gaps: true}},
		{"gaps.table", Options{Gaps: true, Format: FormatTable}},
		{"orders.raw", Options{Topics: []string{"/event/Order_Event__e"}, Format: FormatRaw}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := Run(context.Background(), a, tc.opts, &buf); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update after checking):\n%s", path, buf.Bytes())
			}
		})
	}
}

// The raw format is the stored payloads, each behind a uvarint length.
func TestRawFraming(t *testing.T) {
	a := buildArchive(t)
	var buf bytes.Buffer
	if _, err := Run(context.Background(), a, Options{Topics: []string{"/data/AccountChangeEvent"}, Format: FormatRaw,
		AfterReplayID: replayID(6), Limit: 1}, &buf); err != nil {
		t.Fatal(err)
	}
	want := samplePayload(t)
	if buf.Len() != 2+len(want) || buf.Bytes()[0] != 0xfa || buf.Bytes()[1] != 0x01 || !bytes.Equal(buf.Bytes()[2:], want) {
		t.Errorf("raw = %x", buf.Bytes())
	}
}

// csv columns cover every schema version of the selected topics (case 3: B adds Tier__c), read from the
// archive's schema-use records before the scan; a query leaves the file byte-for-byte unchanged.
func TestCSVColumnsCoverSchemaVersionsAndFileUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aba.sfarchive")
	w, err := archive.Open(path, archive.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a, b := readTestdata(t, "AccountChangeEvent.avsc"), accountBJSON(t)
	m := newMemSource()
	for _, id := range []string{accountSchemaID, accountBSchemaID, accountSchemaID} {
		ev := gapOverflow()
		js := a
		if id == accountBSchemaID {
			js = b
			ev["Tier__c"] = u("string", "Gold")
		}
		m.add("/data/AccountChangeEvent", id, marshal(t, js, ev))
	}
	batch := archive.TopicBatch{Topic: "/data/AccountChangeEvent", Events: m.topics["/data/AccountChangeEvent"],
		Schemas: map[string]string{accountSchemaID: a, accountBSchemaID: b}}
	if _, err := w.Append([]archive.TopicBatch{batch}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := archive.Open(path, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Run(context.Background(), ro, Options{Format: FormatCSV}, &buf); err != nil {
		t.Fatal(err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], ",Region__c,Tier__c,changed_fields,") ||
		!strings.Contains(lines[2], ",Gold,[],") || strings.Contains(lines[1], "Gold") {
		t.Errorf("csv =\n%s", buf.String())
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("query modified the archive file")
	}
}
