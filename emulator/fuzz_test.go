package emulator

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

func accountRecord(tb testing.TB) *avro.RecordSchema {
	tb.Helper()
	js, err := BuiltinSchema("AccountChangeEvent.avsc")
	if err != nil {
		tb.Fatal(err)
	}
	sch, err := ParseSchema(js)
	if err != nil {
		tb.Fatal(err)
	}
	return sch.(*avro.RecordSchema)
}

// FuzzExpandBitmap: arbitrary bitmap strings never panic, and whatever expands re-encodes to the same names.
func FuzzExpandBitmap(f *testing.F) {
	rec := accountRecord(f)
	for _, s := range []string{"0x400000|4-0x01", "0x400000|4-0x06", "0x650004E0|4-0x10|7-0x06", "4-0x7FF", "", "0x", "x-0x1", "99-0x01", "-1-0x01", "1-0xZZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var vals []string
		if s != "" {
			vals = strings.Split(s, "|")
		}
		names, err := ExpandBitmap(rec, vals)
		if err != nil {
			return
		}
		bm, err := BuildBitmap(rec, names)
		if err != nil {
			t.Fatalf("names %v from %q do not re-encode: %v", names, s, err)
		}
		again, err := ExpandBitmap(rec, bm)
		if err != nil || !reflect.DeepEqual(dedupe(again), dedupe(names)) {
			t.Fatalf("%q → %v → %v → %v (%v)", s, names, bm, again, err)
		}
	})
}

func dedupe(list []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range list {
		m[s] = true
	}
	return m
}

// FuzzDecodeReplayID: any bytes either decode to a counter that re-encodes to the same ID or are rejected.
func FuzzDecodeReplayID(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0x10, 0xDB, 0x4D, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 1, 4, 0xB6, 0x74})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := DecodeReplayID(b)
		if !ok {
			return
		}
		if enc := EncodeReplayID(n); string(enc[:len(b)]) != string(b) {
			t.Fatalf("%x decodes to %d which encodes as %x", b, n, enc)
		}
	})
}

// FuzzPublishSample: arbitrary sample files never panic.
func FuzzPublishSample(f *testing.F) {
	srv, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"topic_name":"/data/AccountChangeEvent","consumer_event":{"event":{"id":"x","schema_id":"abc","payload_hex":"00"}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = srv.PublishSample(b)
	})
}
