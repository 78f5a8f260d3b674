package emulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

func TestFailCallNth(t *testing.T) {
	f := newFixture(t, fastConfig())
	f.srv.FailCall(RPCGetTopic, 2, codes.Internal, CodeUnavailable, "")
	for i := 1; i <= 3; i++ {
		var tr metadata.MD
		_, err := f.client.GetTopic(f.authCtx(t), &pubsubpb.TopicRequest{TopicName: orders}, grpc.Trailer(&tr))
		if i == 2 {
			wantStatus(t, err, tr, codes.Internal, CodeUnavailable, RPCGetTopic)
		} else if err != nil {
			t.Errorf("call %d failed: %v", i, err)
		}
	}
	// No error-code at all, like a transport reset.
	f.srv.FailCall(RPCSubscribe, 1, codes.Unavailable, "", "RST_STREAM closed stream")
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, NumRequested: 1})
	_, err := st.Recv()
	wantStatus(t, err, st.Trailer(), codes.Unavailable, "", RPCSubscribe)
}

func TestEndStreamsAfter(t *testing.T) {
	f := newFixture(t, fastConfig())
	publishOrders(t, f.srv, 10)
	f.srv.EndStreamsAfter(3, codes.Internal, CodeUnavailable)
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 10})
	got := 0
	var err error
	for {
		var r *pubsubpb.FetchResponse
		if r, err = st.Recv(); err != nil {
			break
		}
		got += len(r.GetEvents())
	}
	if got != 3 {
		t.Errorf("stream delivered %d events before ending, want 3", got)
	}
	wantStatus(t, err, st.Trailer(), codes.Internal, CodeUnavailable, RPCSubscribe)

	f.srv.EndStreamsAfter(2, codes.OK, "")
	st = f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 10})
	recvEvents(t, st, 2)
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("EndStreamsAfter with OK: %v, want a clean end", err)
	}
	f.srv.EndStreamsAfter(0, codes.OK, "")
	st = f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 10})
	recvEvents(t, st, 10)
}

func TestStallSendsNothing(t *testing.T) {
	f := newFixture(t, Config{Keepalive: 10 * time.Millisecond, IdleClose: 10 * time.Millisecond})
	f.srv.Stall(true)
	publishOrders(t, f.srv, 3)
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 3})
	var received atomic.Int32
	done := make(chan error, 1)
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				done <- err
				return
			}
			received.Add(int32(len(r.GetEvents())) + 1)
			if received.Load() >= 2 {
				done <- nil
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	if n := received.Load(); n != 0 {
		t.Fatalf("stalled stream sent %d responses", n)
	}
	f.srv.Stall(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the stall: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no events after the stall ended")
	}
}

func TestLatency(t *testing.T) {
	f := newFixture(t, fastConfig())
	f.srv.SetLatency(60 * time.Millisecond)
	start := time.Now()
	if _, err := f.client.GetSchema(f.authCtx(t), &pubsubpb.SchemaRequest{SchemaId: "_CADE3qaegX3ECEW0rlbYA"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("GetSchema answered in %v with 60ms latency", d)
	}
	publishOrders(t, f.srv, 1)
	start = time.Now()
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 1})
	recvEvents(t, st, 1)
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("event arrived in %v with 60ms latency", d)
	}
}

func TestThrottle(t *testing.T) {
	f := newFixture(t, fastConfig())
	f.srv.Throttle(2)
	var tr metadata.MD
	var lastErr error
	for range 5 {
		_, lastErr = f.client.GetTopic(f.authCtx(t), &pubsubpb.TopicRequest{TopicName: orders}, grpc.Trailer(&tr))
		if lastErr != nil {
			break
		}
	}
	wantStatus(t, lastErr, tr, codes.ResourceExhausted, CodeProtection, RPCGetTopic)
	if f.srv.Throttled() == 0 {
		t.Error("Throttled() = 0")
	}
	f.srv.Throttle(0)
	if _, err := f.client.GetTopic(f.authCtx(t), &pubsubpb.TopicRequest{TopicName: orders}); err != nil {
		t.Errorf("after Throttle(0): %v", err)
	}
}

func TestTLSWithGeneratedCert(t *testing.T) {
	checkLeaks(t)
	certFile, keyFile, cert, err := GenerateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file %v mode %v", err, st.Mode())
	}
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	srv.AddToken(testToken, 0)
	addr, err := srv.StartTLS("127.0.0.1:0", cert)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("certificate file holds no PEM certificate")
	}
	for _, target := range []string{addr, "localhost:" + addr[len("127.0.0.1:"):]} {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, "accesstoken", testToken, "instanceurl", "https://x", "tenantid", srv.OrgID())
		_, err = pubsubpb.NewPubSubClient(conn).GetTopic(ctx, &pubsubpb.TopicRequest{TopicName: orders})
		cancel()
		_ = conn.Close()
		if err != nil {
			t.Errorf("GetTopic over TLS via %s: %v", target, err)
		}
	}
}

func TestGeneratorRun(t *testing.T) {
	f := newFixture(t, fastConfig())
	g := NewGenerator(5, f.srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, []string{accountTopic}, 0, nil) }()
	st := f.subscribe(t, f.authCtx(t), &pubsubpb.FetchRequest{TopicName: accountTopic, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 40})
	evs, _ := recvEvents(t, st, 40)
	_ = st.Send(&pubsubpb.FetchRequest{NumRequested: 25})
	more, _ := recvEvents(t, st, 25)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(evs)+len(more) != 65 {
		t.Errorf("got %d events", len(evs)+len(more))
	}
	// A fixed rate.
	ctx, cancel = context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	var n atomic.Int32
	if err := g.Run(ctx, []string{orders, accountTopic}, 200, func(Generated) { n.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got < 5 || got > 40 {
		t.Errorf("published %d events in 150ms at 200/s", got)
	}
}
