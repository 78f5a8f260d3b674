package login_test

import (
	"context"
	"encoding/xml"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sfarchive/sfarchive/emulator"
	"github.com/sfarchive/sfarchive/emulator/login"
	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// The gRPC emulator is the TokenIssuer the login server is built for.
var _ login.TokenIssuer = (*emulator.Server)(nil)

// A SOAP login at the login server yields a session ID, instance URL and org
// ID that the gRPC emulator accepts, and ExpireTokens there rejects it again.
func TestTokensWorkOnTheGRPCEmulator(t *testing.T) {
	const org = "00D000000000777AAA"
	loginLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	loginBase := "http://" + loginLis.Addr().String()

	emu, err := emulator.New(emulator.Config{OrgID: org, InstanceURL: loginBase})
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, err := emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Stop()

	srv, err := login.New(login.Config{
		OrgID:  org,
		Users:  []login.User{{Username: "u@example.com", Password: "pw", SecurityToken: "TOK"}},
		Issuer: emu,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(loginLis) }()
	defer func() {
		srv.Stop()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}()

	envelope := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Body><urn:login><urn:username>u@example.com</urn:username><urn:password>pwTOK</urn:password></urn:login></soapenv:Body></soapenv:Envelope>`
	resp, err := http.Post(loginBase+"/services/Soap/u/62.0/", "text/xml", strings.NewReader(envelope))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ServerURL string `xml:"Body>loginResponse>result>serverUrl"`
		SessionID string `xml:"Body>loginResponse>result>sessionId"`
		OrgID     string `xml:"Body>loginResponse>result>userInfo>organizationId"`
	}
	err = xml.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	instanceURL := r.ServerURL[:strings.Index(r.ServerURL, "/services/")]

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pubsubpb.NewPubSubClient(conn)
	getTopic := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "accesstoken", r.SessionID, "instanceurl", instanceURL, "tenantid", r.OrgID)
		_, err := client.GetTopic(ctx, &pubsubpb.TopicRequest{TopicName: "/data/AccountChangeEvent"})
		return err
	}
	if err := getTopic(); err != nil {
		t.Fatalf("GetTopic with the login's credentials: %v", err)
	}
	emu.ExpireTokens()
	if err := getTopic(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("GetTopic after ExpireTokens: %v, want UNAUTHENTICATED", err)
	}
}
