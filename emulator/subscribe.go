package emulator

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// receive runs recv in a goroutine and delivers each message on the returned channel, or the error that ended
// receiving. The goroutine exits when recv fails or done is closed.
func receive[T any](recv func() (T, error), done <-chan struct{}) (<-chan T, <-chan error) {
	out := make(chan T)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case out <- m:
			case <-done:
				return
			}
		}
	}()
	return out, errc
}

// firstRequest waits for the first message of a stream.
func firstRequest[T any](ctx context.Context, s *Server, reqs <-chan T, errc <-chan error) (T, error) {
	var zero T
	select {
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-s.stopCh:
		return zero, ErrStopped
	case err := <-errc:
		return zero, err
	case r := <-reqs:
		return r, nil
	}
}

// openedStream is a Subscribe or ManagedSubscribe stream whose RPC has begun and whose first request has
// arrived.
type openedStream[T any] struct {
	rpcID string
	first T
	raw   <-chan T     // the later requests
	errc  <-chan error // the error that ended receiving
}

// openStream begins rpc on a stream (injected faults, throttling, auth) and waits for its first request, which
// the caller records with what it names. A goroutine keeps receiving the later requests into st.raw until
// done is closed; the caller closes done when the handler returns. When ok is false the handler must return
// err at once: the RPC failed, the server stopped first (UNAVAILABLE), or the client closed its side without
// sending a request (err is nil).
func openStream[T any](s *service, ctx context.Context, rpc string, recv func() (T, error), done <-chan struct{}) (
	st openedStream[T], ok bool, err error) {
	st.rpcID, err = s.begin(ctx, rpc)
	if err != nil {
		s.record(Request{RPC: rpc, RPCID: st.rpcID})
		return st, false, err
	}
	st.raw, st.errc = receive(recv, done)
	st.first, err = firstRequest(ctx, s.Server, st.raw, st.errc)
	switch {
	case errors.Is(err, io.EOF):
		return st, false, nil
	case errors.Is(err, ErrStopped):
		return st, false, rpcError(ctx, rpc, st.rpcID, codes.Unavailable, CodeUnavailable, msgUnavailable)
	case err != nil:
		return st, false, err
	}
	return st, true, nil
}

// forward records each later request of a stream and passes it on to the subscription until done is closed;
// convert gives a request's record and what the subscription acts on.
func forward[T any](s *service, raw <-chan T, done <-chan struct{}, convert func(T) (Request, fetchReq)) <-chan fetchReq {
	reqs := make(chan fetchReq)
	go func() {
		for {
			select {
			case r := <-raw:
				rec, req := convert(r)
				s.record(rec)
				select {
				case reqs <- req:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return reqs
}

// Subscribe implements the Subscribe RPC.
func (s *service) Subscribe(stream grpc.BidiStreamingServer[pubsubpb.FetchRequest, pubsubpb.FetchResponse]) error {
	ctx := stream.Context()
	done := make(chan struct{})
	defer close(done)
	st, ok, err := openStream(s, ctx, RPCSubscribe, stream.Recv, done)
	if !ok {
		return err
	}
	rpcID, first := st.rpcID, st.first
	s.record(Request{RPC: RPCSubscribe, Topic: first.GetTopicName(), Preset: first.GetReplayPreset().String(),
		ReplayID: first.GetReplayId(), NumRequested: first.GetNumRequested(), RPCID: rpcID})
	fail := func(code codes.Code, errorCode, msg string) error {
		return rpcError(ctx, RPCSubscribe, rpcID, code, errorCode, msg)
	}
	name := first.GetTopicName()
	if name == "" {
		return fail(codes.InvalidArgument, CodeTopicEmpty, "The topic name is empty. Provide a topic name.")
	}
	if first.GetNumRequested() <= 0 {
		return fail(codes.InvalidArgument, CodeRequestedInvalid, "The number of requested events must be greater than zero.")
	}
	if first.GetReplayPreset() == pubsubpb.ReplayPreset_CUSTOM && len(first.GetReplayId()) == 0 {
		return fail(codes.InvalidArgument, CodeReplayValidation,
			"The Replay ID validation failed. Provide a replay_id value when using the CUSTOM replay preset.")
	}
	s.mu.Lock()
	t, ok := s.topics[name]
	var cursor uint64
	valid := true
	if ok {
		cursor, valid = s.startCursorLocked(t, first.GetReplayPreset(), first.GetReplayId())
		if valid && first.GetNumRequested() > 0 {
			t.subscribers++ // run decrements it
		}
	}
	s.mu.Unlock()
	if !ok {
		return fail(codes.PermissionDenied, CodeTopicNotFound, topicDenied(name))
	}
	if !valid {
		return fail(codes.InvalidArgument, CodeReplayCorrupted, msgReplayCorrupted)
	}
	s.log.Debug("subscribe", "topic", name, "preset", first.GetReplayPreset().String(), "rpc_id", rpcID)

	reqs := forward(s, st.raw, done, func(r *pubsubpb.FetchRequest) (Request, fetchReq) {
		return Request{RPC: RPCSubscribe, Topic: r.GetTopicName(), NumRequested: r.GetNumRequested(), RPCID: rpcID},
			fetchReq{topic: r.GetTopicName(), num: r.GetNumRequested()}
	})
	sub := &subscription{
		s: s.Server, ctx: ctx, rpc: RPCSubscribe, rpcID: rpcID, topic: t, cursor: cursor,
		latest: EncodeReplayID(cursor),
		send: func(r subResponse) error {
			return stream.Send(&pubsubpb.FetchResponse{Events: r.events, LatestReplayId: r.latest, RpcId: rpcID, PendingNumRequested: r.pending})
		},
	}
	sub.addCredit(first.GetNumRequested())
	return sub.run(reqs, st.errc)
}
