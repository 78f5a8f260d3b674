package subscriber

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
)

// Sentinel errors. Errors returned by Run and ParseStart wrap one of them; test
// with errors.Is.
var (
	// ErrConfig: the Config is not usable (a usage error).
	ErrConfig = errors.New("invalid subscriber configuration")
	// ErrStartPosition: a start position that is not earliest, latest, or a
	// replay ID in hex or base64.
	ErrStartPosition = errors.New("invalid start position")
	// ErrUnreachable: the endpoint did not answer within the dial timeout.
	ErrUnreachable = errors.New("pub/sub endpoint unreachable")
	// ErrAuth: the server rejected the credentials and they cannot be renewed.
	ErrAuth = errors.New("pub/sub API rejected the credentials")
	// ErrInvalidReplay: the server rejected a stored or given replay ID and
	// OnInvalidReplay is "fail".
	ErrInvalidReplay = errors.New("replay ID rejected by the server")
	// ErrTopicRefused: the server refused a topic (permission, unknown topic,
	// invalid request); the topic was stopped.
	ErrTopicRefused = errors.New("topic refused by the server")
	// ErrStore: the archive failed to bind, read or commit.
	ErrStore = errors.New("archive write failed")
)

// RemoteError is a failure reported by the Pub/Sub API, with what the server
// said about it.
type RemoteError struct {
	Topic     string     // "" for calls not tied to a topic
	RPC       string     // "Subscribe", "GetTopic", "GetSchema"
	Code      codes.Code // gRPC status code
	ErrorCode string     // the error-code trailer, "" if absent
	RPCID     string     // the rpc-id trailer, "" if absent
	Message   string     // the status message as the server sent it
	Err       error      // the original gRPC error
}

// Error implements error.
func (e *RemoteError) Error() string {
	s := e.RPC
	if e.Topic != "" {
		s += " " + e.Topic
	}
	s += fmt.Sprintf(": %s: %s", e.Code, e.Message)
	if e.ErrorCode != "" {
		s += " (error-code " + e.ErrorCode
		if e.RPCID != "" {
			s += ", rpc-id " + e.RPCID
		}
		s += ")"
	} else if e.RPCID != "" {
		s += " (rpc-id " + e.RPCID + ")"
	}
	return s
}

// Unwrap returns the gRPC error, so status.Code and errors.Is work through it.
func (e *RemoteError) Unwrap() error { return e.Err }
