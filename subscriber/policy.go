package subscriber

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ErrorCodePrefix prefixes every Pub/Sub API error code.
const ErrorCodePrefix = "sfdc.platform.eventbus.grpc."

// action is what the error policy does after a failure.
type action int

const (
	actRetry         action = iota // backoff, resubscribe from the mark
	actResubscribe                 // stream closed with OK: resubscribe from the mark
	actReauth                      // new credentials, resubscribe from the mark
	actInvalidReplay               // gap + EARLIEST, or fail
	actStopTopic                   // the server refused the topic
)

func (a action) String() string {
	switch a {
	case actResubscribe:
		return "resubscribe"
	case actReauth:
		return "reauthenticate"
	case actInvalidReplay:
		return "invalid-replay"
	case actStopTopic:
		return "stop-topic"
	default:
		return "retry"
	}
}

// remoteFailure converts a gRPC error and its trailers into a RemoteError.
// trailer may be nil (unary calls pass what grpc.Trailer collected).
func remoteFailure(rpc, topic string, err error, trailer metadata.MD) *RemoteError {
	st, _ := status.FromError(err)
	re := &RemoteError{Topic: topic, RPC: rpc, Code: st.Code(), Message: st.Message(), Err: err}
	if v := trailer.Get("error-code"); len(v) > 0 {
		re.ErrorCode = v[0]
	}
	if v := trailer.Get("rpc-id"); len(v) > 0 {
		re.RPCID = v[0]
	}
	return re
}

// hasCode reports whether an error-code names the given suffix (error codes are
// ErrorCodePrefix + a dotted name; the prefix is not required here).
func hasCode(errorCode, suffix string) bool {
	return errorCode == ErrorCodePrefix+suffix || errorCode == suffix
}

// classify maps a failed call to the error policy of DESIGN.md.
func classify(err error, re *RemoteError) action {
	if errors.Is(err, io.EOF) {
		return actResubscribe // the server ended the stream with OK
	}
	if re == nil {
		return actRetry
	}
	ec := re.ErrorCode
	switch {
	case hasCode(ec, "subscription.fetch.replayid.corrupted"),
		hasCode(ec, "subscription.fetch.replayid.validation.failed"):
		return actInvalidReplay
	case strings.HasPrefix(strings.TrimPrefix(ec, ErrorCodePrefix), "service.auth."),
		re.Code == codes.Unauthenticated:
		return actReauth
	case strings.Contains(ec, "limit.exceeded"), strings.Contains(ec, "protection."),
		hasCode(ec, "service.unavailable"):
		return actRetry // throttling and outages pass
	}
	switch re.Code {
	case codes.PermissionDenied, codes.NotFound, codes.InvalidArgument,
		codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange, codes.AlreadyExists:
		return actStopTopic
	case codes.OK:
		return actResubscribe
	default:
		// UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED, UNKNOWN (unexpected end of
		// stream), DEADLINE_EXCEEDED, ABORTED, CANCELED by the server.
		return actRetry
	}
}

// backoff is capped exponential backoff with jitter, reset after a success.
type backoff struct {
	min, max time.Duration
	n        int
}

// next returns the delay before the next attempt: a random duration in
// [d/2, d) where d doubles from min up to max.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	b.n++
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half)
}

func (b *backoff) reset() { b.n = 0 }

// sleepCtx waits d or until ctx is done; it reports whether the full wait passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
