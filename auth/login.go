package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Defaults for Login.
const (
	DefaultLoginURL   = "https://login.salesforce.com"
	SandboxLoginURL   = "https://test.salesforce.com"
	DefaultAPIVersion = "62.0"
	DefaultTimeout    = 30 * time.Second
)

// maxResponse bounds how much of a login response is read.
const maxResponse = 1 << 20

// Login holds what every login flow shares.
type Login struct {
	// LoginURL is where to log in: "" → https://login.salesforce.com;
	// https://test.salesforce.com for a sandbox; or a My Domain URL such as
	// https://example.my.salesforce.com. Only scheme and host are allowed;
	// http is accepted for localhost and 127.0.0.1 (the emulator).
	LoginURL string
	// APIVersion of the SOAP login endpoint, e.g. "62.0"; "" → DefaultAPIVersion.
	APIVersion string
	// HTTPClient sends the requests; nil → a client with DefaultTimeout.
	HTTPClient *http.Client
	// Timeout bounds each HTTP call, whatever the client's own timeout;
	// 0 → DefaultTimeout.
	Timeout time.Duration
	// Audience overrides the JWT bearer assertion's "aud". "" → derived from
	// LoginURL: Salesforce accepts only https://login.salesforce.com or
	// https://test.salesforce.com as the audience, even when the token is
	// requested from a My Domain URL, so a *.salesforce.com / *.force.com
	// login URL maps to one of those two (sandbox and scratch-org hosts —
	// test.salesforce.com, *.sandbox.my.salesforce.com, *.scratch.my.salesforce.com,
	// name--sbx.my.salesforce.com — to test).
	// Any other login URL (the emulator) is its own audience.
	Audience string
	// Logger gets one line per successful login (never a secret); nil → discard.
	Logger *slog.Logger
}

// settings is a checked Login.
type settings struct {
	loginURL   string
	apiVersion string
	client     *http.Client
	timeout    time.Duration
	log        *slog.Logger
}

var apiVersionRe = regexp.MustCompile(`^[1-9][0-9]{0,2}\.0$`)

func (l Login) resolve() (settings, error) {
	s := settings{client: l.HTTPClient, timeout: l.Timeout, log: l.Logger, apiVersion: l.APIVersion}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: DefaultTimeout}
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.apiVersion == "" {
		s.apiVersion = DefaultAPIVersion
	}
	if !apiVersionRe.MatchString(s.apiVersion) {
		return s, fmt.Errorf("%w: API version %q must look like %q", ErrConfig, s.apiVersion, DefaultAPIVersion)
	}
	u, err := NormalizeLoginURL(l.LoginURL)
	if err != nil {
		return s, err
	}
	s.loginURL = u
	return s, nil
}

// NormalizeLoginURL checks a login URL and returns it as scheme://host[:port]
// with no trailing slash. "" gives DefaultLoginURL. Errors wrap ErrConfig and
// say what to write instead.
func NormalizeLoginURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return DefaultLoginURL, nil
	}
	if !strings.Contains(raw, "://") {
		return "", fmt.Errorf("%w: login URL %q has no scheme; did you mean https://%s?", ErrConfig, raw, strings.TrimRight(raw, "/"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's own error repeats the whole URL, which may hold a password.
		return "", fmt.Errorf("%w: login URL is not a valid URL", ErrConfig)
	}
	shown := u.Redacted()
	host := strings.ToLower(u.Hostname())
	switch {
	case u.User != nil:
		return "", fmt.Errorf("%w: login URL %s must not contain a user name or password", ErrConfig, shown)
	case host == "":
		return "", fmt.Errorf("%w: login URL %s has no host", ErrConfig, shown)
	case u.Scheme == "http" && !isLoopback(host):
		return "", fmt.Errorf("%w: login URL %s must use https (http is only allowed for localhost and 127.0.0.1)", ErrConfig, shown)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w: login URL %s must start with https://", ErrConfig, shown)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%w: login URL %s must not have a path; give only the base, such as %s", ErrConfig, shown, DefaultLoginURL)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%w: login URL %s must not have a query or fragment", ErrConfig, shown)
	case strings.HasSuffix(host, ".lightning.force.com"):
		return "", fmt.Errorf("%w: login URL %s is a Lightning UI address; use the My Domain login URL https://%s",
			ErrConfig, shown, strings.TrimSuffix(host, ".lightning.force.com")+".my.salesforce.com")
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalizeInstanceURL reduces an instance or server URL to scheme://host[:port].
func normalizeInstanceURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%w: instance URL %q must be an https:// URL such as https://example.my.salesforce.com", ErrConfig, raw)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// send sends one request with the settings' timeout and reads the response
// (at most maxResponse bytes).
func (s settings) send(ctx context.Context, req *http.Request) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.client.Do(req.WithContext(ctx))
	if err != nil {
		err = transportError(err)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%s %s: no answer within %v: %w", req.Method, req.URL.Redacted(), s.timeout, err)
		}
		return 0, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read response: %w", req.Method, req.URL.Redacted(), err)
	}
	return resp.StatusCode, body, nil
}

// scrub removes secrets from text that came from a server, and shortens it.
func scrub(text string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			text = strings.ReplaceAll(text, sec, redacted)
		}
	}
	text = strings.TrimSpace(text)
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return text
}

// loginFunc performs one login.
type loginFunc func(ctx context.Context) (Credentials, error)

// cached is the Source behind every login flow: it caches the credentials
// and lets concurrent callers share one login.
type cached struct {
	method string
	err    error // a settings error, returned by every call
	login  loginFunc
	log    *slog.Logger

	mu      sync.Mutex
	creds   *Credentials
	flight  *flight
	waiters int // callers waiting for flight (observed by tests)
}

// flight is one login in progress.
type flight struct {
	done        chan struct{}
	creds       Credentials
	err         error
	leaderEnded bool // the leader's context ended: waiters may try again
}

// Credentials returns the cached credentials, logging in if there are none.
func (c *cached) Credentials(ctx context.Context) (Credentials, error) {
	c.mu.Lock()
	if c.creds != nil {
		creds := *c.creds
		c.mu.Unlock()
		return creds, nil
	}
	c.mu.Unlock()
	return c.run(ctx, false)
}

// Refresh drops the cached credentials and logs in again; callers that
// arrive while a login is running share it.
func (c *cached) Refresh(ctx context.Context) (Credentials, error) {
	return c.run(ctx, true)
}

func (c *cached) run(ctx context.Context, drop bool) (Credentials, error) {
	if c.err != nil {
		return Credentials{}, c.err
	}
	for {
		c.mu.Lock()
		if drop {
			c.creds = nil
		}
		if f := c.flight; f != nil {
			c.waiters++
			c.mu.Unlock()
			var ctxErr error
			select {
			case <-f.done:
			case <-ctx.Done():
				ctxErr = ctx.Err()
			}
			c.mu.Lock()
			c.waiters--
			c.mu.Unlock()
			if ctxErr != nil {
				return Credentials{}, fmt.Errorf("wait for %s login: %w", c.method, ctxErr)
			}
			if f.err != nil && f.leaderEnded && ctx.Err() == nil {
				drop = false
				continue // the caller that ran it gave up; this one still wants a login
			}
			return f.creds, f.err
		}
		if !drop && c.creds != nil {
			creds := *c.creds
			c.mu.Unlock()
			return creds, nil
		}
		f := &flight{done: make(chan struct{})}
		c.flight = f
		c.mu.Unlock()

		f.creds, f.err = c.login(ctx)
		f.leaderEnded = ctx.Err() != nil

		c.mu.Lock()
		c.flight = nil
		if f.err == nil {
			creds := f.creds
			c.creds = &creds
		}
		c.mu.Unlock()
		close(f.done)
		if f.err == nil {
			c.log.Info("logged in to Salesforce", "method", c.method, "credentials", f.creds)
		}
		return f.creds, f.err
	}
}

// waiting is how many callers wait for the login in flight.
func (c *cached) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiters
}

// inFlight reports whether a login is running.
func (c *cached) inFlight() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flight != nil
}

// newCached wraps a login function; err, if set, is returned by every call.
func newCached(method string, s settings, err error, login loginFunc) *cached {
	return &cached{method: method, err: err, login: login, log: s.log}
}

// transportError drops the *url.Error layer (the caller names method and
// URL itself); the request body, which holds secrets, is never quoted.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
