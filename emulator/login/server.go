package login

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server answers the Salesforce login endpoints. It is an http.Handler; Serve,
// ServeTLS, Start and StartTLS run it on a listener of its own.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	users   map[string]*User // lower-cased username → user
	apps    map[string]*App  // client ID → app
	httpSrv *http.Server
	wg      sync.WaitGroup

	mu      sync.Mutex
	tokens  map[string]session
	logins  int
	stopped bool
}

// session is what an issued token stands for.
type session struct {
	user    *User
	expires time.Time
}

// New checks cfg, loads the apps' public keys and returns a Server.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		mux:    http.NewServeMux(),
		users:  make(map[string]*User, len(cfg.Users)),
		apps:   make(map[string]*App, len(cfg.Apps)),
		tokens: make(map[string]session),
	}
	for i := range cfg.Users {
		s.users[strings.ToLower(cfg.Users[i].Username)] = &cfg.Users[i]
	}
	for i := range cfg.Apps {
		s.apps[cfg.Apps[i].ClientID] = &cfg.Apps[i]
	}
	s.mux.HandleFunc("POST /services/Soap/u/{version}", s.handleSOAP)
	s.mux.HandleFunc("POST /services/Soap/u/{version}/{$}", s.handleSOAP)
	s.mux.HandleFunc("POST /services/oauth2/token", s.handleToken)
	s.mux.HandleFunc("GET /services/oauth2/userinfo", s.handleUserInfo)
	s.mux.HandleFunc("POST /services/oauth2/userinfo", s.handleUserInfo)
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Bound what a client can make us read; a login request is tiny.
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	s.mux.ServeHTTP(w, r)
}

// Serve answers plain HTTP on lis until Stop. It returns http.ErrServerClosed
// after Stop.
func (s *Server) Serve(lis net.Listener) error {
	return s.httpSrv.Serve(lis)
}

// CertConfig returns a TLS config that serves cert, for ServeTLS and StartTLS.
func CertConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// ServeTLS answers HTTPS on lis with tlsCfg (which must hold a certificate)
// until Stop. Plain and TLS listeners may be served at the same time.
func (s *Server) ServeTLS(lis net.Listener, tlsCfg *tls.Config) error {
	if tlsCfg == nil || len(tlsCfg.Certificates) == 0 && tlsCfg.GetCertificate == nil {
		return fmt.Errorf("login server TLS: %w: the tls.Config has no certificate", ErrConfig)
	}
	return s.httpSrv.Serve(tls.NewListener(lis, tlsCfg))
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves plain HTTP in the
// background. It returns the base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) Start(addr string) (string, error) {
	return s.start(addr, nil)
}

// StartTLS listens on addr and serves HTTPS with tlsCfg in the background. It
// returns the base URL, e.g. "https://127.0.0.1:41234".
func (s *Server) StartTLS(addr string, tlsCfg *tls.Config) (string, error) {
	if tlsCfg == nil || len(tlsCfg.Certificates) == 0 && tlsCfg.GetCertificate == nil {
		return "", fmt.Errorf("login server TLS: %w: the tls.Config has no certificate", ErrConfig)
	}
	return s.start(addr, tlsCfg)
}

func (s *Server) start(addr string, tlsCfg *tls.Config) (string, error) {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return "", ErrStopped
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("login server listen %s: %w", addr, err)
	}
	scheme := "http"
	serve := func() error { return s.Serve(lis) }
	if tlsCfg != nil {
		scheme = "https"
		serve = func() error { return s.ServeTLS(lis, tlsCfg) }
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("login server stopped", "addr", lis.Addr().String(), "err", err)
		}
	}()
	return scheme + "://" + lis.Addr().String(), nil
}

// Stop closes every listener and connection and waits for the servers started
// by Start and StartTLS to return. A stopped Server cannot be started again.
func (s *Server) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		_ = s.httpSrv.Close()
	}
	s.wg.Wait()
}

// ExpireTokens makes every token issued so far invalid for userinfo. (The
// gRPC emulator keeps its own token table; expire it there too.)
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Logins returns how many successful logins the server has answered, over
// every flow. Tests use it to see that a client logged in again or reused its
// cached token.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// issue creates and records an opaque access token for u.
func (s *Server) issue(u *User) (string, time.Duration) {
	lifetime := time.Duration(s.cfg.TokenLifetime)
	token := newToken(s.cfg.OrgID)
	now := s.cfg.Now()
	s.mu.Lock()
	for t, sess := range s.tokens {
		if !now.Before(sess.expires) {
			delete(s.tokens, t)
		}
	}
	s.tokens[token] = session{user: u, expires: now.Add(lifetime)}
	s.logins++
	s.mu.Unlock()
	if s.cfg.Issuer != nil {
		s.cfg.Issuer.AddToken(token, lifetime)
	}
	return token, lifetime
}

// lookup returns the user a still-valid token was issued to.
func (s *Server) lookup(token string) (*User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.tokens[token]
	if !ok || !s.cfg.Now().Before(sess.expires) {
		return nil, false
	}
	return sess.user, true
}

func (s *Server) user(username string) *User {
	return s.users[strings.ToLower(username)]
}

// instanceBase is what serverUrl and instance_url point at.
func (s *Server) instanceBase(r *http.Request) string {
	if s.cfg.InstanceURL != "" {
		return s.cfg.InstanceURL
	}
	return requestBase(r)
}

// loginBase is the URL clients log in at: the JWT audience and id URL base.
func (s *Server) loginBase(r *http.Request) string {
	if s.cfg.LoginURL != "" {
		return s.cfg.LoginURL
	}
	return requestBase(r)
}

// requestBase is scheme://host[:port] of the server as the client reached it.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// tokenAlphabet avoids '.', so a token can never be mistaken for a JWT.
const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"

// newToken returns an opaque token shaped like a Salesforce session ID:
// the 15-character org ID, "!", and 96 random characters.
func newToken(orgID string) string {
	var b [96]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return orgID[:15] + "!" + string(b[:])
}
