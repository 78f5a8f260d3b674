package emulator

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// orderPayload encodes one Order_Event__e.
func orderPayload(t *testing.T, number string) []byte {
	t.Helper()
	js, err := BuiltinSchema("Order_Event__e.avsc")
	if err != nil {
		t.Fatal(err)
	}
	sch, err := ParseSchema(js)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(sch, map[string]any{"CreatedDate": int64(1764000000000), "CreatedById": "0055g00000AbCdEAAV", "Order_Number__c": number, "Amount__c": 12.5})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPublishRPC(t *testing.T) {
	f := newFixture(t, fastConfig())
	const sid = "_CADE3qaegX3ECEW0rlbYA"
	resp, err := f.client.Publish(f.authCtx(t), &pubsubpb.PublishRequest{TopicName: orders, Events: []*pubsubpb.ProducerEvent{
		{SchemaId: sid, Payload: orderPayload(t, "A-1")},
		{Id: "my-key-1", SchemaId: sid, Payload: orderPayload(t, "A-2")},
		{Id: "bad-schema", SchemaId: "nope", Payload: orderPayload(t, "A-3")},
		{SchemaId: sid, Payload: make([]byte, MaxEventSize+1)},
		{Id: strings.Repeat("x", 37), SchemaId: sid, Payload: orderPayload(t, "A-5")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSchemaId() != sid || len(resp.GetRpcId()) != 36 || len(resp.GetResults()) != 5 {
		t.Fatalf("response %v", resp)
	}
	r := resp.GetResults()
	if r[0].GetError() != nil || len(r[0].GetCorrelationKey()) != 36 || len(r[0].GetReplayId()) != 10 {
		t.Errorf("result 0 (no id) = %v, want a system UUID key and a replay id", r[0])
	}
	if r[1].GetError() != nil || r[1].GetCorrelationKey() != "my-key-1" {
		t.Errorf("result 1 (custom id) = %v", r[1])
	}
	if r[2].GetError().GetCode() != pubsubpb.ErrorCode_PUBLISH || r[2].GetCorrelationKey() != "bad-schema" || r[2].GetReplayId() != nil {
		t.Errorf("result 2 (bad schema) = %v", r[2])
	}
	if r[3].GetError() == nil || r[3].GetCorrelationKey() != "" {
		t.Errorf("result 3 (over 1 MB, no id) = %v, want an error and an empty key", r[3])
	}
	if r[4].GetError() == nil {
		t.Errorf("result 4 (37-char id) = %v", r[4])
	}
	evs := f.srv.Events(orders)
	if len(evs) != 2 || evs[1].Event.ID != "my-key-1" || !bytes.Equal(evs[1].ReplayID, r[1].GetReplayId()) {
		t.Errorf("log holds %d events: %+v", len(evs), evs)
	}
	if got := f.srv.Requests(); got[len(got)-1].RPC != RPCPublish || got[len(got)-1].Events != 5 {
		t.Errorf("request log %+v", got[len(got)-1])
	}
}

func TestPublishRPCRequestErrors(t *testing.T) {
	f := newFixture(t, fastConfig())
	ev := []*pubsubpb.ProducerEvent{{SchemaId: "_CADE3qaegX3ECEW0rlbYA", Payload: orderPayload(t, "B")}}
	cases := []struct {
		name      string
		req       *pubsubpb.PublishRequest
		code      codes.Code
		errorCode string
	}{
		{"change event topic", &pubsubpb.PublishRequest{TopicName: accountTopic, Events: ev}, codes.PermissionDenied, CodePublishPermission},
		{"unknown topic", &pubsubpb.PublishRequest{TopicName: "/event/Nope__e", Events: ev}, codes.PermissionDenied, CodeTopicNotFound},
		{"no events", &pubsubpb.PublishRequest{TopicName: orders}, codes.InvalidArgument, CodePublishCountInvalid},
		{"no topic", &pubsubpb.PublishRequest{Events: ev}, codes.InvalidArgument, CodePublishTopicEmpty},
		{"over 4 MB", &pubsubpb.PublishRequest{TopicName: orders, Events: []*pubsubpb.ProducerEvent{
			{Payload: make([]byte, MaxEventSize)}, {Payload: make([]byte, MaxEventSize)}, {Payload: make([]byte, MaxEventSize)},
			{Payload: make([]byte, MaxEventSize)}, {Payload: make([]byte, 10)}}}, codes.Unavailable, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr metadata.MD
			_, err := f.client.Publish(f.authCtx(t), c.req, grpc.Trailer(&tr), grpc.MaxCallSendMsgSize(8<<20))
			wantStatus(t, err, tr, c.code, c.errorCode, RPCPublish)
		})
	}
}

func TestPublishedEventReachesSubscriber(t *testing.T) {
	f := newFixture(t, fastConfig())
	payload := orderPayload(t, "C-9")
	resp, err := f.client.Publish(f.authCtx(t), &pubsubpb.PublishRequest{TopicName: orders, Events: []*pubsubpb.ProducerEvent{
		{Id: "c9", SchemaId: "_CADE3qaegX3ECEW0rlbYA", Payload: payload, Headers: []*pubsubpb.EventHeader{{Key: "k", Value: []byte("v")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 1})
	evs, _ := recvEvents(t, st, 1)
	e := evs[0]
	if e.GetEvent().GetId() != "c9" || !bytes.Equal(e.GetEvent().GetPayload(), payload) || !bytes.Equal(e.GetReplayId(), resp.GetResults()[0].GetReplayId()) ||
		len(e.GetEvent().GetHeaders()) != 1 || string(e.GetEvent().GetHeaders()[0].GetValue()) != "v" {
		t.Errorf("delivered %v", e)
	}
}

func TestPublishStream(t *testing.T) {
	f := newFixture(t, Config{PublishStreamIdle: 300 * time.Millisecond})
	payload := orderPayload(t, "S")
	st, err := f.client.PublishStream(f.authCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st.Send(&pubsubpb.PublishRequest{TopicName: orders, Events: []*pubsubpb.ProducerEvent{
			{Id: string(rune('a' + i)), SchemaId: "_CADE3qaegX3ECEW0rlbYA", Payload: payload}}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range 3 {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(r.GetResults()) != 1 || r.GetResults()[0].GetError() != nil {
			t.Fatalf("response %v", r)
		}
		seen[r.GetResults()[0].GetCorrelationKey()] = true
	}
	if len(seen) != 3 || len(f.srv.Events(orders)) != 3 {
		t.Errorf("one response per request: %v, %d events stored", seen, len(f.srv.Events(orders)))
	}
	// Silence past the window closes the stream.
	_, err = st.Recv()
	wantStatus(t, err, st.Trailer(), codes.DeadlineExceeded, CodePublishSweeper, RPCPublishStream)
}

func TestPublishStreamClientClose(t *testing.T) {
	f := newFixture(t, fastConfig())
	st, err := f.client.PublishStream(f.authCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pubsubpb.PublishRequest{TopicName: orders, Events: []*pubsubpb.ProducerEvent{{SchemaId: "_CADE3qaegX3ECEW0rlbYA", Payload: orderPayload(t, "E")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after CloseSend: %v, want EOF", err)
	}
}
