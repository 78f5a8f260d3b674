package emulator

import (
	"context"
	"errors"
	"io"
	"sort"
	"time"

	"google.golang.org/grpc/codes"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// MaxCredit is the most events a subscription may have requested and not yet received.
const MaxCredit = 100

// maxResponseBytes keeps one response well under the 4 MB gRPC message limit of clients.
const maxResponseBytes = 3 << 20

// fetchReq is a FetchRequest or ManagedFetchRequest after the first, reduced to what the loop needs.
type fetchReq struct {
	topic  string // "" = not named
	num    int32
	commit *pubsubpb.CommitReplayRequest
}

// subResponse is one FetchResponse or ManagedFetchResponse.
type subResponse struct {
	events  []*pubsubpb.ConsumerEvent
	latest  []byte
	pending int32
	commit  *pubsubpb.CommitReplayResponse
}

// subscription is the state of one Subscribe or ManagedSubscribe stream after its first request.
type subscription struct {
	s         *Server
	ctx       context.Context
	rpc       string
	rpcID     string
	topic     *topic
	cursor    uint64 // events with a larger counter are still to be delivered
	pending   int32
	delivered int
	endGen    uint64
	endBase   int
	lastSend  time.Time
	latest    []byte
	send      func(subResponse) error
	// onCommit handles a commit request (ManagedSubscribe only).
	onCommit func(*pubsubpb.CommitReplayRequest) *pubsubpb.CommitReplayResponse
	// commitTimeout > 0 ends the stream with DEADLINE_EXCEEDED when no commit came for that long.
	commitTimeout time.Duration
	lastCommit    time.Time
}

// startCursor resolves a replay preset on topic t into a cursor. Callers hold s.mu. ok=false means the replay ID
// is malformed, unknown or purged.
func (s *Server) startCursorLocked(t *topic, preset pubsubpb.ReplayPreset, replayID []byte) (uint64, bool) {
	s.expireLocked(t)
	switch preset {
	case pubsubpb.ReplayPreset_EARLIEST:
		return t.floor, true
	case pubsubpb.ReplayPreset_CUSTOM:
		n, ok := DecodeReplayID(replayID)
		if !ok || n <= t.floor || n > s.counter || n < s.cfg.FirstReplayID-1 {
			return 0, false
		}
		return n, true
	default:
		return s.counter, true
	}
}

// addCredit adds n to the pending credit, capped at MaxCredit.
func (sub *subscription) addCredit(n int32) {
	sub.pending += n
	if sub.pending > MaxCredit || sub.pending < 0 {
		sub.pending = MaxCredit
	}
}

// take returns up to limit events after the cursor, and the topic's notify channel to wait on when there are none.
func (sub *subscription) take(limit int) ([]*pubsubpb.ConsumerEvent, <-chan struct{}) {
	s := sub.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t := sub.topic
	s.expireLocked(t)
	i := sort.Search(len(t.log), func(i int) bool { return t.log[i].counter > sub.cursor })
	var out []*pubsubpb.ConsumerEvent
	size := 0
	for ; i < len(t.log) && len(out) < limit; i++ {
		st := t.log[i]
		if len(out) > 0 && size+len(st.ev.Payload) > maxResponseBytes {
			break
		}
		size += len(st.ev.Payload)
		pe := &pubsubpb.ProducerEvent{Id: st.ev.ID, SchemaId: st.ev.SchemaID, Payload: st.ev.Payload}
		for k, v := range st.ev.Headers {
			pe.Headers = append(pe.Headers, &pubsubpb.EventHeader{Key: k, Value: v})
		}
		sort.Slice(pe.Headers, func(a, b int) bool { return pe.Headers[a].Key < pe.Headers[b].Key })
		out = append(out, &pubsubpb.ConsumerEvent{Event: pe, ReplayId: EncodeReplayID(st.counter)})
		sub.cursor = st.counter
	}
	if len(out) == 0 {
		s.demandLocked(t.name, sub.pending)
	}
	return out, t.notify
}

// keepalive advances the position past events of other topics (as the real bus does) and returns it, unless
// events arrived meanwhile.
func (sub *subscription) keepalive() ([]byte, bool) {
	s := sub.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t := sub.topic
	if n := len(t.log); n > 0 && t.log[n-1].counter > sub.cursor {
		return nil, false
	}
	s.counter++
	sub.cursor = s.counter
	return EncodeReplayID(s.counter), true
}

// run serves the stream until it ends; reqs and recvErr come from the receiving goroutine.
func (sub *subscription) run(reqs <-chan fetchReq, recvErr <-chan error) error {
	s := sub.s
	defer func() {
		s.mu.Lock()
		sub.topic.subscribers--
		s.mu.Unlock()
	}()
	sub.lastSend = time.Now()
	sub.lastCommit = sub.lastSend
	for {
		s.mu.Lock()
		stall, end, faultCh := s.faults.stall, s.faults.end, s.faultCh
		s.mu.Unlock()
		if end.gen != sub.endGen {
			sub.endGen, sub.endBase = end.gen, sub.delivered
		}
		remaining := -1
		if end.n > 0 {
			remaining = end.n - (sub.delivered - sub.endBase)
		}
		var notify <-chan struct{}
		if !stall {
			if remaining == 0 {
				if end.code == codes.OK {
					return nil
				}
				msg := msgUnavailable
				if end.errorCode == "" {
					msg = "stream terminated by RST_STREAM with error code: INTERNAL_ERROR"
				}
				return rpcError(sub.ctx, sub.rpc, sub.rpcID, end.code, end.errorCode, msg)
			}
			if sub.pending > 0 {
				limit := int(sub.pending)
				if remaining > 0 && remaining < limit {
					limit = remaining
				}
				evs, ch := sub.take(limit)
				if len(evs) > 0 {
					sub.pending -= int32(len(evs))
					sub.delivered += len(evs)
					sub.latest = evs[len(evs)-1].ReplayId
					if err := sub.emit(subResponse{events: evs}); err != nil {
						return err
					}
					continue
				}
				notify = ch
			}
		}
		var timer *time.Timer
		var timerC <-chan time.Time
		if !stall {
			wait := s.cfg.IdleClose
			if sub.pending > 0 {
				wait = s.cfg.Keepalive
			}
			d := time.Until(sub.lastSend.Add(wait))
			if sub.commitTimeout > 0 {
				if c := time.Until(sub.lastCommit.Add(sub.commitTimeout)); c < d {
					d = c
				}
			}
			timer = time.NewTimer(max(d, 0))
			timerC = timer.C
		}
		err := sub.wait(reqs, recvErr, notify, faultCh, timerC)
		if timer != nil {
			timer.Stop()
		}
		if errors.Is(err, errRecvClosed) {
			// The client closed its side; keep serving the credit it gave until it goes away.
			recvErr = nil
			continue
		}
		if err != nil {
			if errors.Is(err, errDone) {
				return nil
			}
			return err
		}
	}
}

// errDone ends a stream with status OK; errRecvClosed reports the client's half-close.
var (
	errDone       = errors.New("stream done")
	errRecvClosed = errors.New("client closed send side")
)

// wait blocks until something happens and handles it.
func (sub *subscription) wait(reqs <-chan fetchReq, recvErr <-chan error, notify, faultCh <-chan struct{}, timerC <-chan time.Time) error {
	s := sub.s
	select {
	case <-sub.ctx.Done():
		return sub.ctx.Err()
	case <-s.stopCh:
		return rpcError(sub.ctx, sub.rpc, sub.rpcID, codes.Unavailable, CodeUnavailable, msgUnavailable)
	case <-faultCh:
	case <-notify:
	case <-timerC:
		if sub.commitTimeout > 0 && !time.Now().Before(sub.lastCommit.Add(sub.commitTimeout)) {
			return rpcError(sub.ctx, sub.rpc, sub.rpcID, codes.DeadlineExceeded, CodeManagedNoCommit,
				"No CommitReplayRequests sent in the last "+sub.commitTimeout.String()+". Closing managed subscription.")
		}
		if sub.pending == 0 {
			if time.Since(sub.lastSend) >= s.cfg.IdleClose {
				s.log.Debug("closing idle stream", "rpc", sub.rpc, "topic", sub.topic.name, "rpc_id", sub.rpcID)
				return errDone
			}
			return nil
		}
		if time.Since(sub.lastSend) < s.cfg.Keepalive {
			return nil
		}
		if latest, ok := sub.keepalive(); ok {
			sub.latest = latest
			return sub.emit(subResponse{})
		}
	case err := <-recvErr:
		if errors.Is(err, io.EOF) {
			return errRecvClosed
		}
		return err
	case r := <-reqs:
		return sub.handle(r)
	}
	return nil
}

// handle applies one later request.
func (sub *subscription) handle(r fetchReq) error {
	if r.topic != "" && r.topic != sub.topic.name {
		return rpcError(sub.ctx, sub.rpc, sub.rpcID, codes.InvalidArgument, CodeTopicMismatch,
			"The topic name in the request, "+r.topic+", doesn't match the topic of the subscription, "+sub.topic.name+".")
	}
	if r.commit != nil && sub.onCommit != nil {
		sub.lastCommit = time.Now()
		cr := sub.onCommit(r.commit)
		if r.num > 0 {
			sub.addCredit(r.num)
		}
		return sub.emit(subResponse{commit: cr})
	}
	if r.num <= 0 {
		return rpcError(sub.ctx, sub.rpc, sub.rpcID, codes.InvalidArgument, requestedInvalidCode(sub.rpc),
			"The number of requested events must be greater than zero.")
	}
	sub.addCredit(r.num)
	return nil
}

func requestedInvalidCode(rpc string) string {
	if rpc == RPCManagedSubscribe {
		return CodeManagedEventsBad
	}
	return CodeRequestedInvalid
}

// emit fills in the common fields and sends one response after the configured latency.
func (sub *subscription) emit(r subResponse) error {
	if err := sub.s.delay(sub.ctx); err != nil {
		return err
	}
	if r.latest == nil {
		r.latest = sub.latest
	}
	r.pending = sub.pending
	if err := sub.send(r); err != nil {
		return err
	}
	sub.lastSend = time.Now()
	return nil
}
