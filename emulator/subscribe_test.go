package emulator

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

const orders = "/event/Order_Event__e"

func TestSubscribeEarliestDeliversEverythingInOrder(t *testing.T) {
	f := newFixture(t, fastConfig())
	ids := publishOrders(t, f.srv, 5)
	ctx := f.authCtx(t)
	st := f.subscribe(t, ctx, &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 3})
	evs, resps := recvEvents(t, st, 3)
	last := resps[len(resps)-1]
	if last.GetPendingNumRequested() != 0 {
		t.Errorf("pending after all credit used = %d, want 0", last.GetPendingNumRequested())
	}
	if !bytes.Equal(last.GetLatestReplayId(), evs[2].GetReplayId()) {
		t.Errorf("latest_replay_id %x, want last event's %x", last.GetLatestReplayId(), evs[2].GetReplayId())
	}
	if len(last.GetRpcId()) != 36 {
		t.Errorf("rpc_id = %q, want a UUID", last.GetRpcId())
	}
	if err := st.Send(&pubsubpb.FetchRequest{NumRequested: 5}); err != nil {
		t.Fatal(err)
	}
	more, resps := recvEvents(t, st, 2)
	if got := resps[len(resps)-1].GetPendingNumRequested(); got != 3 {
		t.Errorf("pending after 2 of 5 = %d, want 3", got)
	}
	evs = append(evs, more...)
	for i, e := range evs {
		if !bytes.Equal(e.GetReplayId(), ids[i]) {
			t.Errorf("event %d replay id %x, want %x", i, e.GetReplayId(), ids[i])
		}
		if len(e.GetReplayId()) != 10 || e.GetReplayId()[8] != 0 || e.GetReplayId()[9] != 0 {
			t.Errorf("replay id %x is not 8 bytes + 00 00", e.GetReplayId())
		}
		if e.GetEvent().GetSchemaId() != "_CADE3qaegX3ECEW0rlbYA" || len(e.GetEvent().GetPayload()) == 0 {
			t.Errorf("event %d: schema %q, %d payload bytes", i, e.GetEvent().GetSchemaId(), len(e.GetEvent().GetPayload()))
		}
	}
	stored := f.srv.Events(orders)
	for i := range stored {
		if !bytes.Equal(stored[i].Event.Payload, evs[i].GetEvent().GetPayload()) || stored[i].Event.ID != evs[i].GetEvent().GetId() {
			t.Errorf("event %d differs from the server's log", i)
		}
	}
}

func TestSubscribeLatestSkipsBacklog(t *testing.T) {
	f := newFixture(t, fastConfig())
	publishOrders(t, f.srv, 3)
	ctx := f.authCtx(t)
	st := f.subscribe(t, ctx, &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 10})
	waitFor(t, func() bool { return f.srv.Subscribers(orders) == 1 })
	newIDs := publishOrders(t, f.srv, 2)
	evs, _ := recvEvents(t, st, 2)
	for i := range evs {
		if !bytes.Equal(evs[i].GetReplayId(), newIDs[i]) {
			t.Errorf("LATEST delivered %x, want only new events (%x)", evs[i].GetReplayId(), newIDs[i])
		}
	}
}

func TestSubscribeCustomStartsAfterID(t *testing.T) {
	for _, width := range []int{10, 8} {
		f := newFixture(t, fastConfig())
		ids := publishOrders(t, f.srv, 4)
		from := ids[1][:width]
		st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_CUSTOM, ReplayId: from, NumRequested: 10})
		evs, _ := recvEvents(t, st, 2)
		if !bytes.Equal(evs[0].GetReplayId(), ids[2]) || !bytes.Equal(evs[1].GetReplayId(), ids[3]) {
			t.Errorf("%d-byte CUSTOM from %x delivered %x, %x; want %x, %x", width, from, evs[0].GetReplayId(), evs[1].GetReplayId(), ids[2], ids[3])
		}
	}
}

func TestSubscribePresetOnlyOnFirstRequest(t *testing.T) {
	f := newFixture(t, fastConfig())
	ids := publishOrders(t, f.srv, 3)
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 1})
	recvEvents(t, st, 1)
	// A later request asking for CUSTOM from the last event is only credit.
	if err := st.Send(&pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_CUSTOM, ReplayId: ids[2], NumRequested: 1}); err != nil {
		t.Fatal(err)
	}
	evs, _ := recvEvents(t, st, 1)
	if !bytes.Equal(evs[0].GetReplayId(), ids[1]) {
		t.Errorf("second event %x, want %x (later presets ignored)", evs[0].GetReplayId(), ids[1])
	}
}

func TestSubscribeCreditAddsUpCappedAt100(t *testing.T) {
	f := newFixture(t, fastConfig())
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 60})
	if err := st.Send(&pubsubpb.FetchRequest{NumRequested: 70}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(f.srv.Requests()) == 2 })
	publishOrders(t, f.srv, 150)
	evs, resps := recvEvents(t, st, 100)
	if len(evs) != 100 {
		t.Fatalf("got %d events for 60+70 credit, want exactly 100 (the cap)", len(evs))
	}
	if p := resps[len(resps)-1].GetPendingNumRequested(); p != 0 {
		t.Errorf("pending after 100 events = %d, want 0", p)
	}
	for _, r := range resps {
		if r.GetPendingNumRequested() > MaxCredit {
			t.Errorf("pending_num_requested %d > 100", r.GetPendingNumRequested())
		}
	}
	if err := st.Send(&pubsubpb.FetchRequest{NumRequested: 1000}); err != nil {
		t.Fatal(err)
	}
	more, resps := recvEvents(t, st, 50)
	if len(more) != 50 || resps[len(resps)-1].GetPendingNumRequested() != 50 {
		t.Errorf("after asking 1000: %d events, pending %d; want 50 and 50 (credit capped at 100)", len(more), resps[len(resps)-1].GetPendingNumRequested())
	}
}

func TestSubscribeRecordsRequests(t *testing.T) {
	f := newFixture(t, fastConfig())
	ids := publishOrders(t, f.srv, 2)
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_CUSTOM, ReplayId: ids[0], NumRequested: 7})
	recvEvents(t, st, 1)
	_ = st.Send(&pubsubpb.FetchRequest{NumRequested: 3})
	waitFor(t, func() bool { return len(f.srv.Requests()) >= 2 })
	reqs := f.srv.Requests()
	if r := reqs[0]; r.RPC != RPCSubscribe || r.Topic != orders || r.Preset != "CUSTOM" || !bytes.Equal(r.ReplayID, ids[0]) || r.NumRequested != 7 {
		t.Errorf("first request logged as %+v", r)
	}
	if r := reqs[1]; r.NumRequested != 3 || r.Preset != "" {
		t.Errorf("second request logged as %+v", r)
	}
}

func TestAuthFailures(t *testing.T) {
	f := newFixture(t, Config{InstanceURL: "https://example.my.salesforce.com"})
	f.srv.AddToken("short", time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	org := f.srv.OrgID()
	cases := map[string][]string{
		"no metadata":      nil,
		"wrong token":      {"accesstoken", "nope", "instanceurl", "https://example.my.salesforce.com", "tenantid", org},
		"expired token":    {"accesstoken", "short", "instanceurl", "https://example.my.salesforce.com", "tenantid", org},
		"no tenant":        {"accesstoken", testToken, "instanceurl", "https://example.my.salesforce.com"},
		"wrong tenant":     {"accesstoken", testToken, "instanceurl", "https://example.my.salesforce.com", "tenantid", "00D000000000002AAA"},
		"no instance":      {"accesstoken", testToken, "tenantid", org},
		"wrong instance":   {"accesstoken", testToken, "instanceurl", "https://other.my.salesforce.com", "tenantid", org},
		"token in a trace": {"x-client-trace-id", testToken, "instanceurl", "https://example.my.salesforce.com", "tenantid", org},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, md...)
			}
			var trailer metadata.MD
			_, err := f.client.GetTopic(ctx, &pubsubpb.TopicRequest{TopicName: orders}, grpcTrailer(&trailer))
			wantStatus(t, err, trailer, codes.Unauthenticated, CodeAuthError, RPCGetTopic)

			st, err := f.client.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(&pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
			_, err = st.Recv()
			wantStatus(t, err, st.Trailer(), codes.Unauthenticated, CodeAuthError, RPCSubscribe)
		})
	}
}

func TestAuthAcceptsJavaKeysAnd15CharOrCoreTenant(t *testing.T) {
	f := newFixture(t, Config{OrgID: "00D5e000003TIrBEAW"})
	for _, tenant := range []string{"00D5e000003TIrB", "core/mydomain/00D5e000003TIrBEAW", "00D5e000003TIrBEAW"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// The Java example's camel-case keys (gRPC sends them lower-cased).
		ctx = metadata.AppendToOutgoingContext(ctx, "accessToken", testToken, "instanceUrl", "https://x.my.salesforce.com", "tenantId", tenant)
		info, err := f.client.GetTopic(ctx, &pubsubpb.TopicRequest{TopicName: orders})
		cancel()
		if err != nil {
			t.Fatalf("GetTopic with tenant %q: %v", tenant, err)
		}
		if info.GetTenantGuid() != "00D5e000003TIrBEAW" || !info.GetCanPublish() || !info.GetCanSubscribe() || info.GetSchemaId() != "_CADE3qaegX3ECEW0rlbYA" {
			t.Errorf("topic info %v", info)
		}
	}
}

func TestSubscribeUnknownTopicPermissionDenied(t *testing.T) {
	f := newFixture(t, fastConfig())
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: "/event/Nope__e", NumRequested: 1})
	_, err := st.Recv()
	wantStatus(t, err, st.Trailer(), codes.PermissionDenied, CodeTopicNotFound, RPCSubscribe)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
