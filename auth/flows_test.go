package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/emulator/login"
)

// sources builds each login flow against a fixture.
func sources(f *fixture) map[string]Source {
	return map[string]Source{
		"soap":               NewSOAP(f.l, testUser, testPassword+testSecToken),
		"client credentials": NewClientCredentials(f.l, testClientID, testSecret),
		"jwt":                NewJWT(f.l, testClientID, testUser, testKeys()[0]),
	}
}

func TestEachFlowLogsIn(t *testing.T) {
	for scheme, useTLS := range schemes() {
		f := newFixture(t, useTLS, nil, nil)
		for name, src := range sources(f) {
			t.Run(scheme+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				c, err := src.Credentials(ctx)
				if err != nil {
					t.Fatalf("Credentials: %v", err)
				}
				if c.OrgID != testOrgID || c.InstanceURL != f.ts.URL || c.AccessToken == "" {
					t.Fatalf("credentials %+v (token set: %v), want org %s at %s", c, c.AccessToken != "", testOrgID, f.ts.URL)
				}
				if !f.issued.has(c.AccessToken) {
					t.Fatal("the token was not given to the gRPC emulator's issuer")
				}
				before := f.srv.Logins()
				again, err := src.Credentials(ctx)
				if err != nil || again != c || f.srv.Logins() != before {
					t.Fatalf("second Credentials call logged in again or changed: err %v", err)
				}
				fresh, err := src.Refresh(ctx)
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if fresh.AccessToken == c.AccessToken || fresh.OrgID != testOrgID || f.srv.Logins() != before+1 {
					t.Fatalf("Refresh did not log in anew (logins %d → %d)", before, f.srv.Logins())
				}
				if cur, _ := src.Credentials(ctx); cur != fresh {
					t.Fatal("Credentials after Refresh does not return the new token")
				}
				logs := f.logs.String()
				if !strings.Contains(logs, "logged in") {
					t.Fatalf("no login logged: %s", logs)
				}
				for _, secret := range []string{fresh.AccessToken, c.AccessToken, testPassword, testSecToken, testSecret} {
					if strings.Contains(logs, secret) {
						t.Fatal("a secret appears in the log")
					}
				}
			})
		}
	}
}

func TestRejected(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name     string
		mutate   func(*login.Config)
		src      func(f *fixture) Source
		code     string
		message  string
		noSecret string
	}{
		{"soap wrong password", nil,
			func(f *fixture) Source { return NewSOAP(f.l, testUser, "wrong-"+testPassword+testSecToken) },
			"sf:INVALID_LOGIN", login.InvalidLoginFault, "wrong-" + testPassword},
		{"soap missing security token", nil,
			func(f *fixture) Source { return NewSOAP(f.l, testUser, testPassword) },
			"sf:INVALID_LOGIN", login.InvalidLoginFault, testPassword},
		{"client credentials bad secret", nil,
			func(f *fixture) Source { return NewClientCredentials(f.l, testClientID, "bad-"+testSecret) },
			"invalid_client", "invalid client credentials", "bad-" + testSecret},
		{"client credentials unknown client", nil,
			func(f *fixture) Source { return NewClientCredentials(f.l, "unknown", testSecret) },
			"invalid_client_id", "client identifier invalid", testSecret},
		{"jwt wrong key", nil,
			func(f *fixture) Source { return NewJWT(f.l, testClientID, testUser, testKeys()[1]) },
			"invalid_grant", "signature", ""},
		{"jwt expired assertion", func(c *login.Config) { c.Now = func() time.Time { return now.Add(time.Hour) } },
			func(f *fixture) Source { return NewJWT(f.l, testClientID, testUser, testKeys()[0]) },
			"invalid_grant", "expired", ""},
		{"jwt wrong aud", func(c *login.Config) { c.LoginURL = "https://login.salesforce.com" },
			func(f *fixture) Source { return NewJWT(f.l, testClientID, testUser, testKeys()[0]) },
			"invalid_grant", "audience is invalid", ""},
		{"jwt unknown user", nil,
			func(f *fixture) Source { return NewJWT(f.l, testClientID, "ghost@example.com", testKeys()[0]) },
			"invalid_grant", "approved", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, true, c.mutate, nil)
			_, err := c.src(f).Credentials(context.Background())
			if !errors.Is(err, ErrLoginRejected) {
				t.Fatalf("err = %v, want ErrLoginRejected", err)
			}
			var re *RejectedError
			if !errors.As(err, &re) || re.Code != c.code || !strings.Contains(re.Message, c.message) {
				t.Fatalf("err = %#v, want code %s and message containing %q", re, c.code, c.message)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Fatalf("error text %q lacks the server's message", err)
			}
			for _, secret := range []string{c.noSecret, testPassword, testSecret, testSecToken} {
				if secret != "" && (strings.Contains(err.Error(), secret) || strings.Contains(f.logs.String(), secret)) {
					t.Fatalf("a secret appears in the error or log: %v", err)
				}
			}
		})
	}
}

// A JWT with an explicit audience works against a server whose login URL is
// production's, as a My Domain token endpoint with aud login.salesforce.com does.
func TestJWTAudienceOverride(t *testing.T) {
	f := newFixture(t, true, func(c *login.Config) { c.LoginURL = "https://login.salesforce.com" }, nil)
	l := f.l
	l.Audience = "https://login.salesforce.com"
	c, err := NewJWT(l, testClientID, testUser, testKeys()[0]).Credentials(context.Background())
	if err != nil || c.OrgID != testOrgID {
		t.Fatalf("credentials %v, err %v", c, err)
	}
}

func TestJWTAudienceDerivation(t *testing.T) {
	cases := map[string]string{
		"https://login.salesforce.com":                    DefaultLoginURL,
		"https://test.salesforce.com":                     SandboxLoginURL,
		"https://acme.my.salesforce.com":                  DefaultLoginURL,
		"https://acme--uat.sandbox.my.salesforce.com":     SandboxLoginURL,
		"https://acme--uat.my.salesforce.com":             SandboxLoginURL,
		"https://acme.my.site.com":                        "https://acme.my.site.com",
		"http://127.0.0.1:8443":                           "http://127.0.0.1:8443",
		"https://acme.develop.my.salesforce.com":          DefaultLoginURL,
		"https://acme.scratch.my.salesforce.com":          SandboxLoginURL,
		"https://acme--uat.sandbox.my.salesforce-sites.x": "https://acme--uat.sandbox.my.salesforce-sites.x",
	}
	for in, want := range cases {
		if got := jwtAudience(in); got != want {
			t.Errorf("jwtAudience(%q) = %q, want %q", in, got, want)
		}
	}
}
