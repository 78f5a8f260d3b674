package emulator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Sentinel errors returned by the Go test hooks (not by the RPCs, which return gRPC statuses).
var (
	// ErrUnknownTopic: the topic is not registered.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrUnknownSchema: the schema ID is not registered.
	ErrUnknownSchema = errors.New("unknown schema")
	// ErrBadSchema: the schema JSON does not parse as Avro.
	ErrBadSchema = errors.New("invalid avro schema")
	// ErrEventTooLarge: an event payload is larger than MaxEventSize.
	ErrEventTooLarge = errors.New("event larger than 1 MB")
	// ErrTopicExists: AddTopic was called for a topic that already exists.
	ErrTopicExists = errors.New("topic already exists")
	// ErrStopped: the server has been stopped.
	ErrStopped = errors.New("emulator stopped")
	// ErrBadSample: a recorded-event file could not be read.
	ErrBadSample = errors.New("bad sample file")
	// ErrSchemaIDInUse: AddSchema was given an ID already bound to different JSON.
	ErrSchemaIDInUse = errors.New("schema id already used by another schema")
)

// ErrorCodePrefix is the prefix of every Pub/Sub API error code.
const ErrorCodePrefix = "sfdc.platform.eventbus.grpc."

// Error codes sent in the error-code trailer (PROTOCOL.md §4.4).
const (
	CodeAuthError           = ErrorCodePrefix + "service.auth.error"
	CodeUnavailable         = ErrorCodePrefix + "service.unavailable"
	CodeProtection          = ErrorCodePrefix + "service.protection.triggered"
	CodeReplayCorrupted     = ErrorCodePrefix + "subscription.fetch.replayid.corrupted"
	CodeReplayValidation    = ErrorCodePrefix + "subscription.fetch.replayid.validation.failed"
	CodeRequestedInvalid    = ErrorCodePrefix + "subscription.fetch.requested.events.invalid"
	CodeTopicMismatch       = ErrorCodePrefix + "subscription.fetch.topic.mismatch"
	CodeFetchRequestInvalid = ErrorCodePrefix + "subscription.fetch.request.invalid"
	CodeTopicNotFound       = ErrorCodePrefix + "topic.not.found"
	CodeTopicEmpty          = ErrorCodePrefix + "topic.validation.empty"
	CodeSchemaNotFound      = ErrorCodePrefix + "schema.validation.failed"
	CodePublishCountInvalid = ErrorCodePrefix + "publish.event.count.invalid"
	CodePublishTopicEmpty   = ErrorCodePrefix + "publish.topic.validation.empty"
	CodePublishMismatch     = ErrorCodePrefix + "publish.topic.mismatch"
	CodePublishPermission   = ErrorCodePrefix + "topic.meta.permission"
	CodePublishSweeper      = ErrorCodePrefix + "publish.stream.sweeper.timeout"
	CodeManagedActive       = ErrorCodePrefix + "managed.subscription.already.active"
	CodeManagedNotFound     = ErrorCodePrefix + "managed.subscription.subscription.id.not.found"
	CodeManagedDevNotFound  = ErrorCodePrefix + "managed.subscription.developer.name.not.found"
	CodeManagedIDEmpty      = ErrorCodePrefix + "managed.subscription.id.or.developer.name.empty"
	CodeManagedStopped      = ErrorCodePrefix + "managed.subscription.config.stopped"
	CodeManagedEventsBad    = ErrorCodePrefix + "managed.subscription.fetch.request.events.invalid"
	CodeManagedCommitFirst  = ErrorCodePrefix + "managed.subscription.fetch.request.commit.request.restricted"
	CodeManagedNoCommit     = ErrorCodePrefix + "managed.subscription.commit.timeout"
)

// Messages of the documented errors.
const (
	msgAuth            = "An authentication exception occurred. Provide valid authentication via metadata headers."
	msgUnavailable     = "The service is unavailable. Try again later."
	msgReplayCorrupted = "The Replay ID validation failed. Ensure that the replay_id field value in FetchRequest is valid and refers to an event that is within the retention window."
)

// newUUID returns a random version-4 UUID string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// rpcError builds the status error the real service returns: the message ends with " rpcId: <uuid>" and the
// trailers error-code (omitted when errorCode is ""), rpc-id and type are set on the call.
func rpcError(ctx context.Context, rpc, rpcID string, code codes.Code, errorCode, msg string) error {
	md := metadata.Pairs("rpc-id", rpcID, "type", rpc)
	if errorCode != "" {
		md.Set("error-code", errorCode)
	}
	// SetTrailer fails only when the call already finished; nothing useful can be done then.
	_ = grpc.SetTrailer(ctx, md)
	return status.Error(code, msg+" rpcId: "+rpcID)
}
