package emulator

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

func TestServiceOnCallersServerOverBufconn(t *testing.T) {
	checkLeaks(t)
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddToken(testToken, 0)
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	pubsubpb.RegisterPubSubServer(g, srv.Service())
	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = conn.Close()
		srv.Stop()
		g.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	ids := publishOrders(t, srv, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "accesstoken", testToken, "instanceurl", "https://x", "tenantid", srv.OrgID())
	st, err := pubsubpb.NewPubSubClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pubsubpb.FetchRequest{TopicName: orders, ReplayPreset: pubsubpb.ReplayPreset_EARLIEST, NumRequested: 3}); err != nil {
		t.Fatal(err)
	}
	evs, _ := recvEvents(t, st, 3)
	if string(evs[2].GetReplayId()) != string(ids[2]) {
		t.Errorf("bufconn delivered %x, want %x", evs[2].GetReplayId(), ids[2])
	}
}
