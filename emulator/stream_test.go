package emulator

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestKeepaliveAdvancesLatestReplayID(t *testing.T) {
	f := newFixture(t, Config{Keepalive: 30 * time.Millisecond, IdleClose: time.Minute})
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 5})
	var prev []byte
	for i := range 3 {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(r.GetEvents()) != 0 || r.GetPendingNumRequested() != 5 || r.GetRpcId() == "" {
			t.Fatalf("keepalive %d: %d events, pending %d, rpc %q", i, len(r.GetEvents()), r.GetPendingNumRequested(), r.GetRpcId())
		}
		if prev != nil && bytes.Compare(r.GetLatestReplayId(), prev) <= 0 {
			t.Errorf("latest_replay_id did not advance: %x after %x", r.GetLatestReplayId(), prev)
		}
		prev = r.GetLatestReplayId()
	}
	// The keepalive's position is a valid CUSTOM start: a restart from it sees only newer events.
	ids := publishOrders(t, f.srv, 2)
	st2 := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_CUSTOM, ReplayId: prev, NumRequested: 5})
	evs, _ := recvEvents(t, st2, 2)
	if !bytes.Equal(evs[0].GetReplayId(), ids[0]) {
		t.Errorf("resume from keepalive position delivered %x, want %x", evs[0].GetReplayId(), ids[0])
	}
}

func TestIdleStreamClosedWithOK(t *testing.T) {
	f := newFixture(t, Config{Keepalive: time.Minute, IdleClose: 40 * time.Millisecond})
	publishOrders(t, f.srv, 1)
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 1})
	recvEvents(t, st, 1)
	start := time.Now()
	_, err := st.Recv()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the idle window: %v, want a clean end (OK)", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("closed after %v, before the idle window", d)
	}
	if ec := st.Trailer().Get("error-code"); len(ec) != 0 {
		t.Errorf("idle close carried error-code %v", ec)
	}
}

func TestCreditKeepsIdleStreamOpen(t *testing.T) {
	f := newFixture(t, Config{Keepalive: 20 * time.Millisecond, IdleClose: 40 * time.Millisecond})
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
	deadline := time.Now().Add(150 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := st.Recv(); err != nil {
			t.Fatalf("stream with pending credit ended: %v", err)
		}
	}
}

func TestReplayIDRejected(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, Config{Now: clock.Now, Keepalive: time.Minute, IdleClose: time.Minute})
	ids := publishOrders(t, f.srv, 3)
	clock.Add(time.Hour)
	later := publishOrders(t, f.srv, 1)
	f.srv.Purge(clock.Now().Add(-time.Minute))
	future := EncodeReplayID(1 << 40)
	badSuffix := append(append([]byte{}, ids[0][:8]...), 0, 1)
	cases := map[string][]byte{
		"purged":      ids[2],
		"purged 8":    ids[1][:8],
		"unknown":     future,
		"malformed":   {1, 2, 3},
		"bad suffix":  badSuffix,
		"before all":  EncodeReplayID(5),
		"nine bytes":  append([]byte{}, ids[0][:9]...),
		"eleven":      append(append([]byte{}, later[0]...), 0),
		"zero length": nil,
	}
	for name, id := range cases {
		t.Run(name, func(t *testing.T) {
			st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_CUSTOM, ReplayId: id, NumRequested: 1})
			_, err := st.Recv()
			want := CodeReplayCorrupted
			if len(id) == 0 {
				want = CodeReplayValidation
			}
			wantStatus(t, err, st.Trailer(), codes.InvalidArgument, want, RPCSubscribe)
		})
	}
	// EARLIEST now starts at the oldest retained event.
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 5})
	evs, _ := recvEvents(t, st, 1)
	if !bytes.Equal(evs[0].GetReplayId(), later[0]) {
		t.Errorf("EARLIEST after purge delivered %x, want %x", evs[0].GetReplayId(), later[0])
	}
}

func TestRetentionWindow(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, Config{Now: clock.Now, Retention: 72 * time.Hour})
	ids := publishOrders(t, f.srv, 2)
	clock.Add(71 * time.Hour)
	if n := len(f.srv.Events(orders)); n != 2 {
		t.Fatalf("%d events retained after 71h, want 2", n)
	}
	clock.Add(2 * time.Hour)
	if n := len(f.srv.Events(orders)); n != 0 {
		t.Fatalf("%d events retained after 73h, want 0", n)
	}
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_CUSTOM, ReplayId: ids[0], NumRequested: 1})
	_, err := st.Recv()
	wantStatus(t, err, st.Trailer(), codes.InvalidArgument, CodeReplayCorrupted, RPCSubscribe)
}

func TestInvalidFetchRequests(t *testing.T) {
	f := newFixture(t, fastConfig())
	t.Run("zero credit first", func(t *testing.T) {
		st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 0})
		_, err := st.Recv()
		wantStatus(t, err, st.Trailer(), codes.InvalidArgument, CodeRequestedInvalid, RPCSubscribe)
	})
	t.Run("negative credit later", func(t *testing.T) {
		st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
		_ = st.Send(&pubsubpb.FetchRequest{NumRequested: -3})
		_, err := st.Recv()
		wantStatus(t, err, st.Trailer(), codes.InvalidArgument, CodeRequestedInvalid, RPCSubscribe)
	})
	t.Run("topic mismatch", func(t *testing.T) {
		st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
		_ = st.Send(&pubsubpb.FetchRequest{TopicName: accountTopic, NumRequested: 1})
		_, err := st.Recv()
		wantStatus(t, err, st.Trailer(), codes.InvalidArgument, CodeTopicMismatch, RPCSubscribe)
	})
	t.Run("same topic again is fine", func(t *testing.T) {
		st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 1})
		_ = st.Send(&pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
		publishOrders(t, f.srv, 2)
		recvEvents(t, st, 2)
	})
	t.Run("empty topic", func(t *testing.T) {
		st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{NumRequested: 1})
		_, err := st.Recv()
		wantStatus(t, err, st.Trailer(), codes.InvalidArgument, CodeTopicEmpty, RPCSubscribe)
	})
}

func TestTokenLifetimeAndExpireTokens(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, Config{Now: clock.Now, Keepalive: time.Minute, IdleClose: time.Minute})
	f.srv.AddToken("two-hours", 2*time.Hour)
	ctx := withToken(f.authCtx(t), "two-hours")
	if _, err := f.client.GetTopic(ctx, &pubsubpb.TopicRequest{TopicName: orders}); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	clock.Add(2*time.Hour + time.Second)
	_, err := f.client.GetTopic(ctx, &pubsubpb.TopicRequest{TopicName: orders})
	if codeOf(err) != codes.Unauthenticated {
		t.Fatalf("expired token: %v", err)
	}
	// An open stream survives ExpireTokens; new calls fail.
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 2})
	waitFor(t, func() bool { return f.srv.Calls(RPCSubscribe) == 1 && len(f.srv.Requests()) >= 3 })
	f.srv.ExpireTokens()
	publishOrders(t, f.srv, 2)
	recvEvents(t, st, 2)
	_, err = f.client.GetTopic(f.authCtx(t), &pubsubpb.TopicRequest{TopicName: orders})
	if codeOf(err) != codes.Unauthenticated {
		t.Fatalf("after ExpireTokens: %v", err)
	}
	f.srv.AddToken(testToken, 0)
	if _, err := f.client.GetTopic(f.authCtx(t), &pubsubpb.TopicRequest{TopicName: orders}); err != nil {
		t.Fatalf("re-added token: %v", err)
	}
}

func TestStopEndsStreams(t *testing.T) {
	f := newFixture(t, fastConfig())
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
	waitFor(t, func() bool { return len(f.srv.Requests()) == 1 })
	f.srv.Stop()
	if _, err := st.Recv(); err == nil {
		t.Fatal("stream still open after Stop")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Serve(lis); !errors.Is(err, ErrStopped) {
		t.Errorf("Serve after Stop = %v, want ErrStopped", err)
	}
}
