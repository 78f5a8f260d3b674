package emulator

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

func recvManaged(t *testing.T, st pubsubpb.PubSub_ManagedSubscribeClient, n int) []*pubsubpb.ConsumerEvent {
	t.Helper()
	var evs []*pubsubpb.ConsumerEvent
	for len(evs) < n {
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("recv after %d of %d: %v", len(evs), n, err)
		}
		if len(r.GetRpcId()) != 36 {
			t.Errorf("rpc_id %q", r.GetRpcId())
		}
		evs = append(evs, r.GetEvents()...)
	}
	return evs
}

func TestManagedSubscribeCommitAndResume(t *testing.T) {
	f := newFixture(t, fastConfig())
	ids := publishOrders(t, f.srv, 6)
	subID, err := f.srv.AddManagedSubscription(ManagedSubscription{DeveloperName: "Orders_Archive", Topic: orders, DefaultReplay: pubsubpb.ReplayPreset_EARLIEST})
	if err != nil {
		t.Fatal(err)
	}
	if len(subID) != 18 || subID[:3] != "18x" {
		t.Errorf("subscription id %q", subID)
	}
	ctx1, cancel1 := context.WithCancel(f.authCtx(t))
	st, err := f.client.ManagedSubscribe(ctx1)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pubsubpb.ManagedFetchRequest{DeveloperName: "Orders_Archive", NumRequested: 3}); err != nil {
		t.Fatal(err)
	}
	evs := recvManaged(t, st, 3)
	if !bytes.Equal(evs[0].GetReplayId(), ids[0]) {
		t.Errorf("default EARLIEST started at %x", evs[0].GetReplayId())
	}
	// Commit in its own request; the response echoes it.
	if err := st.Send(&pubsubpb.ManagedFetchRequest{CommitReplayIdRequest: &pubsubpb.CommitReplayRequest{CommitRequestId: "c-1", ReplayId: ids[2]}}); err != nil {
		t.Fatal(err)
	}
	r, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	cr := r.GetCommitResponse()
	if cr.GetCommitRequestId() != "c-1" || !bytes.Equal(cr.GetReplayId(), ids[2]) || cr.GetError() != nil || cr.GetProcessTime() == 0 {
		t.Errorf("commit response %v", cr)
	}
	// A bad commit is reported in the response and the stream goes on.
	_ = st.Send(&pubsubpb.ManagedFetchRequest{CommitReplayIdRequest: &pubsubpb.CommitReplayRequest{CommitRequestId: "c-2", ReplayId: []byte{9}}})
	r, err = st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r.GetCommitResponse().GetError().GetCode() != pubsubpb.ErrorCode_COMMIT {
		t.Errorf("bad commit answered %v", r.GetCommitResponse())
	}
	if !bytes.Equal(f.srv.CommittedReplayID("Orders_Archive"), ids[2]) {
		t.Errorf("committed %x", f.srv.CommittedReplayID("Orders_Archive"))
	}

	// A second client is refused while the first holds it.
	st2, err := f.client.ManagedSubscribe(f.authCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = st2.Send(&pubsubpb.ManagedFetchRequest{SubscriptionId: subID, NumRequested: 1})
	_, err = st2.Recv()
	wantStatus(t, err, st2.Trailer(), codes.AlreadyExists, CodeManagedActive, RPCManagedSubscribe)

	cancel1()
	// Once released, a new stream resumes after the committed position (15-char ID form accepted).
	var st3 pubsubpb.PubSub_ManagedSubscribeClient
	waitFor(t, func() bool {
		st3, err = f.client.ManagedSubscribe(f.authCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		_ = st3.Send(&pubsubpb.ManagedFetchRequest{SubscriptionId: subID[:15], NumRequested: 10})
		r, err := st3.Recv()
		if err != nil {
			return false
		}
		if len(r.GetEvents()) > 0 && !bytes.Equal(r.GetEvents()[0].GetReplayId(), ids[3]) {
			t.Errorf("resumed at %x, want %x", r.GetEvents()[0].GetReplayId(), ids[3])
		}
		return true
	})
	var commits int
	if r := f.srv.Requests()[0]; r.RPC != RPCManagedSubscribe || r.Topic != orders || r.Subscription != "Orders_Archive" || r.NumRequested != 3 {
		t.Errorf("first managed request logged as %+v", r)
	}
	for _, req := range f.srv.Requests() {
		if req.RPC == RPCManagedSubscribe && req.CommitReplayID != nil {
			commits++
		}
	}
	if commits != 2 {
		t.Errorf("request log has %d commits, want 2", commits)
	}
}

func TestManagedSubscribeErrors(t *testing.T) {
	f := newFixture(t, Config{ManagedCommitTimeout: 60 * time.Millisecond, Keepalive: time.Minute, IdleClose: time.Minute})
	if _, err := f.srv.AddManagedSubscription(ManagedSubscription{DeveloperName: "Stopped_Sub", Topic: orders, Stopped: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.AddManagedSubscription(ManagedSubscription{DeveloperName: "Live", Topic: orders}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		first     *pubsubpb.ManagedFetchRequest
		code      codes.Code
		errorCode string
	}{
		{"no id", &pubsubpb.ManagedFetchRequest{NumRequested: 1}, codes.InvalidArgument, CodeManagedIDEmpty},
		{"unknown name", &pubsubpb.ManagedFetchRequest{DeveloperName: "Nope", NumRequested: 1}, codes.NotFound, CodeManagedDevNotFound},
		{"unknown id", &pubsubpb.ManagedFetchRequest{SubscriptionId: "18x000000000099AAA", NumRequested: 1}, codes.NotFound, CodeManagedNotFound},
		{"stopped", &pubsubpb.ManagedFetchRequest{DeveloperName: "Stopped_Sub", NumRequested: 1}, codes.FailedPrecondition, CodeManagedStopped},
		{"commit first", &pubsubpb.ManagedFetchRequest{DeveloperName: "Live", NumRequested: 1, CommitReplayIdRequest: &pubsubpb.CommitReplayRequest{}}, codes.InvalidArgument, CodeManagedCommitFirst},
		{"no credit", &pubsubpb.ManagedFetchRequest{DeveloperName: "Live"}, codes.InvalidArgument, CodeManagedEventsBad},
		{"no commit for too long", &pubsubpb.ManagedFetchRequest{DeveloperName: "Live", NumRequested: 1}, codes.DeadlineExceeded, CodeManagedNoCommit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := f.client.ManagedSubscribe(f.authCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(c.first)
			_, err = st.Recv()
			wantStatus(t, err, st.Trailer(), c.code, c.errorCode, RPCManagedSubscribe)
		})
	}
}
