package auth

import (
	"bytes"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/emulator/login"
	"github.com/sfarchive/sfarchive/internal/testkeys"
)

const (
	testUser     = "archiver@example.com"
	testPassword = "pa$$&<word>]]>"
	testSecToken = "SECTOKEN9876"
	testUserID   = "005000000000042AAA"
	testClientID = "3MVG9emulatorclient"
	testSecret   = "client-secret-0123456789"
	testOrgID    = "00D000000000777AAA"
)

// testKeys are the connected app's key and a stranger's, made once per test binary (internal/testkeys).
func testKeys() [2]*rsa.PrivateKey {
	app, stranger := testkeys.Pair()
	return [2]*rsa.PrivateKey{app, stranger}
}

func publicPEM(_ testing.TB, k *rsa.PrivateKey) string { return testkeys.PublicPEM(k) }

// issued records the tokens the login emulator hands to the gRPC side.
type issued struct {
	mu     sync.Mutex
	tokens []string
}

func (i *issued) AddToken(token string, _ time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.tokens = append(i.tokens, token)
}

func (i *issued) has(token string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, t := range i.tokens {
		if t == token {
			return true
		}
	}
	return false
}

// fixture is a login emulator on loopback HTTP or HTTPS and a Login for it.
type fixture struct {
	srv    *login.Server
	ts     *httptest.Server
	issued *issued
	logs   *syncBuffer
	l      Login
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newFixture starts the emulator's login server; wrap, if set, wraps its handler.
func newFixture(t testing.TB, useTLS bool, mutate func(*login.Config), wrap func(http.Handler) http.Handler) *fixture {
	t.Helper()
	f := &fixture{issued: &issued{}, logs: &syncBuffer{}}
	cfg := login.Config{
		OrgID: testOrgID,
		Users: []login.User{{Username: testUser, Password: testPassword, SecurityToken: testSecToken, UserID: testUserID}},
		Apps: []login.App{{
			ClientID: testClientID, ClientSecret: testSecret,
			PublicKeyPEM: publicPEM(t, testKeys()[0]), RunAs: testUser,
		}},
		Issuer: f.issued,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := login.New(cfg)
	if err != nil {
		t.Fatalf("login.New: %v", err)
	}
	f.srv = srv
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	if useTLS {
		f.ts = httptest.NewTLSServer(h)
	} else {
		f.ts = httptest.NewServer(h)
	}
	t.Cleanup(f.ts.Close)
	f.l = Login{
		LoginURL:   f.ts.URL,
		HTTPClient: f.ts.Client(),
		Logger:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return f
}

func schemes() map[string]bool { return map[string]bool{"http": false, "https": true} }
