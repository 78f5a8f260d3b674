package query

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

type sampleFile struct {
	ConsumerEvent struct {
		Event struct {
			ID         string `json:"id"`
			SchemaID   string `json:"schema_id"`
			PayloadHex string `json:"payload_hex"`
		} `json:"event"`
		ReplayIDHex string `json:"replay_id_hex"`
	} `json:"consumer_event"`
	Decoded json.RawMessage `json:"decoded"`
}

func loadSample(tb testing.TB) sampleFile {
	tb.Helper()
	var s sampleFile
	if err := json.Unmarshal([]byte(readTestdata(tb, "AccountChangeEvent-update-2022.json")), &s); err != nil {
		tb.Fatal(err)
	}
	return s
}

func samplePayload(tb testing.TB) []byte {
	tb.Helper()
	b, err := hex.DecodeString(loadSample(tb).ConsumerEvent.Event.PayloadHex)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// parseJSON parses with UseNumber so that longs are compared as their exact digits.
func parseJSON(tb testing.TB, b []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("invalid JSON %s: %v", b, err)
	}
	return v
}

func TestAppendJSONRealSample(t *testing.T) {
	sample := loadSample(t)
	s := mustSchema(t, accountSchemaID, readTestdata(t, "AccountChangeEvent.avsc"))
	d := NewDecoder()
	out, err := d.AppendJSON(nil, s, samplePayload(t))
	if err != nil {
		t.Fatal(err)
	}
	got, want := parseJSON(t, out), parseJSON(t, sample.Decoded)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded sample differs\n got %s\nwant %s", out, sample.Decoded)
	}
	// Schema field order is kept.
	if !bytes.HasPrefix(out, []byte(`{"ChangeEventHeader":{"entityName":"Account","recordIds":["0014H00002LbR7QQAV"],"changeType":"UPDATE"`)) {
		t.Errorf("field order not kept: %.120s", out)
	}
	if i, j := bytes.Index(out, []byte(`"Name"`)), bytes.Index(out, []byte(`"Region__c"`)); i < 0 || j < i {
		t.Errorf("top-level order not kept")
	}
	// The captured bitmap expands as the real client logged it.
	var st recordState
	st.expand(d, s, false)
	if want := []string{"LastModifiedDate", "BillingAddress.Street"}; !reflect.DeepEqual(st.names[slotChanged], want) {
		t.Errorf("changed = %v, want %v", st.names[slotChanged], want)
	}
}

func TestDecodeValuesRealSample(t *testing.T) {
	s := mustSchema(t, accountSchemaID, readTestdata(t, "AccountChangeEvent.avsc"))
	vals, err := NewDecoder().Decode(s, samplePayload(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := vals["ChangeEventHeader"].(map[string]any)
	if h["commitNumber"] != int64(11334298542449) || h["sequenceNumber"] != int64(1) || h["changeType"] != "UPDATE" {
		t.Errorf("header = %v", h)
	}
	if vals["LastModifiedDate"] != int64(1659440165000) {
		t.Errorf("LastModifiedDate = %#v", vals["LastModifiedDate"])
	}
	if got := vals["BillingAddress"].(map[string]any)["Street"]; got != "12 Main Street" {
		t.Errorf("Street = %#v", got)
	}
}

func TestDecodeSkipsUnneededFields(t *testing.T) {
	s := mustSchema(t, accountSchemaID, readTestdata(t, "AccountChangeEvent.avsc"))
	need := make([]bool, len(s.topNames))
	need[22] = true
	vals, err := NewDecoder().Decode(s, samplePayload(t), need)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 1 || vals["LastModifiedDate"] != int64(1659440165000) {
		t.Errorf("vals = %v", vals)
	}
}

func TestCommitNumberExactInJSON(t *testing.T) {
	js := readTestdata(t, "AccountChangeEvent.avsc")
	s := mustSchema(t, accountSchemaID, js)
	ev := gapOverflow()
	ev["ChangeEventHeader"].(map[string]any)["commitNumber"] = bigCommitNumber
	out, err := NewDecoder().AppendJSON(nil, s, marshal(t, js, ev))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"commitNumber":1698100138468892700,`)) {
		t.Errorf("commitNumber not exact: %s", out)
	}
	// Through float64 it would have been ...892672.
	if float64(bigCommitNumber) == 1698100138468892700 && int64(float64(bigCommitNumber)) == bigCommitNumber {
		t.Fatal("test value is representable as float64; pick another")
	}
}

func TestAppendJSONPrimitives(t *testing.T) {
	js := `{"type":"record","name":"P","fields":[
		{"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},
		{"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"by","type":"bytes"},
		{"name":"s","type":"string"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
		{"name":"fx","type":{"type":"fixed","name":"F","size":3}},
		{"name":"m","type":{"type":"map","values":"long"}},
		{"name":"a","type":{"type":"array","items":["null","double"]}},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"CreatedDate","type":"long","doc":"CreatedDate:DateTime"},
		{"name":"Other","type":["null","long"],"doc":"Data:DateTime:00N000"}]}`
	s := mustSchema(t, "p", js)
	payload := marshal(t, js, map[string]any{
		"b": true, "i": int32(-7), "l": int64(math.MinInt64), "f": float32(0.1), "d": 1.5e300,
		"by": []byte{0, 1, 254, 255}, "s": "a\"b\\c\n\u2028<&>\x01é", "e": "B", "fx": [3]byte{1, 2, 3},
		"m": map[string]any{"k": int64(9007199254740993)}, "a": []any{nil, u("double", math.Inf(1)), u("double", math.NaN()), u("double", 1500000.0)},
		"ts": int64(1700000000123), "CreatedDate": int64(1700000000000), "Other": u("long", int64(0)),
	})
	d := NewDecoder()
	out, err := d.AppendJSON(nil, s, payload)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":true,"i":-7,"l":-9223372036854775808,"f":0.1,"d":1.5e+300,"by":"AAH+/w==",` +
		`"s":"a\"b\\c\n\u2028\u003c\u0026\u003e\u0001é","e":"B","fx":"AQID","m":{"k":9007199254740993},` +
		`"a":[null,"Infinity","NaN",1500000],"ts":1700000000123,"CreatedDate":1700000000000,"Other":0}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	d.TimeRFC3339 = true
	out, err = d.AppendJSON(nil, s, payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"ts":"2023-11-14T22:13:20.123Z"`, `"CreatedDate":"2023-11-14T22:13:20.000Z"`, `"Other":"1970-01-01T00:00:00.000Z"`, `"l":-9223372036854775808`} {
		if !strings.Contains(string(out), w) {
			t.Errorf("rfc3339: missing %s in %s", w, out)
		}
	}
	if err := json.Unmarshal(out, new(any)); err != nil {
		t.Errorf("invalid JSON: %v", err)
	}
}

func TestAppendJSONBadPayloads(t *testing.T) {
	js := readTestdata(t, "AccountChangeEvent.avsc")
	s := mustSchema(t, accountSchemaID, js)
	good := samplePayload(t)
	cases := map[string][]byte{
		"empty":           {},
		"truncated":       good[:len(good)/2],
		"trailing":        append(append([]byte{}, good...), 0),
		"huge length":     {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"negative length": {0x01},
		"bad union":       append(marshal(t, js, gapOverflow())[:gapHeaderLen(t, js)], 0x7e),
		"bad enum":        {0x0e, 'A', 'c', 'c', 'o', 'u', 'n', 't', 0x00, 0x7e},
		"long overflow":   bytes.Repeat([]byte{0xff}, 40),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder()
			if _, err := d.AppendJSON(nil, s, p); !errors.Is(err, ErrUndecodable) {
				t.Errorf("AppendJSON err = %v, want ErrUndecodable", err)
			}
			if _, err := d.Decode(s, p, nil); !errors.Is(err, ErrUndecodable) {
				t.Errorf("Decode err = %v, want ErrUndecodable", err)
			}
			// The decoder is usable again after an error.
			if _, err := d.AppendJSON(nil, s, good); err != nil {
				t.Errorf("after error: %v", err)
			}
		})
	}
}

// gapHeaderLen is the length of the ChangeEventHeader of the gapOverflow event (all other fields are one
// null byte each).
func gapHeaderLen(t *testing.T, js string) int {
	s := mustSchema(t, accountSchemaID, js)
	return len(marshal(t, js, gapOverflow())) - (len(s.topNames) - 1)
}

func TestParseSchemaVersionsDoNotCollide(t *testing.T) {
	a := mustSchema(t, "A", readTestdata(t, "AccountChangeEvent.avsc"))
	b := mustSchema(t, "B", accountBJSON(t))
	if len(b.topNames) != len(a.topNames)+1 || b.topNames[len(b.topNames)-1] != "Tier__c" {
		t.Fatalf("schema B fields = %d, A = %d", len(b.topNames), len(a.topNames))
	}
	if _, err := ParseSchema("bad", `{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}`); !errors.Is(err, ErrBadSchema) {
		t.Errorf("bad schema err = %v", err)
	}
}

// FuzzDecodePayload feeds arbitrary bytes to every decoding path with the real AccountChangeEvent schema:
// no panic, no hang, and output that claims success is valid JSON.
func FuzzDecodePayload(f *testing.F) {
	js := readTestdata(f, "AccountChangeEvent.avsc")
	s := mustSchema(f, accountSchemaID, js)
	f.Add(samplePayload(f))
	f.Add(marshal(f, js, gapOverflow()))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, p []byte) {
		out, err := d.AppendJSON(nil, s, p)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON for %x: %s", p, out)
		}
		_, _ = d.Decode(s, p, nil)
		var st recordState
		st.expand(d, s, true)
	})
}

// FuzzJSONString: appendJSONString gives valid JSON that reads back as the input (invalid UTF-8 as U+FFFD).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain ascii text!", "a\"b\\c\n\t\x00\x1f<>&\u2028\u2029é東京", "\xff\xfe ok", "12345678\"12345678<"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, out, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back != want && !utf8Replaced(s, back) {
			t.Fatalf("%q → %s → %q", s, out, back)
		}
		if bytes.ContainsAny(out, "<>&") {
			t.Fatalf("HTML characters not escaped: %s", out)
		}
	})
}

// utf8Replaced accepts encoding/json's rule of one U+FFFD per invalid byte.
func utf8Replaced(in, out string) bool {
	var b strings.Builder
	for i := 0; i < len(in); {
		r, n := utf8.DecodeRuneInString(in[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String() == out
}
