package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

func TestDescribeSchema(t *testing.T) {
	info, err := DescribeSchema(accountSchemaID, readTestdata(t, "AccountChangeEvent.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "com.sforce.eventbus.AccountChangeEvent" || !info.ChangeEvent {
		t.Errorf("info = %+v", info)
	}
	byName := map[string]SchemaField{}
	for _, f := range info.Fields {
		byName[f.Name] = f
	}
	for name, want := range map[string]SchemaField{
		"ChangeEventHeader.changeType": {Index: 2, Type: "enum ChangeType{CREATE,UPDATE,DELETE,UNDELETE,GAP_CREATE,GAP_UPDATE,GAP_DELETE,GAP_UNDELETE,GAP_OVERFLOW,SNAPSHOT}"},
		"BillingAddress":               {Index: 4, Type: "[null,record Address]"},
		"BillingAddress.City":          {Index: 1, Type: "[null,string]"},
		"ShippingAddress.Street":       {Index: 0, Type: "[null,string]"},
		"Name":                         {Index: 1, Type: "[null,string,record Switchable_PersonName]"},
		"LastModifiedDate":             {Index: 22, Type: "[null,long]"},
		"ChangeEventHeader.recordIds":  {Index: 1, Type: "array<string>"},
	} {
		got := byName[name]
		if got.Index != want.Index || got.Type != want.Type {
			t.Errorf("%s = %+v, want index %d type %s", name, got, want.Index, want.Type)
		}
	}
	order, err := DescribeSchema(orderSchemaID, readTestdata(t, "Order_Event__e.avsc"))
	if err != nil || order.ChangeEvent || order.Fields[0].Doc != "CreatedDate:DateTime" {
		t.Errorf("order = %+v, %v", order, err)
	}
}

func TestDiffSchemas(t *testing.T) {
	a := readTestdata(t, "AccountChangeEvent.avsc")
	b := accountBJSON(t)
	changes, err := DiffSchemas(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []FieldChange{{Field: "Tier__c", Change: "added", New: "[null,string]"}}; !reflect.DeepEqual(changes, want) {
		t.Errorf("A→B = %+v", changes)
	}
	// Remove a field (moving the later ones) and retype another.
	c := editFields(t, a, func(fields []any) []any {
		var out []any
		for _, f := range fields {
			m := f.(map[string]any)
			switch m["name"] {
			case "Type":
				continue
			case "AnnualRevenue":
				m["type"] = []any{"null", "string"}
			}
			out = append(out, m)
		}
		return out
	})
	changes, err = DiffSchemas(a, c)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, ch := range changes {
		got[ch.String()] = true
	}
	for _, w := range []string{"- Type [null,string]", "~ AnnualRevenue type changed: [null,double] → [null,string]", "~ ParentId moved: 3 → 2", "~ Region__c moved: 45 → 44"} {
		if !got[w] {
			t.Errorf("missing %q in %v", w, changes)
		}
	}
	if _, err := DiffSchemas("{", a); !errors.Is(err, ErrBadSchema) {
		t.Errorf("bad old schema: %v", err)
	}
}

// editFields rewrites the top-level field list of a schema.
func editFields(t *testing.T, js string, edit func([]any) []any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	m["fields"] = edit(m["fields"].([]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseReplayID(t *testing.T) {
	for in, want := range map[string]string{
		"000000000104b674":     "000000000104b674",
		"0x000000000104B674":   "000000000104b674",
		"00000000000000010000": "00000000000000010000",
		"AAAAAAEEtnQ=":         "000000000104b674",
		"AAAAAAEEtnQ":          "000000000104b674",
		"AAAAAAAAAAEAAA==":     "00000000000000010000",
		"_________-8":          "ffffffffffffffef", // URL-alphabet base64
	} {
		got, err := ParseReplayID(in)
		if err != nil || fmt.Sprintf("%x", got) != want {
			t.Errorf("ParseReplayID(%q) = %x, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "-2", "12907414", "17086068", "not a replay id!", "zz", "ff", "0xff", "_-8",
		"00000000000001", strings.Repeat("00", 33)} {
		if _, err := ParseReplayID(bad); !errors.Is(err, ErrBadOption) {
			t.Errorf("ParseReplayID(%q) err = %v", bad, err)
		}
	}
}

func TestParseTimeBound(t *testing.T) {
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2024-03-01T10:00:00Z":      time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC),
		"2024-03-01T10:00:00+02:00": time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC),
		"2024-03-01":                time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		"36h":                       now.Add(-36 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
	} {
		got, err := ParseTimeBound(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTimeBound(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2024-13-01", "5x"} {
		if _, err := ParseTimeBound(bad, now); !errors.Is(err, ErrBadOption) {
			t.Errorf("ParseTimeBound(%q) err = %v", bad, err)
		}
	}
}

func TestVerifyPayloads(t *testing.T) {
	a := buildArchive(t)
	var problems []*EventError
	st, err := VerifyPayloads(context.Background(), a, func(e *EventError) { problems = append(problems, e) })
	if err != nil || st.Events != 11 || st.Topics != 2 || st.Problems != 0 || len(problems) != 0 {
		t.Fatalf("healthy archive: %+v, %v, %v", st, err, problems)
	}

	m := fixtureSource(t)
	acct := readTestdata(t, "AccountChangeEvent.avsc")
	bad := gapOverflow()
	bad["ChangeEventHeader"].(map[string]any)["changedFields"] = []any{"0x400000000000000"}
	m.add("/data/AccountChangeEvent", accountSchemaID, marshal(t, acct, bad))          // 9: bitmap beyond fields
	m.add("/data/AccountChangeEvent", "", []byte{0})                                   // 10: blank schema
	m.add("/data/AccountChangeEvent", "gone", []byte{0})                               // 11: missing schema
	m.add("/data/AccountChangeEvent", accountSchemaID, append(samplePayload(t), 0, 0)) // 12: trailing bytes
	m.add("/data/AccountChangeEvent", accountSchemaID, samplePayload(t))               // 13: damaged envelope
	m.badEnv[fmt.Sprintf("%x", replayID(13))] = true
	problems = nil
	st, err = VerifyPayloads(context.Background(), m, func(e *EventError) { problems = append(problems, e) })
	if err != nil || st.Problems != 5 || len(problems) != 5 {
		t.Fatalf("bad archive: %+v, %v, %v", st, err, problems)
	}
	var envErr *archive.EnvelopeError
	for i, want := range []error{ErrBitmap, ErrBlankSchemaID, archive.ErrSchemaNotFound, ErrUndecodable, nil} {
		p := problems[i]
		if p.Topic != "/data/AccountChangeEvent" || !bytes.Equal(p.ReplayID, replayID(uint64(9+i))) {
			t.Errorf("problem %d names %s %x", i, p.Topic, p.ReplayID)
		}
		if want == nil && !errors.As(p, &envErr) || want != nil && !errors.Is(p, want) {
			t.Errorf("problem %d = %v, want %v", i, p, want)
		}
	}
	if !strings.Contains(problems[3].Error(), "trailing bytes") {
		t.Errorf("trailing bytes problem = %v", problems[3])
	}
}
