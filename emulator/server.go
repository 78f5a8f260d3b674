package emulator

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// Config configures a Server. The zero value is usable.
type Config struct {
	OrgID       string        // default DefaultOrgID; tenantid must be it (15 or 18 chars, or core/<sub>/<id>)
	InstanceURL string        // what clients must send in instanceurl; "" = accept any non-empty value
	Retention   time.Duration // default 72h
	Keepalive   time.Duration // default 270s: empty FetchResponse when credit is pending and no events
	IdleClose   time.Duration // default 60s: close a Subscribe stream with OK after this long with zero credit
	// PublishStreamIdle closes a PublishStream that sent no PublishRequest for this long (default 70s).
	PublishStreamIdle time.Duration
	// ManagedCommitTimeout closes a ManagedSubscribe stream with DEADLINE_EXCEEDED when no commit arrived for
	// this long (default 1800s).
	ManagedCommitTimeout time.Duration
	// FirstReplayID is the counter of the first replay ID issued (default 1000001).
	FirstReplayID uint64
	// NoBuiltinTopics skips the built-in topics.
	NoBuiltinTopics bool
	Now             func() time.Time
	Logger          *slog.Logger
}

// DefaultOrgID is the org ID used when Config.OrgID is empty.
const DefaultOrgID = "00D000000000001AAA"

// Server is an in-process Pub/Sub API server. Create it with New; it serves gRPC after Serve, ServeTLS or Start.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	topics    map[string]*topic
	schemas   map[string]*schema
	tokens    map[string]time.Time // token → expiry (zero = never)
	counter   uint64               // last replay counter issued
	requests  []Request
	faults    faultState
	managed   map[string]*managedSub
	stopped   bool
	stopCh    chan struct{}
	faultCh   chan struct{} // closed and replaced when a fault setting changes
	demandCh  chan struct{} // closed and replaced when a subscriber waits with credit at the tip
	demand    map[string]int32
	grpcSrvs  []*grpc.Server
	listeners []net.Listener
	wg        sync.WaitGroup
}

// New returns a Server with the built-in topics registered.
func New(cfg Config) (*Server, error) {
	if cfg.OrgID == "" {
		cfg.OrgID = DefaultOrgID
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 72 * time.Hour
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 270 * time.Second
	}
	if cfg.IdleClose <= 0 {
		cfg.IdleClose = 60 * time.Second
	}
	if cfg.PublishStreamIdle <= 0 {
		cfg.PublishStreamIdle = 70 * time.Second
	}
	if cfg.ManagedCommitTimeout <= 0 {
		cfg.ManagedCommitTimeout = 1800 * time.Second
	}
	if cfg.FirstReplayID == 0 {
		cfg.FirstReplayID = 1000001
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		topics:   make(map[string]*topic),
		schemas:  make(map[string]*schema),
		tokens:   make(map[string]time.Time),
		managed:  make(map[string]*managedSub),
		counter:  cfg.FirstReplayID - 1,
		stopCh:   make(chan struct{}),
		faultCh:  make(chan struct{}),
		demandCh: make(chan struct{}),
	}
	if !cfg.NoBuiltinTopics {
		for _, bt := range builtinTopics {
			js, err := BuiltinSchema(bt.file)
			if err != nil {
				return nil, err
			}
			id := bt.schemaID
			if id == "" {
				id = SchemaFingerprint(js)
			}
			if err := s.addTopic(bt.name, id, js, bt.canPublish); err != nil {
				return nil, fmt.Errorf("built-in topic %s: %w", bt.name, err)
			}
		}
		// The standard channel carries the other entities too.
		for _, other := range []string{"/data/ContactChangeEvent", "/data/OpportunityChangeEvent"} {
			s.topics["/data/ChangeEvents"].schemaIDs = append(s.topics["/data/ChangeEvents"].schemaIDs, s.topics[other].schemaID)
		}
	}
	return s, nil
}

// service implements pubsubpb.PubSubServer. It is a separate type because Server's Publish is the Go test hook.
type service struct {
	pubsubpb.UnimplementedPubSubServer
	*Server
}

// Service returns the gRPC service implementation, for registering on a caller's own grpc.Server (e.g. over
// bufconn). Serve, ServeTLS and Start do this themselves.
func (s *Server) Service() pubsubpb.PubSubServer { return &service{Server: s} }

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// OrgID returns the org ID clients must send as tenantid.
func (s *Server) OrgID() string { return s.cfg.OrgID }

func (s *Server) now() time.Time { return s.cfg.Now() }

// Serve serves plaintext gRPC on lis until Stop. It returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	return s.serve(lis, nil)
}

// ServeTLS serves gRPC over TLS with cert on lis until Stop.
func (s *Server) ServeTLS(lis net.Listener, cert tls.Certificate) error {
	return s.serve(lis, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func (s *Server) serve(lis net.Listener, tc *tls.Config) error {
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(16 << 20)}
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	g := grpc.NewServer(opts...)
	pubsubpb.RegisterPubSubServer(g, s.Service())
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		_ = lis.Close()
		return ErrStopped
	}
	s.grpcSrvs = append(s.grpcSrvs, g)
	s.listeners = append(s.listeners, lis)
	s.mu.Unlock()
	s.log.Info("emulator serving", "addr", lis.Addr().String(), "tls", tc != nil)
	if err := g.Serve(lis); err != nil && err != grpc.ErrServerStopped {
		return fmt.Errorf("serve %s: %w", lis.Addr(), err)
	}
	return nil
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves plaintext gRPC in the background. It returns the
// address actually bound.
func (s *Server) Start(addr string) (string, error) {
	return s.start(addr, nil)
}

// StartTLS is Start with TLS using cert (see GenerateCert).
func (s *Server) StartTLS(addr string, cert tls.Certificate) (string, error) {
	return s.start(addr, &cert)
}

func (s *Server) start(addr string, cert *tls.Certificate) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if cert != nil {
			err = s.ServeTLS(lis, *cert)
		} else {
			err = s.Serve(lis)
		}
		if err != nil {
			s.log.Error("emulator serve failed", "addr", lis.Addr().String(), "err", err)
		}
	}()
	return lis.Addr().String(), nil
}

// Stop ends every stream, stops the servers and waits for the background goroutines. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stopCh)
	}
	srvs := s.grpcSrvs
	s.grpcSrvs = nil
	s.mu.Unlock()
	for _, g := range srvs {
		g.Stop()
	}
	s.wg.Wait()
}

// AddToken accepts token as an accesstoken for lifetime (0 = never expires).
func (s *Server) AddToken(token string, lifetime time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var exp time.Time
	if lifetime > 0 {
		exp = s.now().Add(lifetime)
	}
	s.tokens[token] = exp
}

// ExpireTokens makes every token expire now. Streams already open go on (the docs imply they are not cut).
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for t := range s.tokens {
		s.tokens[t] = now.Add(-time.Nanosecond)
	}
}

// checkAuth validates the accesstoken, instanceurl and tenantid metadata (keys case-insensitive).
func (s *Server) checkAuth(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(key string) string {
		for k, v := range md {
			if strings.EqualFold(k, key) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	token, inst, tenant := get("accesstoken"), get("instanceurl"), get("tenantid")
	if token == "" || inst == "" || tenant == "" {
		return false
	}
	if s.cfg.InstanceURL != "" && !strings.EqualFold(strings.TrimRight(inst, "/"), strings.TrimRight(s.cfg.InstanceURL, "/")) {
		return false
	}
	if !s.tenantMatches(tenant) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[token]
	if !ok {
		return false
	}
	return exp.IsZero() || s.now().Before(exp)
}

func (s *Server) tenantMatches(tenant string) bool {
	if i := strings.LastIndex(tenant, "/"); i >= 0 {
		if !strings.HasPrefix(tenant, "core/") {
			return false
		}
		tenant = tenant[i+1:]
	}
	org := s.cfg.OrgID
	switch {
	case tenant == org:
		return true
	case len(org) == 18 && len(tenant) == 15:
		return tenant == org[:15]
	case len(org) == 15 && len(tenant) == 18:
		return tenant[:15] == org
	}
	return false
}

// begin is run at the start of every RPC: it logs, applies throttling and injected failures, and checks auth.
// It returns the rpc id and a non-nil error when the call must fail.
func (s *Server) begin(ctx context.Context, rpc string) (string, error) {
	rpcID := newUUID()
	if f, ok := s.takeFailure(rpc); ok {
		return rpcID, rpcError(ctx, rpc, rpcID, f.code, f.errorCode, f.msg)
	}
	if s.throttled() {
		return rpcID, rpcError(ctx, rpc, rpcID, codes.ResourceExhausted, CodeProtection,
			"The request was throttled. Reduce the rate of requests and try again.")
	}
	if !s.checkAuth(ctx) {
		return rpcID, rpcError(ctx, rpc, rpcID, codes.Unauthenticated, CodeAuthError, msgAuth)
	}
	return rpcID, nil
}

// signal closes *ch and replaces it; callers hold s.mu.
func signal(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}
