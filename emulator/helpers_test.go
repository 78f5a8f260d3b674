package emulator

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sfarchive/sfarchive/internal/leakcheck"
	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

const testToken = "00Dtest!token"

// checkLeaks registers a cleanup (run last) that fails the test when goroutines started during it are still
// running after a grace period.
func checkLeaks(t *testing.T) {
	t.Helper()
	leakcheck.Check(t)
}

// fixture is a started server and a connected client.
type fixture struct {
	srv    *Server
	addr   string
	conn   *grpc.ClientConn
	client pubsubpb.PubSubClient
}

// fastConfig has durations short enough for tests.
func fastConfig() Config {
	return Config{Keepalive: 10 * time.Second, IdleClose: 10 * time.Second}
}

// newFixture starts a server with cfg on 127.0.0.1:0, registers testToken and dials it. Cleanup stops both and
// checks for leaked goroutines.
func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	checkLeaks(t)
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.AddToken(testToken, 0)
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	return &fixture{srv: srv, addr: addr, conn: conn, client: pubsubpb.NewPubSubClient(conn)}
}

// authCtx returns a context carrying valid auth metadata for the fixture's server.
func (f *fixture) authCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "accesstoken", testToken, "instanceurl", "https://example.my.salesforce.com", "tenantid", f.srv.OrgID())
}

// subscribe opens a Subscribe stream and sends first.
func (f *fixture) subscribe(t *testing.T, ctx context.Context, first *pubsubpb.FetchRequest) pubsubpb.PubSub_SubscribeClient {
	t.Helper()
	st, err := f.client.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := st.Send(first); err != nil {
		t.Fatalf("send first request: %v", err)
	}
	return st
}

// recvEvents receives responses until n events arrived and returns the events and responses.
func recvEvents(t *testing.T, st pubsubpb.PubSub_SubscribeClient, n int) ([]*pubsubpb.ConsumerEvent, []*pubsubpb.FetchResponse) {
	t.Helper()
	var evs []*pubsubpb.ConsumerEvent
	var resps []*pubsubpb.FetchResponse
	for len(evs) < n {
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("recv after %d of %d events: %v", len(evs), n, err)
		}
		resps = append(resps, r)
		evs = append(evs, r.GetEvents()...)
	}
	return evs, resps
}

// wantStatus checks a gRPC error's code, error-code trailer, rpc-id/type trailers and message suffix.
func wantStatus(t *testing.T, err error, trailer metadata.MD, code codes.Code, errorCode, rpc string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("status = %v (%v), want %v", status.Code(err), err, code)
	}
	if code == codes.OK {
		return
	}
	got := trailer.Get("error-code")
	if errorCode == "" {
		if len(got) != 0 {
			t.Errorf("error-code trailer = %q, want none", got)
		}
	} else if len(got) != 1 || got[0] != errorCode {
		t.Errorf("error-code trailer = %q, want %q", got, errorCode)
	}
	ids := trailer.Get("rpc-id")
	if len(ids) != 1 || len(ids[0]) != 36 {
		t.Errorf("rpc-id trailer = %q, want one UUID", ids)
	} else if msg := status.Convert(err).Message(); !strings.HasSuffix(msg, " rpcId: "+ids[0]) {
		t.Errorf("message %q does not end with rpcId: %s", msg, ids[0])
	}
	if typ := trailer.Get("type"); len(typ) != 1 || typ[0] != rpc {
		t.Errorf("type trailer = %q, want %q", typ, rpc)
	}
}

// publishOrders publishes n Order_Event__e events through the test hook and returns their replay IDs.
func publishOrders(t *testing.T, srv *Server, n int) [][]byte {
	t.Helper()
	g := NewGenerator(1, srv)
	gens, err := g.PublishN("/event/Order_Event__e", n)
	if err != nil {
		t.Fatalf("PublishN: %v", err)
	}
	ids := make([][]byte, len(gens))
	for i, gen := range gens {
		ids[i] = gen.ReplayID
	}
	return ids
}

// grpcTrailer captures a unary call's trailer.
func grpcTrailer(md *metadata.MD) grpc.CallOption { return grpc.Trailer(md) }

// withToken replaces the accesstoken of an outgoing context.
func withToken(ctx context.Context, token string) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Set("accesstoken", token)
	return metadata.NewOutgoingContext(ctx, md)
}

func codeOf(err error) codes.Code { return status.Code(err) }

func contextWithCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}
