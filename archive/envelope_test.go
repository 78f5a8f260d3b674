package archive

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	tests := []struct {
		name string
		ev   Event
	}{
		{"typical", testEvent(7, "0Zz1pfNpyWfPUKDGAHHQsQ", at)},
		{"blank schema", Event{EventID: "e1", Payload: []byte{1, 2, 3}, ReceivedAt: at}},
		{"empty payload, no headers", Event{EventID: "e2", SchemaID: "s", ReceivedAt: at, Seq: 9}},
		{"zero receive time", Event{EventID: "e3", SchemaID: "s", Payload: []byte{0}}},
		{"many headers, binary values", Event{EventID: "e4", SchemaID: "s", ReceivedAt: at, Seq: 1 << 62,
			Headers: []Header{{"a", nil}, {"", []byte{0, 0xff}}, {"k", bytes.Repeat([]byte{0x80}, 300)}},
			Payload: bytes.Repeat([]byte{0xfe}, 70000)}},
		{"before 1970", Event{EventID: "e5", SchemaID: "s", ReceivedAt: time.Unix(-5, 3).UTC()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := EncodeEnvelope(&tt.ev)
			got, err := DecodeEnvelope(b)
			if err != nil {
				t.Fatalf("DecodeEnvelope: %v", err)
			}
			want := tt.ev
			want.ReplayID = nil // the key, not part of an ordinary envelope
			if err := sameEvent(got, want); err != nil {
				t.Fatal(err)
			}
			if got.Seq != tt.ev.Seq {
				t.Fatalf("seq %d, want %d", got.Seq, tt.ev.Seq)
			}
			if tt.ev.ReceivedAt.IsZero() != got.ReceivedAt.IsZero() {
				t.Fatalf("zero time not kept: %v", got.ReceivedAt)
			}
		})
	}
}

func TestEnvelopeCollisionCarriesReplayID(t *testing.T) {
	ev := testEvent(3, "s", time.Unix(1, 0))
	b := encodeEnvelope(nil, &ev, ev.ReplayID)
	got, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.ReplayID, ev.ReplayID) {
		t.Fatalf("replay id %x, want %x", got.ReplayID, ev.ReplayID)
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	good := EncodeEnvelope(&Event{EventID: "e", SchemaID: "s", Payload: []byte("abc"), ReceivedAt: time.Unix(9, 0)})
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 0", mutate(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", mutate(func(b []byte) []byte { b[0] = 2; return b })},
		{"unknown flag", mutate(func(b []byte) []byte { b[1] = 0x40; return b })},
		{"blank flag with a schema id", mutate(func(b []byte) []byte { b[1] = flagBlankSchema; return b })},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"huge length", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad varint", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"header count beyond data", []byte{1, 0, 1, 'e', 1, 's', 0x7f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEnvelope(tt.b)
			if !errors.Is(err, ErrEnvelope) {
				t.Fatalf("DecodeEnvelope(%x) = %v, want ErrEnvelope", tt.b, err)
			}
		})
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(EncodeEnvelope(&Event{EventID: "e", SchemaID: "s", Payload: []byte("abc"), ReceivedAt: time.Unix(9, 0)}))
	f.Add(EncodeEnvelope(&Event{}))
	ev := testEvent(1, "", time.Unix(0, 1))
	f.Add(encodeEnvelope(nil, &ev, rid10(1)))
	f.Add([]byte{1, 0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrEnvelope) {
				t.Fatalf("error does not wrap ErrEnvelope: %v", err)
			}
			return
		}
		// Round trip: a valid envelope re-encodes to the same bytes.
		again := encodeEnvelope(nil, &ev, ev.ReplayID)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, input %x", again, b)
		}
	})
}

// FuzzEnvelopeRoundTrip encodes arbitrary field values and checks they decode unchanged.
func FuzzEnvelopeRoundTrip(f *testing.F) {
	f.Add("id", "schema", "k", []byte("v"), []byte("payload"), int64(1700000000000000000), uint64(5))
	f.Add("", "", "", []byte{}, []byte{}, int64(0), uint64(0))
	f.Fuzz(func(t *testing.T, id, schema, hk string, hv, payload []byte, nanos int64, seq uint64) {
		in := Event{EventID: id, SchemaID: schema, Headers: []Header{{hk, hv}}, Payload: payload, Seq: seq}
		if nanos != 0 {
			in.ReceivedAt = time.Unix(0, nanos)
		}
		out, err := DecodeEnvelope(EncodeEnvelope(&in))
		if err != nil {
			t.Fatal(err)
		}
		if err := sameEvent(out, in); err != nil || out.Seq != seq {
			t.Fatalf("round trip: %v (seq %d, want %d)", err, out.Seq, seq)
		}
	})
}
