package emulator

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
)

// RPC names accepted by FailCall and recorded in Request.RPC.
const (
	RPCSubscribe        = "Subscribe"
	RPCGetSchema        = "GetSchema"
	RPCGetTopic         = "GetTopic"
	RPCPublish          = "Publish"
	RPCPublishStream    = "PublishStream"
	RPCManagedSubscribe = "ManagedSubscribe"
)

type failure struct {
	rpc       string
	at        int // call number (of calls[rpc]) that fails
	code      codes.Code
	errorCode string
	msg       string
}

type endAfter struct {
	n         int
	code      codes.Code
	errorCode string
	gen       uint64 // bumped on every EndStreamsAfter call
}

type faultState struct {
	calls     map[string]int
	failures  []failure
	end       endAfter
	stall     bool
	latency   time.Duration
	throttle  float64 // calls per second allowed; 0 = off
	tokens    float64
	lastFill  time.Time
	throttled int
}

// FailCall makes the nth call of rpc from now (1 = the next one) fail with code, the error-code trailer
// errorCode ("" = no error-code trailer, like a transport reset) and message msg ("" = a default).
// For streaming RPCs the stream fails when it opens.
func (s *Server) FailCall(rpc string, nth int, code codes.Code, errorCode, msg string) {
	if nth < 1 {
		nth = 1
	}
	if msg == "" {
		msg = msgUnavailable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.calls == nil {
		s.faults.calls = make(map[string]int)
	}
	s.faults.failures = append(s.faults.failures, failure{rpc: rpc, at: s.faults.calls[rpc] + nth, code: code, errorCode: errorCode, msg: msg})
}

// takeFailure counts a call of rpc and returns the failure planned for it, if any.
func (s *Server) takeFailure(rpc string) (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.calls == nil {
		s.faults.calls = make(map[string]int)
	}
	s.faults.calls[rpc]++
	n := s.faults.calls[rpc]
	for i, f := range s.faults.failures {
		if f.rpc == rpc && f.at == n {
			s.faults.failures = append(s.faults.failures[:i], s.faults.failures[i+1:]...)
			return f, true
		}
	}
	return failure{}, false
}

// Calls returns how many times rpc has been called.
func (s *Server) Calls(rpc string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.calls[rpc]
}

// EndStreamsAfter makes every Subscribe and ManagedSubscribe stream (open now or later) end after n more
// events with code and error-code trailer errorCode ("" = none; codes.OK ends the stream cleanly). The setting
// stays until EndStreamsAfter(0, ...) clears it; a stream opened later counts from its first event.
func (s *Server) EndStreamsAfter(n int, code codes.Code, errorCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.end = endAfter{n: n, code: code, errorCode: errorCode, gen: s.faults.end.gen + 1}
	signal(&s.faultCh)
}

// Stall makes subscribe streams send nothing at all — no events, no keepalives, no idle close — while on.
// Requests are still read and their credit counted.
func (s *Server) Stall(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.stall = on
	signal(&s.faultCh)
}

// SetLatency delays every response (unary results and each stream message) by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// Throttle limits new RPC calls to perSecond (a token bucket with a burst of one second); calls beyond it fail
// with RESOURCE_EXHAUSTED and error-code service.protection.triggered. 0 switches throttling off.
func (s *Server) Throttle(perSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.throttle = perSecond
	s.faults.tokens = perSecond
	s.faults.lastFill = time.Now()
}

// Throttled returns how many calls throttling rejected.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.throttled
}

func (s *Server) throttled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	if f.throttle <= 0 {
		return false
	}
	now := time.Now() // wall clock, like the other timers
	f.tokens += now.Sub(f.lastFill).Seconds() * f.throttle
	f.lastFill = now
	if f.tokens > f.throttle {
		f.tokens = f.throttle
	}
	if f.tokens < 1 {
		f.throttled++
		return true
	}
	f.tokens--
	return false
}

// delay sleeps for the configured latency, or until ctx ends.
func (s *Server) delay(ctx context.Context) error {
	s.mu.Lock()
	d := s.faults.latency
	s.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Request is one request the server received, for tests to assert on what a client sent.
type Request struct {
	Time           time.Time
	RPC            string // RPCSubscribe, RPCManagedSubscribe, RPCPublish, ...
	Topic          string
	Preset         string // LATEST / EARLIEST / CUSTOM on a first FetchRequest, "" otherwise
	ReplayID       []byte
	NumRequested   int32
	CommitReplayID []byte // ManagedSubscribe commits
	Subscription   string // ManagedSubscribe first request: subscription_id, or developer_name when that is empty
	Events         int    // publish requests: number of events
	SchemaID       string // GetSchema
	RPCID          string
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Time = s.now()
	if len(s.requests) >= 2*MaxRequestLog {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)-MaxRequestLog:]...)
	}
	s.requests = append(s.requests, r)
}

// MaxRequestLog bounds the request log of a long-running server: beyond twice this many entries the oldest are
// dropped, keeping the newest MaxRequestLog.
const MaxRequestLog = 100_000

// Requests returns the requests received so far (all of them in tests; see MaxRequestLog), in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}
