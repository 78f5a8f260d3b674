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

// Subscribe implements the Subscribe RPC.
func (s *service) Subscribe(stream grpc.BidiStreamingServer[pubsubpb.FetchRequest, pubsubpb.FetchResponse]) error {
	ctx := stream.Context()
	rpcID, err := s.begin(ctx, RPCSubscribe)
	if err != nil {
		s.record(Request{RPC: RPCSubscribe, RPCID: rpcID})
		return err
	}
	done := make(chan struct{})
	defer close(done)
	raw, errc := receive(stream.Recv, done)
	first, err := firstRequest(ctx, s.Server, raw, errc)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, ErrStopped) {
			return rpcError(ctx, RPCSubscribe, rpcID, codes.Unavailable, CodeUnavailable, msgUnavailable)
		}
		return err
	}
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

	reqs := make(chan fetchReq)
	go func() {
		for {
			select {
			case r := <-raw:
				s.record(Request{RPC: RPCSubscribe, Topic: r.GetTopicName(), NumRequested: r.GetNumRequested(), RPCID: rpcID})
				select {
				case reqs <- fetchReq{topic: r.GetTopicName(), num: r.GetNumRequested()}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	sub := &subscription{
		s: s.Server, ctx: ctx, rpc: RPCSubscribe, rpcID: rpcID, topic: t, cursor: cursor,
		latest: EncodeReplayID(cursor),
		send: func(r subResponse) error {
			return stream.Send(&pubsubpb.FetchResponse{Events: r.events, LatestReplayId: r.latest, RpcId: rpcID, PendingNumRequested: r.pending})
		},
	}
	sub.addCredit(first.GetNumRequested())
	return sub.run(reqs, errc)
}
