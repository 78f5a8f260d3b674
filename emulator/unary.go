package emulator

import (
	"context"

	"google.golang.org/grpc/codes"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// GetTopic implements the GetTopic RPC.
func (s *service) GetTopic(ctx context.Context, req *pubsubpb.TopicRequest) (*pubsubpb.TopicInfo, error) {
	rpcID, err := s.begin(ctx, RPCGetTopic)
	s.record(Request{RPC: RPCGetTopic, Topic: req.GetTopicName(), RPCID: rpcID})
	if err != nil {
		return nil, err
	}
	if req.GetTopicName() == "" {
		return nil, rpcError(ctx, RPCGetTopic, rpcID, codes.InvalidArgument, CodeTopicEmpty, "The topic name is empty. Provide a topic name.")
	}
	s.mu.Lock()
	t, ok := s.topics[req.GetTopicName()]
	var info *pubsubpb.TopicInfo
	if ok {
		info = &pubsubpb.TopicInfo{TopicName: t.name, TenantGuid: s.cfg.OrgID, CanPublish: t.canPublish, CanSubscribe: true, SchemaId: t.schemaID, RpcId: rpcID}
	}
	s.mu.Unlock()
	if !ok {
		return nil, rpcError(ctx, RPCGetTopic, rpcID, codes.PermissionDenied, CodeTopicNotFound, topicDenied(req.GetTopicName()))
	}
	if err := s.delay(ctx); err != nil {
		return nil, err
	}
	return info, nil
}

func topicDenied(name string) string {
	return "Topic " + name + " doesn't exist or you don't have permission to access it."
}

// GetSchema implements the GetSchema RPC.
func (s *service) GetSchema(ctx context.Context, req *pubsubpb.SchemaRequest) (*pubsubpb.SchemaInfo, error) {
	rpcID, err := s.begin(ctx, RPCGetSchema)
	s.record(Request{RPC: RPCGetSchema, SchemaID: req.GetSchemaId(), RPCID: rpcID})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sc, ok := s.schemas[req.GetSchemaId()]
	s.mu.Unlock()
	if !ok || req.GetSchemaId() == "" {
		return nil, rpcError(ctx, RPCGetSchema, rpcID, codes.NotFound, CodeSchemaNotFound,
			"The schema ID "+req.GetSchemaId()+" isn't valid. Provide a valid schema ID.")
	}
	if err := s.delay(ctx); err != nil {
		return nil, err
	}
	return &pubsubpb.SchemaInfo{SchemaJson: sc.json, SchemaId: sc.id, RpcId: rpcID}, nil
}
