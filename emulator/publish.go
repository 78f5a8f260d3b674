package emulator

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// maxRequestSize is the hard gRPC message limit of the real service (4 MB).
const maxRequestSize = 4 << 20

// maxEventIDLen is the longest custom event id the service accepts.
const maxEventIDLen = 36

// Publish implements the Publish RPC.
func (s *service) Publish(ctx context.Context, req *pubsubpb.PublishRequest) (*pubsubpb.PublishResponse, error) {
	rpcID, err := s.begin(ctx, RPCPublish)
	s.record(Request{RPC: RPCPublish, Topic: req.GetTopicName(), Events: len(req.GetEvents()), RPCID: rpcID})
	if err != nil {
		return nil, err
	}
	resp, err := s.publishBatch(ctx, RPCPublish, rpcID, req)
	if err != nil {
		return nil, err
	}
	if err := s.delay(ctx); err != nil {
		return nil, err
	}
	return resp, nil
}

// publishBatch validates and appends one PublishRequest. A request-level problem is returned as a status error;
// a problem with one event goes into that event's PublishResult and the others still publish.
func (s *Server) publishBatch(ctx context.Context, rpc, rpcID string, req *pubsubpb.PublishRequest) (*pubsubpb.PublishResponse, error) {
	if proto.Size(req) > maxRequestSize {
		// The real service's front proxy resets the stream; there is no error-code.
		return nil, rpcError(ctx, rpc, rpcID, codes.Unavailable, "",
			"upstream connect error or disconnect/reset before headers. reset reason: remote reset")
	}
	name := req.GetTopicName()
	if name == "" {
		return nil, rpcError(ctx, rpc, rpcID, codes.InvalidArgument, CodePublishTopicEmpty, "The topic name is empty. Provide a topic name.")
	}
	if len(req.GetEvents()) == 0 {
		return nil, rpcError(ctx, rpc, rpcID, codes.InvalidArgument, CodePublishCountInvalid, "The publish request contains no events. Provide at least one event.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return nil, rpcError(ctx, rpc, rpcID, codes.PermissionDenied, CodeTopicNotFound, topicDenied(name))
	}
	if !t.canPublish {
		return nil, rpcError(ctx, rpc, rpcID, codes.PermissionDenied, CodePublishPermission, "You don't have permission to publish to topic "+name+".")
	}
	resp := &pubsubpb.PublishResponse{SchemaId: t.schemaID, RpcId: rpcID}
	for _, pe := range req.GetEvents() {
		res := &pubsubpb.PublishResult{CorrelationKey: pe.GetId()}
		var problem string
		switch {
		case len(pe.GetId()) > maxEventIDLen:
			problem = "The event ID is longer than 36 characters."
		case len(pe.GetPayload()) > MaxEventSize:
			problem = "The event exceeds the maximum event size of 1 MB."
		case pe.GetSchemaId() == "" || !slices.Contains(t.schemaIDs, pe.GetSchemaId()):
			problem = "The schema ID " + pe.GetSchemaId() + " doesn't match a schema of topic " + name + "."
		}
		if problem != "" {
			res.Error = &pubsubpb.Error{Code: pubsubpb.ErrorCode_PUBLISH, Msg: problem}
			resp.Results = append(resp.Results, res)
			continue
		}
		ev := Event{ID: pe.GetId(), SchemaID: pe.GetSchemaId(), Payload: pe.GetPayload()}
		if ev.ID == "" {
			ev.ID = newUUID()
			res.CorrelationKey = ev.ID
		}
		for _, h := range pe.GetHeaders() {
			if ev.Headers == nil {
				ev.Headers = make(map[string][]byte)
			}
			ev.Headers[h.GetKey()] = h.GetValue()
		}
		res.ReplayId = s.appendLocked(t, []Event{ev})[0]
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// PublishStream implements the PublishStream RPC: one PublishResponse per PublishRequest. A stream that sends
// no request with events for Config.PublishStreamIdle is closed with DEADLINE_EXCEEDED.
func (s *service) PublishStream(stream grpc.BidiStreamingServer[pubsubpb.PublishRequest, pubsubpb.PublishResponse]) error {
	ctx := stream.Context()
	rpcID, err := s.begin(ctx, RPCPublishStream)
	if err != nil {
		s.record(Request{RPC: RPCPublishStream, RPCID: rpcID})
		return err
	}
	reqs := make(chan *pubsubpb.PublishRequest)
	recvErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- r:
			case <-done:
				return
			}
		}
	}()
	idle := time.NewTimer(s.cfg.PublishStreamIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopCh:
			return rpcError(ctx, RPCPublishStream, rpcID, codes.Unavailable, CodeUnavailable, msgUnavailable)
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-idle.C:
			return rpcError(ctx, RPCPublishStream, rpcID, codes.DeadlineExceeded, CodePublishSweeper,
				"No PublishRequest was sent in the last "+s.cfg.PublishStreamIdle.String()+". Closing the stream.")
		case r := <-reqs:
			s.record(Request{RPC: RPCPublishStream, Topic: r.GetTopicName(), Events: len(r.GetEvents()), RPCID: rpcID})
			resp, err := s.publishBatch(ctx, RPCPublishStream, rpcID, r)
			if err != nil {
				return err
			}
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
			idle.Reset(s.cfg.PublishStreamIdle)
			if err := s.delay(ctx); err != nil {
				return err
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}
