package emulator

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

const accountTopic = "/data/AccountChangeEvent"

var (
	parsedMu sync.Mutex
	parsed   = map[string]avro.Schema{}
)

// decode decodes a payload with the schema registered under id (each schema in its own cache) and unwraps
// hamba's {"branch": value} union form.
func decode(t *testing.T, srv *Server, id string, payload []byte) (map[string]any, *avro.RecordSchema) {
	t.Helper()
	js, err := srv.Schema(id)
	if err != nil {
		t.Fatal(err)
	}
	parsedMu.Lock()
	sch, ok := parsed[js]
	if !ok {
		if sch, err = ParseSchema(js); err != nil {
			parsedMu.Unlock()
			t.Fatal(err)
		}
		parsed[js] = sch
	}
	parsedMu.Unlock()
	var out map[string]any
	if err := avro.Unmarshal(sch, payload, &out); err != nil {
		t.Fatalf("decode with %s: %v", id, err)
	}
	for k, v := range out {
		out[k] = unwrapUnion(v)
	}
	return out, sch.(*avro.RecordSchema)
}

func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, inner := range m {
			if k == "string" || strings.HasPrefix(k, "com.sforce.eventbus.") {
				return inner
			}
		}
	}
	return v
}

func header(t *testing.T, rec map[string]any) map[string]any {
	t.Helper()
	h, ok := rec["ChangeEventHeader"].(map[string]any)
	if !ok {
		t.Fatalf("no ChangeEventHeader in %v", rec)
	}
	return h
}

func strs(v any) []string {
	out := []string{}
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

var hexBitmapRe = regexp.MustCompile(`^0x([0-9A-F]{2})+$`)

func TestGeneratorChangeEventsDecodeAndMatchTruth(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGenerator(42, srv)
	seen := map[string]int{}
	for _, topic := range []string{accountTopic, "/data/ContactChangeEvent", "/data/OpportunityChangeEvent", "/data/ChangeEvents"} {
		gens, err := g.PublishN(topic, 150)
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range gens {
			rec, sch := decode(t, srv, gen.Event.SchemaID, gen.Event.Payload)
			h := header(t, rec)
			seen[gen.Truth.ChangeType]++
			if h["changeType"] != gen.Truth.ChangeType || h["entityName"] != gen.Truth.EntityName {
				t.Fatalf("header %v, truth %+v", h, gen.Truth)
			}
			if !reflect.DeepEqual(strs(h["recordIds"]), gen.Truth.RecordIDs) {
				t.Errorf("recordIds %v, truth %v", h["recordIds"], gen.Truth.RecordIDs)
			}
			if cn := h["commitNumber"].(int64); cn != gen.Truth.CommitNumber || cn < 1_690_000_000_000_000_000 {
				t.Errorf("commitNumber %d, truth %d", cn, gen.Truth.CommitNumber)
			}
			changed := strs(h["changedFields"])
			for i, e := range changed {
				if i == 0 && strings.HasPrefix(e, "0x") && !hexBitmapRe.MatchString(e) {
					t.Errorf("bitmap %q is not upper-case whole bytes", e)
				}
				if strings.HasPrefix(e, "0x00") {
					t.Errorf("bitmap %q is not minimal", e)
				}
			}
			got, err := ExpandBitmap(sch, changed)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, gen.Truth.ChangedFields) {
				t.Errorf("changedFields %v expand to %v, truth %v", changed, got, gen.Truth.ChangedFields)
			}
			switch gen.Truth.ChangeType {
			case "CREATE", "DELETE":
				if len(changed) != 0 {
					t.Errorf("%s with changedFields %v", gen.Truth.ChangeType, changed)
				}
			case "UPDATE":
				if !containsStr(gen.Truth.ChangedFields, "LastModifiedDate") {
					t.Errorf("UPDATE without LastModifiedDate: %v", gen.Truth.ChangedFields)
				}
				// A changed sub-field never sets its parent's top-level bit.
				for _, n := range gen.Truth.ChangedFields {
					if parent, _, ok := strings.Cut(n, "."); ok && containsStr(gen.Truth.ChangedFields, parent) {
						t.Errorf("parent %s set together with %s", parent, n)
					}
				}
				for _, n := range gen.Truth.NulledFields {
					if rec[n] != nil {
						t.Errorf("nulled field %s = %v", n, rec[n])
					}
				}
			}
		}
	}
	for _, ct := range []string{"CREATE", "UPDATE", "DELETE"} {
		if seen[ct] == 0 {
			t.Errorf("no %s events generated", ct)
		}
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestGeneratorIsSeeded(t *testing.T) {
	payloads := func() [][]byte {
		srv, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		g := NewGenerator(7, srv)
		var out [][]byte
		for range 50 {
			gen, err := g.Next(accountTopic)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, gen.Event.Payload)
		}
		return out
	}
	a, b := payloads(), payloads()
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("event %d differs between two generators with the same seed", i)
		}
	}
}

func TestGeneratorPersonAccountNameAndNestedBitmap(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGenerator(3, srv)
	var person, business, nestedName, address bool
	for range 600 {
		gen, err := g.Next(accountTopic)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := decode(t, srv, gen.Event.SchemaID, gen.Event.Payload)
		switch rec["Name"].(type) {
		case map[string]any:
			person = true
		case string:
			business = true
		}
		for _, n := range gen.Truth.ChangedFields {
			nestedName = nestedName || strings.HasPrefix(n, "Name.")
			address = address || strings.HasPrefix(n, "BillingAddress.") || strings.HasPrefix(n, "ShippingAddress.")
		}
	}
	if !person || !business || !nestedName || !address {
		t.Errorf("person=%v business=%v nested Name change=%v address change=%v; want all", person, business, nestedName, address)
	}
}

func TestBuildBitmapWorkedExamples(t *testing.T) {
	js, err := BuiltinSchema("AccountChangeEvent.avsc")
	if err != nil {
		t.Fatal(err)
	}
	sch, err := ParseSchema(js)
	if err != nil {
		t.Fatal(err)
	}
	rec := sch.(*avro.RecordSchema)
	cases := []struct {
		names []string
		want  []string
	}{
		{[]string{"LastModifiedDate", "BillingAddress.Street"}, []string{"0x400000", "4-0x01"}},
		{[]string{"LastModifiedDate", "BillingAddress.City", "BillingAddress.State"}, []string{"0x400000", "4-0x06"}},
		{[]string{"Name"}, []string{"0x02"}},
		{[]string{"Region__c", "Phone"}, []string{"0x200000000040"}},
		{nil, []string{}},
	}
	for _, c := range cases {
		got, err := BuildBitmap(rec, c.names)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("BuildBitmap(%v) = %v, want %v", c.names, got, c.want)
		}
		back, err := ExpandBitmap(rec, got)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.names) > 0 && len(back) != len(c.names) {
			t.Errorf("ExpandBitmap(%v) = %v", got, back)
		}
	}
	if _, err := BuildBitmap(rec, []string{"Phone.Nope"}); err == nil {
		t.Error("sub-field of a scalar accepted")
	}
}

func TestGeneratorGapsLargeBlankAndSchemaChange(t *testing.T) {
	f := newFixture(t, fastConfig())
	g := NewGenerator(9, f.srv)
	overflow, err := g.Change("/data/ChangeEvents", "GAP_OVERFLOW")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := decode(t, f.srv, overflow.Event.SchemaID, overflow.Event.Payload)
	h := header(t, rec)
	if h["changeType"] != "GAP_OVERFLOW" || h["entityName"] == "" || len(h["recordIds"].([]any)) != 0 {
		t.Errorf("GAP_OVERFLOW header %v", h)
	}
	for k, v := range rec {
		if k != "ChangeEventHeader" && v != nil {
			t.Errorf("GAP_OVERFLOW field %s = %v, want null", k, v)
		}
	}
	gap, err := g.Change(accountTopic, "GAP_UPDATE")
	if err != nil {
		t.Fatal(err)
	}
	if len(gap.Truth.RecordIDs) != 1 {
		t.Errorf("GAP_UPDATE record ids %v", gap.Truth.RecordIDs)
	}
	big1, err := g.Large(accountTopic, MaxEventSize)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(big1.Event.Payload); n > MaxEventSize || n < MaxEventSize-16 {
		t.Errorf("large event has %d bytes, want just under %d", n, MaxEventSize)
	}
	big2, err := g.Large(orders, 500_000)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(big2.Event.Payload); n > 500_000 || n < 499_000 {
		t.Errorf("large platform event has %d bytes", n)
	}
	blank, err := g.BlankSchema("/data/ChangeEvents")
	if err != nil {
		t.Fatal(err)
	}
	if blank.Event.SchemaID != "" || blank.Truth.SchemaID == "" {
		t.Errorf("blank schema event: id %q truth %q", blank.Event.SchemaID, blank.Truth.SchemaID)
	}
	old, _ := f.srv.Topic(accountTopic)
	newID, err := g.EvolveSchema(accountTopic)
	if err != nil {
		t.Fatal(err)
	}
	if newID == old.SchemaID || len(newID) != 22 {
		t.Fatalf("new schema id %q (old %q)", newID, old.SchemaID)
	}
	if err := g.Publish(&overflow, &gap, &big1, &big2, &blank); err != nil {
		t.Fatal(err)
	}
	gens, err := g.PublishN(accountTopic, 60)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, gen := range gens {
		used[gen.Event.SchemaID] = true
		rec, _ := decode(t, f.srv, gen.Event.SchemaID, gen.Event.Payload)
		if _, has := rec["Loyalty_Tier_1__c"]; has != (gen.Event.SchemaID == newID) {
			t.Errorf("event under %s has new field: %v", gen.Event.SchemaID, has)
		}
	}
	if !used[newID] || !used[old.SchemaID] {
		t.Errorf("after a schema change the backlog should interleave both versions, used %v", used)
	}
	// Everything, including the 1 MB event and the blank schema ID, reaches a subscriber.
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: accountTopic, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 100})
	evs, _ := recvEvents(t, st, 62)
	if len(evs[1].GetEvent().GetPayload()) != len(big1.Event.Payload) {
		t.Errorf("1 MB event arrived with %d bytes", len(evs[1].GetEvent().GetPayload()))
	}
	st2 := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: "/data/ChangeEvents", ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 2})
	evs2, _ := recvEvents(t, st2, 2)
	if evs2[1].GetEvent().GetSchemaId() != "" {
		t.Errorf("blank schema ID event arrived with %q", evs2[1].GetEvent().GetSchemaId())
	}
}

func TestLoadSampleServesRecordedBytes(t *testing.T) {
	f := newFixture(t, fastConfig())
	raw, err := os.ReadFile("testdata/AccountChangeEvent-update-2022.json")
	if err != nil {
		t.Fatal(err)
	}
	var sample struct {
		ConsumerEvent struct {
			Event struct {
				ID, SchemaID, PayloadHex string
			}
		} `json:"consumer_event"`
		Decoded map[string]any `json:"decoded"`
	}
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	se, err := f.srv.LoadSample("testdata/AccountChangeEvent-update-2022.json")
	if err != nil {
		t.Fatal(err)
	}
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: accountTopic, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 1})
	evs, _ := recvEvents(t, st, 1)
	ev := evs[0]
	if ev.GetEvent().GetId() != "7cb562f2-c7aa-427d-99eb-f2a93b11cdd6" || ev.GetEvent().GetSchemaId() != "vjfSL_rX8hSnqyn0Yla8Zw" || !bytes.Equal(ev.GetReplayId(), se.ReplayID) {
		t.Errorf("sample served as id %q schema %q replay %x", ev.GetEvent().GetId(), ev.GetEvent().GetSchemaId(), ev.GetReplayId())
	}
	if len(ev.GetEvent().GetPayload()) != 250 || !bytes.Equal(ev.GetEvent().GetPayload(), se.Event.Payload) {
		t.Fatalf("payload changed: %d bytes", len(ev.GetEvent().GetPayload()))
	}
	info, err := f.client.GetSchema(f.authCtx(t), &pubsubpb.SchemaRequest{SchemaId: "vjfSL_rX8hSnqyn0Yla8Zw"})
	if err != nil {
		t.Fatal(err)
	}
	sch, err := ParseSchema(info.GetSchemaJson())
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := avro.Unmarshal(sch, ev.GetEvent().GetPayload(), &rec); err != nil {
		t.Fatal(err)
	}
	for k, v := range rec {
		rec[k] = unwrapUnion(v)
	}
	h := header(t, rec)
	if h["commitNumber"].(int64) != 11334298542449 || rec["LastModifiedDate"].(int64) != 1659440165000 {
		t.Errorf("decoded %v", h)
	}
	if street := rec["BillingAddress"].(map[string]any)["Street"]; street != "12 Main Street" {
		t.Errorf("street %v in %#v", street, rec["BillingAddress"])
	}
	names, err := ExpandBitmap(sch.(*avro.RecordSchema), strs(h["changedFields"]))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{"LastModifiedDate", "BillingAddress.Street"}) {
		t.Errorf("changed fields %v", names)
	}
	if len(sample.Decoded) != len(rec) {
		t.Errorf("decoded %d fields, sample lists %d", len(rec), len(sample.Decoded))
	}
	cur, _ := f.srv.Topic(accountTopic)
	if cur.SchemaID == "vjfSL_rX8hSnqyn0Yla8Zw" {
		t.Error("loading a sample changed the topic's current schema")
	}
}

func TestSetClockDatesTheNextEvents(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGenerator(3, srv)
	start := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	g.SetClock(start)
	gen, err := g.Next("/data/AccountChangeEvent")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := decode(t, srv, gen.Event.SchemaID, gen.Event.Payload)
	ts := time.UnixMilli(m["ChangeEventHeader"].(map[string]any)["commitTimestamp"].(int64))
	if ts.Before(start) || ts.After(start.Add(time.Minute)) {
		t.Fatalf("commitTimestamp %s, want just after %s", ts, start)
	}
}
