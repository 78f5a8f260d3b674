package interop

import (
	"context"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sfarchive/sfarchive/emulator"
)

// grpcErrorLine is what client.mjs prints when the client received a gRPC error status.
type grpcErrorLine struct {
	GRPCError *struct {
		Code     int               `json:"code"`
		Details  string            `json:"details"`
		Metadata map[string]string `json:"metadata"`
	} `json:"grpcError"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestNodeClientSeesServiceErrors: errors reach the third-party client the way the real service sends them
// (PROTOCOL.md §4.4): the status code, a message ending in " rpcId: <uuid>", and the trailers error-code,
// rpc-id and type, readable by grpc-js.
func TestNodeClientSeesServiceErrors(t *testing.T) {
	cases := []struct {
		name      string
		mode      string
		token     string
		topic     string
		code      codes.Code
		errorCode string
		rpc       string
	}{
		{name: "unknown token on Subscribe", mode: "subscribe", token: orgID + "!AQ0AQNotAToken", topic: accountTopic,
			code: codes.Unauthenticated, errorCode: emulator.CodeAuthError, rpc: emulator.RPCSubscribe},
		{name: "unknown topic on Subscribe", mode: "subscribe", token: accessToken, topic: "/event/No_Such_Event__e",
			code: codes.PermissionDenied, errorCode: emulator.CodeTopicNotFound, rpc: emulator.RPCSubscribe},
		{name: "unknown token on GetTopic before Publish", mode: "publish", token: orgID + "!AQ0AQNotAToken", topic: orderTopic,
			code: codes.Unauthenticated, errorCode: emulator.CodeAuthError, rpc: emulator.RPCGetTopic},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutineLeaks(t)
			nc := requireNodeClient(t)
			emu := startTLSEmulator(t)
			env := emu.clientEnv(tc.topic)
			env["SFA_ACCESS_TOKEN"] = tc.token
			env["SFA_COUNT"] = "1"
			env["SFA_PAYLOAD"] = `{"CreatedDate":1764754620123,"CreatedById":"0055g00000AbCdEAAV"}`
			ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout+30*time.Second)
			defer cancel()
			run := nc.runFailing(t, ctx, tc.mode, env)
			var status *grpcErrorLine
			for _, l := range jsonLines[grpcErrorLine](t, run.stdout) {
				if l.GRPCError != nil {
					status = &l
				}
			}
			if status == nil {
				t.Fatalf("the client reported no gRPC status; stderr:\n%s", run.stderr)
			}
			e := status.GRPCError
			if codes.Code(e.Code) != tc.code {
				t.Errorf("status code %d (%s), want %s", e.Code, codes.Code(e.Code), tc.code)
			}
			md := e.Metadata
			if md["error-code"] != tc.errorCode {
				t.Errorf("error-code trailer %q, want %q", md["error-code"], tc.errorCode)
			}
			if md["type"] != tc.rpc {
				t.Errorf("type trailer %q, want %q", md["type"], tc.rpc)
			}
			rpcID := md["rpc-id"]
			if !uuidRE.MatchString(rpcID) {
				t.Errorf("rpc-id trailer %q is not a UUID", rpcID)
			}
			if want := " rpcId: " + rpcID; len(e.Details) <= len(want) || e.Details[len(e.Details)-len(want):] != want {
				t.Errorf("details %q do not end with %q", e.Details, want)
			}
		})
	}
}
