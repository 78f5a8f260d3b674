package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStatic(t *testing.T) {
	const token = "00D000000000777!secret-token-value"
	src := NewStatic(token, "https://acme.my.salesforce.com/", testOrgID)
	c, err := src.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessToken != token || c.InstanceURL != "https://acme.my.salesforce.com" || c.OrgID != testOrgID {
		t.Fatalf("credentials %v", c)
	}
	_, err = src.Refresh(context.Background())
	if !errors.Is(err, ErrCannotRefresh) {
		t.Fatalf("Refresh: %v, want ErrCannotRefresh", err)
	}
	for _, want := range []string{"expired", "supply a new token", "login method"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Refresh error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), token) {
		t.Fatal("the token appears in the error")
	}

	bad := map[string]Source{
		"empty token":  NewStatic("", "https://acme.my.salesforce.com", testOrgID),
		"no org":       NewStatic(token, "https://acme.my.salesforce.com", ""),
		"bad instance": NewStatic(token, "acme.my.salesforce.com", testOrgID),
		"ftp instance": NewStatic(token, "ftp://acme.my.salesforce.com", testOrgID),
	}
	for name, s := range bad {
		if _, err := s.Credentials(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Credentials err = %v, want ErrConfig", name, err)
		}
		if _, err := s.Refresh(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Refresh err = %v, want ErrConfig", name, err)
		}
	}
}

func TestCredentialsRedacted(t *testing.T) {
	const token = "super-secret-token-123"
	c := Credentials{AccessToken: token, InstanceURL: "https://acme.my.salesforce.com", OrgID: testOrgID}
	var logBuf strings.Builder
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logBuf, nil), slog.NewTextHandler(&logBuf, nil)} {
		slog.New(h).Info("creds", "credentials", c, "ptr", &c)
	}
	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"%s":       fmt.Sprintf("%s", c),
		"ptr":      fmt.Sprintf("%v %+v", &c, &c),
		"slog":     logBuf.String(),
		"err":      fmt.Errorf("wrapped %v", c).Error(),
		"%d %x %q": fmt.Sprintf("%d %x %q %10s", c, c, c, c),
		"json":     func() string { b, _ := json.Marshal(map[string]any{"c": c}); return string(b) }(),
	}
	for name, out := range outputs {
		if strings.Contains(out, token) {
			t.Errorf("%s prints the token: %s", name, out)
		}
		if !strings.Contains(out, testOrgID) || !strings.Contains(out, redacted) {
			t.Errorf("%s lacks the org ID or the redaction mark: %s", name, out)
		}
	}
	if s := (Credentials{}).String(); strings.Contains(s, redacted) {
		t.Errorf("empty credentials claim a token: %s", s)
	}
}

func TestNormalizeLoginURL(t *testing.T) {
	ok := map[string]string{
		"":                                            DefaultLoginURL,
		"https://login.salesforce.com":                DefaultLoginURL,
		"https://login.salesforce.com/":               DefaultLoginURL,
		" https://TEST.salesforce.com ":               SandboxLoginURL,
		"https://acme.my.salesforce.com":              "https://acme.my.salesforce.com",
		"http://localhost:8080":                       "http://localhost:8080",
		"http://127.0.0.1:41234/":                     "http://127.0.0.1:41234",
		"http://[::1]:9000":                           "http://[::1]:9000",
		"https://acme--uat.sandbox.my.salesforce.com": "https://acme--uat.sandbox.my.salesforce.com",
	}
	for in, want := range ok {
		got, err := NormalizeLoginURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeLoginURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"login.salesforce.com":                       "did you mean https://login.salesforce.com",
		"http://login.salesforce.com":                "must use https",
		"ftp://login.salesforce.com":                 "https://",
		"https://login.salesforce.com/services/Soap": "must not have a path",
		"https://login.salesforce.com?x=1":           "query",
		"https://user:hunter2@login.salesforce.com":  "user name or password",
		"https://":                         "no host",
		"https://acme.lightning.force.com": "https://acme.my.salesforce.com",
		"https://%zz":                      "not a valid URL",
	}
	for in, want := range bad {
		_, err := NormalizeLoginURL(in)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("NormalizeLoginURL(%q) err = %v, want ErrConfig mentioning %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the password in the URL appears in the error: %v", err)
		}
	}
}

func TestSettingsErrors(t *testing.T) {
	key := testKeys()[0]
	cases := map[string]Source{
		"bad login URL":    NewSOAP(Login{LoginURL: "login.salesforce.com"}, "u", "p"),
		"bad API version":  NewSOAP(Login{APIVersion: "v62"}, "u", "p"),
		"soap no user":     NewSOAP(Login{}, "", "p"),
		"soap no password": NewSOAP(Login{}, "u", ""),
		"cc no client":     NewClientCredentials(Login{}, "", "s"),
		"cc no secret":     NewClientCredentials(Login{}, "c", ""),
		"jwt no client":    NewJWT(Login{}, "", "u", key),
		"jwt no user":      NewJWT(Login{}, "c", "", key),
		"jwt no key":       NewJWT(Login{}, "c", "u", nil),
	}
	for name, src := range cases {
		_, err := src.Credentials(context.Background())
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// Concurrent Refresh calls share one login.
func TestRefreshSingleFlight(t *testing.T) {
	release := make(chan struct{})
	var tokenCalls atomic.Int32
	f := newFixture(t, false, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/services/Soap/") {
				tokenCalls.Add(1)
				<-release
			}
			h.ServeHTTP(w, r)
		})
	})
	src := NewSOAP(f.l, testUser, testPassword+testSecToken).(*cached)
	const n = 8
	var wg sync.WaitGroup
	results := make([]Credentials, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = src.Refresh(context.Background())
		}()
	}
	// Wait until one caller is logging in and the others wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for src.waiting() != n-1 || tokenCalls.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("waiting %d, logins started %d", src.waiting(), tokenCalls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if got := tokenCalls.Load(); got != 1 {
		t.Fatalf("%d logins for %d concurrent refreshes, want 1", got, n)
	}
}

// When the caller running a login gives up, a caller waiting for it logs in itself.
func TestWaiterTakesOverWhenLeaderCancels(t *testing.T) {
	first := make(chan struct{})
	var calls atomic.Int32
	f := newFixture(t, false, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client leaving
				close(first)
				<-r.Context().Done() // the first login never answers
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	src := NewSOAP(f.l, testUser, testPassword+testSecToken).(*cached)
	leaderCtx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := src.Credentials(leaderCtx)
		leaderErr <- err
	}()
	<-first
	waiterDone := make(chan error, 1)
	var got Credentials
	go func() {
		var err error
		got, err = src.Credentials(context.Background())
		waiterDone <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for src.waiting() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second caller never waited for the first login")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v, want context.Canceled", err)
	}
	if err := <-waiterDone; err != nil || got.OrgID != testOrgID {
		t.Fatalf("waiter: %v %v", got, err)
	}
}

func TestWaiterContextCancelled(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, false, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			h.ServeHTTP(w, r)
		})
	})
	defer close(release)
	src := NewSOAP(f.l, testUser, testPassword+testSecToken).(*cached)
	go func() { _, _ = src.Credentials(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for !src.inFlight() {
		if time.Now().After(deadline) {
			t.Fatal("no login started")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}
