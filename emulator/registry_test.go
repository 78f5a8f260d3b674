package emulator

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

func TestReplayIDCodec(t *testing.T) {
	id := EncodeReplayID(0x10DB4D)
	if want := []byte{0, 0, 0, 0, 0, 0x10, 0xDB, 0x4D, 0, 0}; !bytes.Equal(id, want) {
		t.Fatalf("EncodeReplayID = %x, want %x", id, want)
	}
	cases := []struct {
		in   []byte
		n    uint64
		good bool
	}{
		{id, 0x10DB4D, true},
		{id[:8], 0x10DB4D, true},
		{[]byte{0, 0, 0, 0, 0, 0x10, 0xDB, 0x4D, 0, 1}, 0, false},
		{[]byte{1, 2, 3}, 0, false},
		{nil, 0, false},
		{make([]byte, 12), 0, false},
	}
	for _, c := range cases {
		n, ok := DecodeReplayID(c.in)
		if ok != c.good || n != c.n {
			t.Errorf("DecodeReplayID(%x) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.good)
		}
	}
}

func TestTopicsAndSchemas(t *testing.T) {
	f := newFixture(t, fastConfig())
	want := []string{"/data/AccountChangeEvent", "/data/ChangeEvents", "/data/ContactChangeEvent", "/data/OpportunityChangeEvent",
		"/event/CM_Test_Event_Two__e", "/event/Order_Event__e", "/event/Test_Event__e"}
	if got := f.srv.Topics(); len(got) != len(want) {
		t.Fatalf("Topics() = %v", got)
	}
	for _, name := range want {
		info, err := f.client.GetTopic(f.authCtx(t), &pubsubpb.TopicRequest{TopicName: name})
		if err != nil {
			t.Fatalf("GetTopic %s: %v", name, err)
		}
		if len(info.GetSchemaId()) != 22 || info.GetCanPublish() == isCDC(name) || !info.GetCanSubscribe() || info.GetTopicName() != name {
			t.Errorf("GetTopic %s = %v", name, info)
		}
		si, err := f.client.GetSchema(f.authCtx(t), &pubsubpb.SchemaRequest{SchemaId: info.GetSchemaId()})
		if err != nil {
			t.Fatalf("GetSchema %s: %v", info.GetSchemaId(), err)
		}
		if _, err := ParseSchema(si.GetSchemaJson()); err != nil || si.GetSchemaId() != info.GetSchemaId() || si.GetRpcId() == "" {
			t.Errorf("schema of %s: %v", name, err)
		}
	}
	var tr metadata.MD
	_, err := f.client.GetSchema(f.authCtx(t), &pubsubpb.SchemaRequest{SchemaId: "AAAAAAAAAAAAAAAAAAAAAA"}, grpc.Trailer(&tr))
	wantStatus(t, err, tr, codes.NotFound, CodeSchemaNotFound, RPCGetSchema)
	_, err = f.client.GetTopic(f.authCtx(t), &pubsubpb.TopicRequest{TopicName: "/event/Missing__e"}, grpc.Trailer(&tr))
	wantStatus(t, err, tr, codes.PermissionDenied, CodeTopicNotFound, RPCGetTopic)

	// AddTopic / AddSchema.
	js := `{"type":"record","name":"Ping__e","namespace":"com.sforce.eventbus","fields":[{"name":"CreatedDate","type":"long"},{"name":"CreatedById","type":"string"}]}`
	id, err := f.srv.AddTopic("/event/Ping__e", js)
	if err != nil || id != SchemaFingerprint(js) {
		t.Fatalf("AddTopic = %q, %v", id, err)
	}
	if _, err := f.srv.AddTopic("/event/Ping__e", js); !errors.Is(err, ErrTopicExists) {
		t.Errorf("second AddTopic: %v", err)
	}
	if _, err := f.srv.AddTopic("/event/Bad__e", "{not json"); !errors.Is(err, ErrBadSchema) {
		t.Errorf("bad schema: %v", err)
	}
	if err := f.srv.AddSchema("/event/Ping__e", "explicitID0123456789AB", js); err != nil {
		t.Fatal(err)
	}
	info, _ := f.srv.Topic("/event/Ping__e")
	if info.SchemaID != "explicitID0123456789AB" || len(info.SchemaIDs) != 2 {
		t.Errorf("after AddSchema: %+v", info)
	}
	if err := f.srv.AddSchema("/event/Ping__e", "explicitID0123456789AB", `{"type":"record","name":"X","fields":[]}`); !errors.Is(err, ErrSchemaIDInUse) {
		t.Errorf("reusing a schema ID for other JSON: %v", err)
	}
	if err := f.srv.AddSchema("/event/Nope", "", js); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("AddSchema on unknown topic: %v", err)
	}
	if _, err := f.srv.Publish("/event/Nope"); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("Publish on unknown topic: %v", err)
	}
	if _, err := f.srv.Publish(orders, Event{Payload: make([]byte, MaxEventSize+1)}); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("Publish of 1 MB + 1: %v", err)
	}
	if _, err := f.srv.PublishSample([]byte(`{"topic_name": 3}`)); !errors.Is(err, ErrBadSample) {
		t.Errorf("bad sample: %v", err)
	}
	if _, err := f.srv.LoadSample("testdata/missing.json"); err == nil {
		t.Error("missing sample file accepted")
	}
}

func TestSubscribersCount(t *testing.T) {
	f := newFixture(t, fastConfig())
	ctx, cancel := contextWithCancel(f.authCtx(t))
	f.subscribe(t, ctx, &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
	waitFor(t, func() bool { return f.srv.Subscribers(orders) == 1 })
	cancel()
	waitFor(t, func() bool { return f.srv.Subscribers(orders) == 0 })
}

func TestGeneratorTransactionsAndMultiRecord(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGenerator(11, srv)
	var multi, sameTx bool
	var prevKey string
	var prevSeq int32
	for range 400 {
		gen, err := g.Next("/data/ContactChangeEvent")
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := decode(t, srv, gen.Event.SchemaID, gen.Event.Payload)
		h := header(t, rec)
		if len(gen.Truth.RecordIDs) > 1 {
			multi = true
		}
		key, seq := h["transactionKey"].(string), h["sequenceNumber"].(int)
		if key == prevKey {
			sameTx = true
			if int32(seq) != prevSeq+1 {
				t.Errorf("sequenceNumber %d after %d in one transaction", seq, prevSeq)
			}
		}
		prevKey, prevSeq = key, int32(seq)
		if gen.Truth.ChangeType == "CREATE" {
			if _, ok := rec["Name"].(map[string]any); !ok {
				t.Errorf("Contact Name %#v, want a PersonName record", rec["Name"])
			}
		}
	}
	if !multi || !sameTx {
		t.Errorf("multi-record change seen: %v; multi-event transaction seen: %v", multi, sameTx)
	}
}
