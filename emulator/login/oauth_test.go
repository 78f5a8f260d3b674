package login

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPasswordGrant(t *testing.T) {
	_, ts, rec := newTestServer(t, nil)
	status, body := postForm(t, ts, url.Values{
		"grant_type": {GrantPassword}, "client_id": {testClientID}, "client_secret": {testSecret},
		"username": {testUser}, "password": {testPassword + testSecToken},
	})
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	if body["instance_url"] != ts.URL || body["token_type"] != "Bearer" || body["signature"] == "" || body["issued_at"] == "" {
		t.Fatalf("response %v", body)
	}
	if want := ts.URL + "/id/" + testOrgID + "/" + testUserID; body["id"] != want {
		t.Fatalf("id = %q, want %q", body["id"], want)
	}
	if d, ok := rec.lifetime(body["access_token"]); !ok || d != 90*time.Minute {
		t.Fatalf("issuer got lifetime %v (%v), want 90m", d, ok)
	}
}

func TestOAuthErrors(t *testing.T) {
	_, ts, _ := newTestServer(t, nil)
	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"password: wrong password", url.Values{"grant_type": {GrantPassword}, "client_id": {testClientID}, "client_secret": {testSecret}, "username": {testUser}, "password": {testPassword}}, 400, "invalid_grant"},
		{"password: bad secret", url.Values{"grant_type": {GrantPassword}, "client_id": {testClientID}, "client_secret": {"wrong"}, "username": {testUser}, "password": {testPassword + testSecToken}}, 401, "invalid_client"},
		{"client credentials: bad secret", url.Values{"grant_type": {GrantClientCredentials}, "client_id": {testClientID}, "client_secret": {"wrong"}}, 401, "invalid_client"},
		{"client credentials: unknown client", url.Values{"grant_type": {GrantClientCredentials}, "client_id": {"nope"}, "client_secret": {testSecret}}, 400, "invalid_client_id"},
		{"client credentials: no run-as user", url.Values{"grant_type": {GrantClientCredentials}, "client_id": {"no-run-as"}, "client_secret": {"x"}}, 400, "invalid_grant"},
		{"no grant type", url.Values{}, 400, "invalid_request"},
		{"unknown grant type", url.Values{"grant_type": {"authorization_code"}}, 400, "unsupported_grant_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := postForm(t, ts, c.form)
			if status != c.status || body["error"] != c.code || body["error_description"] == "" {
				t.Fatalf("got %d %v, want %d %s", status, body, c.status, c.code)
			}
		})
	}
}

func TestClientCredentialsGrant(t *testing.T) {
	_, ts, _ := newTestServer(t, nil)
	status, body := postForm(t, ts, url.Values{
		"grant_type": {GrantClientCredentials}, "client_id": {testClientID}, "client_secret": {testSecret},
	})
	if status != http.StatusOK || body["access_token"] == "" || body["scope"] == "" {
		t.Fatalf("status %d: %v", status, body)
	}
	if want := ts.URL + "/id/" + testOrgID + "/" + testUserID; body["id"] != want {
		t.Fatalf("id = %q, want the run-as user's %q", body["id"], want)
	}
}

func TestJWTBearerGrant(t *testing.T) {
	keys := testKeys()
	now := time.Now()
	_, ts, _ := newTestServer(t, func(c *Config) { c.Now = func() time.Time { return now } })
	valid := func() map[string]any {
		return map[string]any{"iss": testClientID, "sub": testUser, "aud": ts.URL, "exp": now.Add(3 * time.Minute).Unix()}
	}
	with := func(k string, v any) map[string]any {
		c := valid()
		c[k] = v
		return c
	}
	cases := []struct {
		name      string
		assertion string
		status    int
		code      string
		desc      string
	}{
		{"valid", assertion(t, keys[0], "RS256", valid()), 200, "", ""},
		{"aud with trailing slash", assertion(t, keys[0], "RS256", with("aud", ts.URL+"/")), 200, "", ""},
		{"aud as array", assertion(t, keys[0], "RS256", with("aud", []string{ts.URL})), 200, "", ""},
		{"wrong key", assertion(t, keys[1], "RS256", valid()), 400, "invalid_grant", "signature"},
		{"expired", assertion(t, keys[0], "RS256", with("exp", now.Add(-time.Second).Unix())), 400, "invalid_grant", "expired"},
		{"wrong aud", assertion(t, keys[0], "RS256", with("aud", "https://login.salesforce.com")), 400, "invalid_grant", "audience is invalid"},
		{"unknown iss", assertion(t, keys[0], "RS256", with("iss", "someone-else")), 400, "invalid_client_id", ""},
		{"unknown sub", assertion(t, keys[0], "RS256", with("sub", "ghost@example.com")), 400, "invalid_grant", "approved"},
		{"exp not a number", assertion(t, keys[0], "RS256", with("exp", "soon")), 400, "invalid_grant", "claims"},
		{"alg none", assertion(t, keys[0], "none", valid()), 400, "invalid_grant", "RS256"},
		{"app without key", assertion(t, keys[0], "RS256", with("iss", "no-run-as")), 400, "invalid_grant", "certificate"},
		{"not a JWT", "abc", 400, "invalid_grant", ""},
		{"garbage segments", "!!.!!.!!", 400, "invalid_grant", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := postForm(t, ts, url.Values{"grant_type": {GrantJWTBearer}, "assertion": {c.assertion}})
			if status != c.status {
				t.Fatalf("status %d (%v), want %d", status, body, c.status)
			}
			if c.status == 200 {
				if body["access_token"] == "" || strings.Count(body["access_token"], ".") != 0 {
					t.Fatalf("access token %q is not opaque", body["access_token"])
				}
				return
			}
			if body["error"] != c.code || !strings.Contains(body["error_description"], c.desc) {
				t.Fatalf("got %v, want %s containing %q", body, c.code, c.desc)
			}
		})
	}
}

func TestJWTConfiguredLoginURL(t *testing.T) {
	keys := testKeys()
	_, ts, _ := newTestServer(t, func(c *Config) { c.LoginURL = "https://login.salesforce.com" })
	claims := map[string]any{"iss": testClientID, "sub": testUser, "aud": "https://login.salesforce.com/", "exp": time.Now().Add(time.Minute).Unix()}
	status, body := postForm(t, ts, url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(t, keys[0], "RS256", claims)}})
	if status != 200 {
		t.Fatalf("status %d: %v", status, body)
	}
	if !strings.HasPrefix(body["id"], "https://login.salesforce.com/id/") || body["instance_url"] != ts.URL {
		t.Fatalf("id %q / instance_url %q", body["id"], body["instance_url"])
	}
	claims["aud"] = ts.URL
	status, body = postForm(t, ts, url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(t, keys[0], "RS256", claims)}})
	if status != 400 || body["error_description"] != "audience is invalid" {
		t.Fatalf("own URL as aud with a configured login URL: %d %v", status, body)
	}
}

func getUserInfo(t *testing.T, baseURL string, client *http.Client, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, baseURL+"/services/oauth2/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestUserInfo(t *testing.T) {
	now := time.Now()
	clock := &testClock{t: now}
	s, ts, _ := newTestServer(t, func(c *Config) { c.Now = clock.Now })
	_, body := postForm(t, ts, url.Values{
		"grant_type": {GrantPassword}, "client_id": {testClientID}, "client_secret": {testSecret},
		"username": {testUser}, "password": {testPassword + testSecToken},
	})
	token := body["access_token"]

	status, b := getUserInfo(t, ts.URL, ts.Client(), token)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, b)
	}
	var info map[string]any
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info["organization_id"] != testOrgID || info["user_id"] != testUserID || info["preferred_username"] != testUser {
		t.Fatalf("userinfo %v", info)
	}

	for name, tok := range map[string]string{"no token": "", "unknown token": "00D000000000777!nope"} {
		if status, b := getUserInfo(t, ts.URL, ts.Client(), tok); status != http.StatusForbidden || string(b) != "Bad_OAuth_Token" {
			t.Errorf("%s: %d %q, want 403 Bad_OAuth_Token", name, status, b)
		}
	}

	// Past its lifetime the token no longer works.
	clock.Set(now.Add(91 * time.Minute))
	if status, _ := getUserInfo(t, ts.URL, ts.Client(), token); status != http.StatusForbidden {
		t.Errorf("expired token: status %d, want 403", status)
	}
	clock.Set(now)
	s.ExpireTokens()
	if status, _ := getUserInfo(t, ts.URL, ts.Client(), token); status != http.StatusForbidden {
		t.Errorf("after ExpireTokens: status %d, want 403", status)
	}
	if s.Logins() != 1 {
		t.Errorf("Logins() = %d, want 1", s.Logins())
	}
}
