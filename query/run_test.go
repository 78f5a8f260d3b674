package query

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

func runQuery(t *testing.T, src Source, opts Options) (string, Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Run(context.Background(), src, opts, &buf)
	if err != nil {
		t.Fatalf("Run(%+v): %v", opts, err)
	}
	return buf.String(), res
}

type record struct {
	Topic         string         `json:"topic"`
	ReplayID      string         `json:"replay_id"`
	EventID       string         `json:"event_id"`
	SchemaID      string         `json:"schema_id"`
	ReceivedAt    string         `json:"received_at"`
	Event         map[string]any `json:"event"`
	ChangedFields []string       `json:"changed_fields"`
	NulledFields  []string       `json:"nulled_fields"`
	DiffFields    []string       `json:"diff_fields"`
	BitmapErrors  []string       `json:"bitmap_errors"`
}

func parseLines(t *testing.T, out string) []record {
	t.Helper()
	var recs []record
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r record
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func header(r record) map[string]any {
	h, _ := r.Event["ChangeEventHeader"].(map[string]any)
	return h
}

func TestRunJSONLinesAllTopics(t *testing.T) {
	src := fixtureSource(t)
	out, res := runQuery(t, src, Options{})
	recs := parseLines(t, out)
	if len(recs) != 11 || res.Written != 11 || res.Scanned != 11 {
		t.Fatalf("got %d records, result %+v", len(recs), res)
	}
	if want := []string{"/data/AccountChangeEvent", "/event/Order_Event__e"}; !reflect.DeepEqual(res.Topics, want) {
		t.Errorf("topics = %v", res.Topics)
	}
	first := recs[0]
	if first.Topic != "/data/AccountChangeEvent" || first.ReplayID != "00000000000000010000" || first.EventID != "ev-/data/AccountChangeEvent-1" ||
		first.SchemaID != accountSchemaID || first.ReceivedAt != "2024-03-01T12:00:00.000001Z" {
		t.Errorf("first record envelope = %+v", first)
	}
	// The real sample (7th account event) expands to the fields the real client logged.
	sample := recs[6]
	if !reflect.DeepEqual(sample.ChangedFields, []string{"LastModifiedDate", "BillingAddress.Street"}) {
		t.Errorf("sample changed_fields = %v", sample.ChangedFields)
	}
	// A seeded UPDATE with top-level and nested bits.
	upd := recs[1]
	if !reflect.DeepEqual(upd.ChangedFields, []string{"Industry", "Description", "LastModifiedDate", "BillingAddress.Street", "BillingAddress.City"}) ||
		!reflect.DeepEqual(upd.NulledFields, []string{"TickerSymbol"}) || upd.DiffFields == nil || len(upd.DiffFields) != 0 {
		t.Errorf("update bitmaps = %v / %v / %v", upd.ChangedFields, upd.NulledFields, upd.DiffFields)
	}
	// Platform events have no bitmap keys.
	if !strings.Contains(out, `"topic":"/event/Order_Event__e"`) || strings.Contains(lastLine(out), "changed_fields") {
		t.Errorf("order record: %s", lastLine(out))
	}
	if !strings.Contains(lastLine(out), `"event":{"CreatedDate":1700000002000,"CreatedById":"005xx000001X8Uz","Order_Number__c":"ORD-0002","City__c":"München","Amount__c":1236.5}`) {
		t.Errorf("order event: %s", lastLine(out))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestRunTopicGlobLimitReverse(t *testing.T) {
	src := fixtureSource(t)
	out, res := runQuery(t, src, Options{Topics: []string{"/event/*"}, Limit: 2})
	recs := parseLines(t, out)
	if len(recs) != 2 || recs[0].Topic != "/event/Order_Event__e" || recs[1].ReplayID != "00000000000000020000" || res.Written != 2 {
		t.Fatalf("records = %+v", recs)
	}
	out, _ = runQuery(t, src, Options{Topics: []string{"/data/AccountChangeEvent"}, Reverse: true, Limit: 1})
	recs = parseLines(t, out)
	if len(recs) != 1 || recs[0].ReplayID != "00000000000000080000" {
		t.Fatalf("reverse = %+v", recs)
	}
	for _, tc := range []struct {
		topics []string
		want   error
	}{
		{[]string{"/data/Nope"}, archive.ErrTopicNotFound},
		{[]string{"/nothing/*"}, ErrNoTopicMatch},
		{[]string{"[bad"}, ErrBadOption},
	} {
		_, err := Run(context.Background(), src, Options{Topics: tc.topics}, io.Discard)
		if !errors.Is(err, tc.want) {
			t.Errorf("topics %v: err = %v, want %v", tc.topics, err, tc.want)
		}
	}
}

// Case 9: commitNumber 1698100138468892700 is printed exactly by every format and compared exactly by --where.
func TestCommitNumberExactEverywhere(t *testing.T) {
	src := fixtureSource(t)
	const want = "1698100138468892700"
	sel := Options{Topics: []string{"/data/AccountChangeEvent"}, Limit: 1}
	for _, f := range []Format{FormatJSONL, FormatJSON, FormatCSV, FormatTable} {
		o := sel
		o.Format = f
		if f == FormatTable {
			o.Fields = []string{"replay_id", "commitNumber"}
		}
		out, _ := runQuery(t, src, o)
		if !strings.Contains(out, want) {
			t.Errorf("%s: %s missing from\n%s", f, want, out)
		}
	}
	// csv: the exact value in its own column.
	out, _ := runQuery(t, src, Options{Topics: sel.Topics, Limit: 1, Format: FormatCSV, Fields: []string{"replay_id", "commitNumber"}})
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][1] != want || rows[0][1] != "commitNumber" {
		t.Errorf("csv rows = %q, %v", rows, err)
	}
	// --where compares the int64 exactly: neighbours do not match.
	for expr, n := range map[string]int{
		"commitNumber == 1698100138468892700":                                       1,
		"ChangeEventHeader.commitNumber == 1698100138468892700":                     1,
		"commitNumber == 1698100138468892701":                                       1,
		"commitNumber == 1698100138468892699":                                       0,
		"commitNumber > 1698100138468892700":                                        5,
		"commitNumber >= 1698100138468892700 && commitNumber < 1698100138468892702": 2,
	} {
		out, res := runQuery(t, src, Options{Where: expr})
		if got := len(parseLines(t, out)); got != n {
			t.Errorf("--where %s: %d records, want %d (result %+v)", expr, got, n, res)
		}
	}
}

func TestWhereFilters(t *testing.T) {
	src := fixtureSource(t)
	for _, tc := range []struct {
		expr string
		n    int
	}{
		{`changeType == "UPDATE"`, 4},                            // 3 seeded + the real sample
		{`entityName == "Account" && changeType == "CREATE"`, 1}, // header fields at the top level
		{`Industry == "Banking"`, 3},
		{`BillingAddress.Street == "12 Main Street" && commitNumber < 1000000000000000`, 1},
		{`"BillingAddress.Street" in changed_fields`, 4},
		{`Amount__c > 1235`, 2},
		{`Order_Number__c matches "^ORD-000[01]$"`, 2},
		{`LastModifiedDate >= ms("2023-11-14T22:14:00Z")`, 3},
		{`topic == "/event/Order_Event__e" && replay_id endsWith "30000"`, 1},
		{`received_at > date("2024-03-01T12:00:00.000005Z")`, 3},
		{`len(recordIds) == 0`, 1},
		{`AnnualRevenue > 5`, 1}, // null on most events: runtime errors are non-matches
	} {
		out, res := runQuery(t, src, Options{Where: tc.expr})
		if got := len(parseLines(t, out)); got != tc.n {
			t.Errorf("--where %s: %d records, want %d (result %+v)", tc.expr, got, tc.n, res)
		}
	}
	_, res := runQuery(t, src, Options{Where: `NoSuchField == 1 || changeType == "X"`})
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "NoSuchField") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	for _, bad := range []string{`changeType ==`, `1 +`, `"x" + `, `foo(`} {
		_, err := Run(context.Background(), src, Options{Where: bad}, io.Discard)
		if !errors.Is(err, ErrBadExpression) {
			t.Errorf("--where %q: err = %v", bad, err)
		}
	}
}

func TestFieldFilters(t *testing.T) {
	src := fixtureSource(t)
	for _, tc := range []struct {
		name string
		opts Options
		n    int
	}{
		{"change type", Options{ChangeTypes: []string{"UPDATE"}}, 4},
		{"change type glob", Options{ChangeTypes: []string{"GAP_*"}}, 1},
		{"two change types", Options{ChangeTypes: []string{"CREATE", "DELETE"}}, 2},
		{"entity", Options{Entities: []string{"account"}}, 8},
		{"entity other", Options{Entities: []string{"Contact"}}, 0},
		{"record id 18", Options{RecordIDs: []string{"0014H00002LbR7QQAV"}}, 1},
		{"record id 15", Options{RecordIDs: []string{"0014H00002L0000"}}, 1},
		{"changed field dotted", Options{ChangedFields: []string{"BillingAddress.Street"}}, 4},
		{"changed field soql", Options{ChangedFields: []string{"BillingCity"}}, 3},
		{"changed field parent", Options{ChangedFields: []string{"billingaddress"}}, 4},
		{"changed field top", Options{ChangedFields: []string{"Industry"}}, 3},
		{"since", Options{Since: time.UnixMilli(1700000060000)}, 6},
		{"until", Options{Until: time.UnixMilli(1700000001000)}, 3},
		{"since+until", Options{Since: time.UnixMilli(1700000000000), Until: time.UnixMilli(1700000060001)}, 5},
		{"after replay", Options{AfterReplayID: replayID(6)}, 2},
		{"before replay", Options{BeforeReplayID: replayID(2)}, 2},
		{"received since", Options{ReceivedSince: time.Date(2024, 3, 1, 12, 0, 0, 7000, time.UTC)}, 2},
		{"combined", Options{ChangeTypes: []string{"UPDATE"}, ChangedFields: []string{"Industry"}, Where: "BillingAddress.City != nil"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := runQuery(t, src, tc.opts)
			if got := len(parseLines(t, out)); got != tc.n {
				t.Errorf("%d records, want %d:\n%s", got, tc.n, out)
			}
		})
	}
}

// Case 3: events under schema A, then B (one field added), then A again each decode with their own schema.
func TestSchemaInterleavingABA(t *testing.T) {
	m := newMemSource()
	a := readTestdata(t, "AccountChangeEvent.avsc")
	b := accountBJSON(t)
	m.schemas[accountSchemaID], m.schemas[accountBSchemaID] = a, b
	rng := rand.New(rand.NewPCG(3, 4))
	for i, id := range []string{accountSchemaID, accountBSchemaID, accountSchemaID, accountBSchemaID, accountSchemaID} {
		ev := genAccount(rng, i, "UPDATE")
		js := a
		if id == accountBSchemaID {
			js = b
			ev.values["Tier__c"] = u("string", fmt.Sprintf("T%d", i))
		}
		m.add("/data/AccountChangeEvent", id, marshal(t, js, ev.values))
	}
	out, res := runQuery(t, m, Options{})
	recs := parseLines(t, out)
	if len(recs) != 5 || res.Bad != 0 {
		t.Fatalf("records %d, result %+v", len(recs), res)
	}
	for i, r := range recs {
		tier, has := r.Event["Tier__c"]
		if wantB := i%2 == 1; has != wantB || (wantB && tier != fmt.Sprintf("T%d", i)) {
			t.Errorf("event %d (schema %s): Tier__c = %v, present %v", i, r.SchemaID, tier, has)
		}
		if !reflect.DeepEqual(r.ChangedFields, []string{"Industry", "Description", "LastModifiedDate", "BillingAddress.Street", "BillingAddress.City"}) {
			t.Errorf("event %d changed = %v", i, r.ChangedFields)
		}
	}
	// The added field is a column only where it exists; --where on it does not stop A's events.
	out, res = runQuery(t, m, Options{Where: `Tier__c == "T3"`})
	if got := len(parseLines(t, out)); got != 1 || res.Bad != 0 {
		t.Errorf("where on B-only field: %d records, %+v", got, res)
	}
}

// Case 11: a GAP_OVERFLOW event with only entityName decodes and is listed by GAP_* and --gaps.
func TestGapOverflowAndGapsListing(t *testing.T) {
	src := fixtureSource(t)
	src.gaps = []archive.Gap{
		{Seq: 1, Topic: "/data/AccountChangeEvent", Time: time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC), Kind: "invalid_replay",
			FromReplayID: replayID(3), ToReplayID: nil, Reason: "replay ID expired"},
		{Seq: 2, Topic: "/data/Other", Time: time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC), Kind: "invalid_replay"},
	}
	out, _ := runQuery(t, src, Options{ChangeTypes: []string{"GAP_*"}})
	recs := parseLines(t, out)
	if len(recs) != 1 || header(recs[0])["changeType"] != "GAP_OVERFLOW" || header(recs[0])["entityName"] != "Account" ||
		len(recs[0].ChangedFields) != 0 || recs[0].Event["Name"] != nil {
		t.Fatalf("gap events = %s", out)
	}
	out, res := runQuery(t, src, Options{Gaps: true, Topics: []string{"/data/*"}})
	want := `{"source":"archive","topic":"/data/AccountChangeEvent","time":"2024-03-02T00:00:00Z","kind":"invalid_replay","from_replay_id":"00000000000000030000","reason":"replay ID expired"}
{"source":"event","topic":"/data/AccountChangeEvent","time":"2023-11-14T22:15:00.000Z","kind":"GAP_OVERFLOW","replay_id":"00000000000000080000","entity":"Account"}
`
	if out != want || res.Written != 2 {
		t.Errorf("gaps =\n%s\nwant\n%s", out, want)
	}
	out, _ = runQuery(t, src, Options{Gaps: true, Format: FormatCSV})
	if !strings.HasPrefix(out, "source,topic,time,kind,replay_id,from_replay_id,to_replay_id,entity,record_ids,reason\narchive,/data/AccountChangeEvent,") {
		t.Errorf("gaps csv =\n%s", out)
	}
}

// Case 4 and damaged data: without SkipBad the first bad event stops the run naming topic and replay ID;
// with it, bad events are reported and the rest is written.
func TestBadEvents(t *testing.T) {
	src := fixtureSource(t)
	src.add("/data/AccountChangeEvent", "", []byte{1, 2, 3})                     // blank schema ID (replay 9)
	src.add("/data/AccountChangeEvent", "unknownSchema", []byte{1, 2, 3})        // missing schema (10)
	src.add("/data/AccountChangeEvent", accountSchemaID, samplePayload(t)[:100]) // truncated payload (11)
	src.add("/data/AccountChangeEvent", accountSchemaID, samplePayload(t))       // fine (12)
	src.badEnv[fmt.Sprintf("%x", replayID(12))] = true                           // damaged envelope

	for _, tc := range []struct {
		after  uint64
		target error
		replay string
	}{
		{8, ErrBlankSchemaID, "00000000000000090000"},
		{9, archive.ErrSchemaNotFound, "000000000000000a0000"},
		{10, ErrUndecodable, "000000000000000b0000"},
	} {
		var buf bytes.Buffer
		_, err := Run(context.Background(), src, Options{Topics: []string{"/data/AccountChangeEvent"}, AfterReplayID: replayID(tc.after)}, &buf)
		var ee *EventError
		if !errors.Is(err, tc.target) || !errors.As(err, &ee) || ee.Topic != "/data/AccountChangeEvent" ||
			!strings.Contains(err.Error(), tc.replay) {
			t.Errorf("after %d: err = %v, want %v naming %s", tc.after, err, tc.target, tc.replay)
		}
	}
	_, err := Run(context.Background(), src, Options{AfterReplayID: replayID(11), Topics: []string{"/data/*"}}, io.Discard)
	var envErr *archive.EnvelopeError
	if !errors.As(err, &envErr) || !strings.Contains(err.Error(), "/data/AccountChangeEvent") {
		t.Errorf("damaged envelope: err = %v", err)
	}

	var reported []error
	out, res := runQuery(t, src, Options{SkipBad: true, OnBad: func(err error) { reported = append(reported, err) }})
	if res.Bad != 4 || len(reported) != 4 || res.Written != 11 || len(parseLines(t, out)) != 11 {
		t.Errorf("skip-bad: result %+v, reported %v", res, reported)
	}
}

type epipeWriter struct{ n int }

func (w *epipeWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, &os.PathError{Op: "write", Path: "|1", Err: syscall.EPIPE}
}

func TestClosedPipeEndsQuietly(t *testing.T) {
	src := fixtureSource(t)
	for i := range 2000 {
		src.add("/data/Many", orderSchemaID, marshal(t, readTestdata(t, "Order_Event__e.avsc"), map[string]any{
			"CreatedDate": int64(i), "CreatedById": strings.Repeat("x", 100)}))
	}
	w := &epipeWriter{}
	_, err := Run(context.Background(), src, Options{}, w)
	if !errors.Is(err, ErrOutputClosed) {
		t.Fatalf("err = %v, want ErrOutputClosed", err)
	}
	if w.n != 1 {
		t.Errorf("kept writing after EPIPE: %d writes", w.n)
	}
}

func TestContextCancelStops(t *testing.T) {
	src := fixtureSource(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, src, Options{}, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	src := fixtureSource(t)
	for _, o := range []Options{
		{Format: "xml"}, {TimeFormat: "unix"}, {Limit: -1}, {ChangeTypes: []string{"[x"}},
		{Since: time.Unix(10, 0), Until: time.Unix(5, 0)}, {Gaps: true, Format: FormatRaw},
		{Format: FormatRaw, Fields: []string{"Name"}}, {Fields: []string{"a..b"}},
	} {
		if _, err := Run(context.Background(), src, o, io.Discard); !errors.Is(err, ErrBadOption) {
			t.Errorf("%+v: err = %v, want ErrBadOption", o, err)
		}
	}
}

// The examples in the package documentation compile and run.
func TestWhereDocExamples(t *testing.T) {
	src := fixtureSource(t)
	for expr, n := range map[string]int{
		`commitNumber == 1698100138468892700`:                                              1,
		`changeType == "UPDATE" && "Industry" in changed_fields`:                           3,
		`BillingAddress.City == "Paris" || BillingAddress.Country in ["FR", "France"]`:     -1,
		`Amount__c >= 1000 && Order_Number__c startsWith "ORD-"`:                           3,
		`LastModifiedDate >= ms("2024-03-01") && commitUser == "005xx000001X8Uz"`:          0,
		`any(recordIds, # startsWith "001") && received_at > date("2024-03-01T00:00:00Z")`: 7,
	} {
		out, res := runQuery(t, src, Options{Where: expr})
		if got := len(parseLines(t, out)); n >= 0 && got != n {
			t.Errorf("--where %s: %d records, want %d (%+v)", expr, got, n, res)
		}
	}
}

func TestWhereWarnings(t *testing.T) {
	src := fixtureSource(t)
	_, res := runQuery(t, src, Options{Where: `let x = 1; received_at > date("2024-03-01T00:00:00Z") && ms("2024-03-01") > 0 && len(recordIds) >= 0 && any(recordIds, # != "") && x == 1`})
	for _, w := range res.Warnings {
		if strings.Contains(w, "no scanned event has") {
			t.Errorf("builtins or extras taken for unknown fields: %s", w)
		}
	}
}

func TestWhereHelpExamplesCompile(t *testing.T) {
	n := 0
	for _, line := range strings.Split(WhereHelp, "\n") {
		if ex, ok := strings.CutPrefix(line, "  "); ok {
			n++
			if _, err := compileWhere(ex); err != nil {
				t.Errorf("%s: %v", ex, err)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d examples in WhereHelp", n)
	}
}
