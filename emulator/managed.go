package emulator

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// ManagedSubscription is a ManagedEventSubscription record (PROTOCOL.md §4.7).
type ManagedSubscription struct {
	ID                  string // "" → a generated 18-char ID with prefix 18x
	DeveloperName       string
	Topic               string
	DefaultReplay       pubsubpb.ReplayPreset // LATEST or EARLIEST: where a subscription with no commit starts
	ErrorRecoveryReplay pubsubpb.ReplayPreset // LATEST or EARLIEST: used when the committed ID is no longer valid
	Stopped             bool                  // state STOP
}

type managedSub struct {
	cfg       ManagedSubscription
	committed []byte
	holder    string // rpc id of the stream holding it, "" = free
}

// AddManagedSubscription registers a managed subscription and returns its ID.
func (s *Server) AddManagedSubscription(m ManagedSubscription) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[m.Topic]; !ok {
		return "", fmt.Errorf("managed subscription %s: topic %s: %w", m.DeveloperName, m.Topic, ErrUnknownTopic)
	}
	if m.ID == "" {
		m.ID = fmt.Sprintf("18x%015d", len(s.managed)+1)
	}
	s.managed[m.ID] = &managedSub{cfg: m}
	return m.ID, nil
}

// CommittedReplayID returns the replay ID last committed on a managed subscription (by ID or developer name).
func (s *Server) CommittedReplayID(idOrName string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.findManagedLocked(idOrName, idOrName); m != nil {
		return append([]byte(nil), m.committed...)
	}
	return nil
}

func (s *Server) findManagedLocked(id, name string) *managedSub {
	if m, ok := s.managed[id]; ok && id != "" {
		return m
	}
	// 15-char IDs address the same record as their 18-char form.
	for k, m := range s.managed {
		if id != "" && len(id) == 15 && strings.HasPrefix(k, id) {
			return m
		}
		if name != "" && m.cfg.DeveloperName == name {
			return m
		}
	}
	return nil
}

// ManagedSubscribe implements the ManagedSubscribe RPC: Subscribe semantics, the start position taken from the
// server-side commit, commits acknowledged in CommitReplayResponse, one holder at a time.
func (s *service) ManagedSubscribe(stream grpc.BidiStreamingServer[pubsubpb.ManagedFetchRequest, pubsubpb.ManagedFetchResponse]) error {
	const rpc = RPCManagedSubscribe
	ctx := stream.Context()
	done := make(chan struct{})
	defer close(done)
	st, ok, err := openStream(s, ctx, rpc, stream.Recv, done)
	if !ok {
		return err
	}
	rpcID, first := st.rpcID, st.first
	subName := first.GetSubscriptionId()
	if subName == "" {
		subName = first.GetDeveloperName()
	}
	s.mu.Lock()
	var topicName string
	if m := s.findManagedLocked(first.GetSubscriptionId(), first.GetDeveloperName()); m != nil {
		topicName = m.cfg.Topic
	}
	s.mu.Unlock()
	s.record(Request{RPC: rpc, Topic: topicName, Subscription: subName, NumRequested: first.GetNumRequested(), RPCID: rpcID})
	fail := func(code codes.Code, errorCode, msg string) error {
		return rpcError(ctx, rpc, rpcID, code, errorCode, msg)
	}
	switch {
	case first.GetCommitReplayIdRequest() != nil:
		return fail(codes.InvalidArgument, CodeManagedCommitFirst, "A commit request isn't allowed in the first ManagedFetchRequest.")
	case first.GetSubscriptionId() == "" && first.GetDeveloperName() == "":
		return fail(codes.InvalidArgument, CodeManagedIDEmpty, "Provide a subscription ID or a developer name.")
	case first.GetNumRequested() <= 0:
		return fail(codes.InvalidArgument, CodeManagedEventsBad, "The number of requested events must be greater than zero.")
	}
	s.mu.Lock()
	m := s.findManagedLocked(first.GetSubscriptionId(), first.GetDeveloperName())
	var (
		t      *topic
		cursor uint64
		errC   codes.Code
		errMsg string
		errCod string
	)
	switch {
	case m == nil && first.GetSubscriptionId() != "":
		errC, errCod, errMsg = codes.NotFound, CodeManagedNotFound, "The managed subscription ID "+first.GetSubscriptionId()+" wasn't found."
	case m == nil:
		errC, errCod, errMsg = codes.NotFound, CodeManagedDevNotFound, "The managed subscription "+first.GetDeveloperName()+" wasn't found."
	case m.cfg.Stopped:
		errC, errCod, errMsg = codes.FailedPrecondition, CodeManagedStopped, "The managed subscription is in the STOP state."
	case m.holder != "":
		errC, errCod, errMsg = codes.AlreadyExists, CodeManagedActive, "The managed subscription is already active in another client."
	default:
		t = s.topics[m.cfg.Topic]
		ok := false
		if m.committed != nil {
			cursor, ok = s.startCursorLocked(t, pubsubpb.ReplayPreset_CUSTOM, m.committed)
			if !ok {
				cursor, _ = s.startCursorLocked(t, m.cfg.ErrorRecoveryReplay, nil)
			}
		} else {
			cursor, _ = s.startCursorLocked(t, m.cfg.DefaultReplay, nil)
		}
		m.holder = rpcID
		t.subscribers++ // run decrements it
	}
	s.mu.Unlock()
	if errCod != "" {
		return fail(errC, errCod, errMsg)
	}
	defer func() {
		s.mu.Lock()
		if m.holder == rpcID {
			m.holder = ""
		}
		s.mu.Unlock()
	}()

	reqs := forward(s, st.raw, done, func(r *pubsubpb.ManagedFetchRequest) (Request, fetchReq) {
		rec := Request{RPC: rpc, NumRequested: r.GetNumRequested(), RPCID: rpcID}
		if c := r.GetCommitReplayIdRequest(); c != nil {
			rec.CommitReplayID = c.GetReplayId()
		}
		return rec, fetchReq{num: r.GetNumRequested(), commit: r.GetCommitReplayIdRequest()}
	})
	sub := &subscription{
		s: s.Server, ctx: ctx, rpc: rpc, rpcID: rpcID, topic: t, cursor: cursor,
		latest:        EncodeReplayID(cursor),
		commitTimeout: s.cfg.ManagedCommitTimeout,
		send: func(r subResponse) error {
			return stream.Send(&pubsubpb.ManagedFetchResponse{Events: r.events, LatestReplayId: r.latest, RpcId: rpcID,
				PendingNumRequested: r.pending, CommitResponse: r.commit})
		},
		onCommit: func(c *pubsubpb.CommitReplayRequest) *pubsubpb.CommitReplayResponse {
			resp := &pubsubpb.CommitReplayResponse{CommitRequestId: c.GetCommitRequestId(), ReplayId: c.GetReplayId(), ProcessTime: s.now().UnixMilli()}
			s.mu.Lock()
			defer s.mu.Unlock()
			n, ok := DecodeReplayID(c.GetReplayId())
			if !ok || n > s.counter || n < s.cfg.FirstReplayID-1 {
				resp.Error = &pubsubpb.Error{Code: pubsubpb.ErrorCode_COMMIT, Msg: "The replay ID in the commit request isn't valid."}
				return resp
			}
			m.committed = append([]byte(nil), c.GetReplayId()...)
			return resp
		},
	}
	sub.addCredit(first.GetNumRequested())
	return sub.run(reqs, st.errc)
}
