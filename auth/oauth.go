package auth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Grant types sent to the token endpoint.
const (
	grantClientCredentials = "client_credentials"
	grantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// jwtLifetime is how far ahead the assertion's exp is set. Salesforce wants
// it within a few minutes of now.
const jwtLifetime = 3 * time.Minute

// NewClientCredentials returns a Source for the OAuth 2.0 client credentials
// flow of a connected app (which runs as the app's configured user). The
// login URL must be the org's My Domain URL for this flow on a real org.
func NewClientCredentials(l Login, clientID, clientSecret string) Source {
	s, err := l.resolve()
	switch {
	case err != nil:
	case clientID == "":
		err = fmt.Errorf("%w: client credentials login needs the connected app's client ID (consumer key)", ErrConfig)
	case clientSecret == "":
		err = fmt.Errorf("%w: client credentials login needs the connected app's client secret (consumer secret)", ErrConfig)
	}
	o := oauth{method: "client credentials", s: s, secrets: []string{clientSecret}}
	return newCached(o.method, s, err, func(ctx context.Context) (Credentials, error) {
		return o.login(ctx, url.Values{
			"grant_type":    {grantClientCredentials},
			"client_id":     {clientID},
			"client_secret": {clientSecret},
		})
	})
}

// NewJWT returns a Source for the OAuth 2.0 JWT bearer flow: an RS256
// assertion (iss = clientID, sub = username, aud = Login.Audience or the
// audience derived from the login URL, exp = now + 3 min) signed with key,
// whose certificate is uploaded to the connected app.
func NewJWT(l Login, clientID, username string, key *rsa.PrivateKey) Source {
	s, err := l.resolve()
	switch {
	case err != nil:
	case clientID == "":
		err = fmt.Errorf("%w: JWT login needs the connected app's client ID (consumer key)", ErrConfig)
	case username == "":
		err = fmt.Errorf("%w: JWT login needs the username to log in as", ErrConfig)
	case key == nil:
		err = fmt.Errorf("%w: JWT login needs the connected app's private key", ErrConfig)
	}
	aud := l.Audience
	if aud == "" {
		aud = jwtAudience(s.loginURL)
	}
	o := oauth{method: "jwt", s: s}
	return newCached(o.method, s, err, func(ctx context.Context) (Credentials, error) {
		assertion, err := signJWT(key, jwtClaims{
			Iss: clientID, Sub: username, Aud: aud, Exp: time.Now().Add(jwtLifetime).Unix(),
		})
		if err != nil {
			return Credentials{}, fmt.Errorf("jwt login: %w", err)
		}
		return o.login(ctx, url.Values{"grant_type": {grantJWTBearer}, "assertion": {assertion}})
	})
}

// oauth runs a token-endpoint login and finds the org ID.
type oauth struct {
	method  string
	s       settings
	secrets []string // removed from anything a server sends back
}

// tokenResponse is the part of a token endpoint reply the client uses.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	InstanceURL string `json:"instance_url"`
	ID          string `json:"id"`
	TokenType   string `json:"token_type"`
}

// oauthErrorBody is an OAuth error reply.
type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (o oauth) login(ctx context.Context, form url.Values) (Credentials, error) {
	endpoint := o.s.loginURL + "/services/oauth2/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Credentials{}, fmt.Errorf("%s login: %w", o.method, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	status, body, err := o.s.send(ctx, req)
	if err != nil {
		return Credentials{}, fmt.Errorf("%s login: %w", o.method, err)
	}
	if status != http.StatusOK {
		var e oauthErrorBody
		jsonErr := json.Unmarshal(body, &e)
		if jsonErr == nil && e.Error != "" && status >= 400 && status < 500 {
			return Credentials{}, &RejectedError{
				Method: o.method, URL: endpoint, StatusCode: status,
				Code: scrub(e.Error, o.secrets...), Message: scrub(e.Description, o.secrets...),
			}
		}
		return Credentials{}, fmt.Errorf("%s login: POST %s: unexpected HTTP %d: %s", o.method, endpoint, status, scrub(string(body), o.secrets...))
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return Credentials{}, fmt.Errorf("%s login: POST %s: parse response: %w", o.method, endpoint, err)
	}
	if tok.AccessToken == "" || tok.InstanceURL == "" {
		return Credentials{}, fmt.Errorf("%s login: POST %s: the response has no access_token or instance_url", o.method, endpoint)
	}
	inst, err := normalizeInstanceURL(tok.InstanceURL)
	if err != nil {
		return Credentials{}, fmt.Errorf("%s login: instance_url in the response: %w", o.method, err)
	}
	orgID, err := o.orgID(ctx, tok)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{AccessToken: tok.AccessToken, InstanceURL: inst, OrgID: orgID}, nil
}

// orgID asks /services/oauth2/userinfo for the org ID and falls back to the
// id URL of the token response (…/id/{orgId}/{userId}).
func (o oauth) orgID(ctx context.Context, tok tokenResponse) (string, error) {
	endpoint := o.s.loginURL + "/services/oauth2/userinfo"
	orgID, uiErr := o.userInfo(ctx, endpoint, tok.AccessToken)
	if uiErr == nil {
		return orgID, nil
	}
	if id, ok := orgIDFromIDURL(tok.ID); ok {
		o.s.log.Debug("userinfo failed; org ID taken from the id URL", "method", o.method, "err", uiErr)
		return id, nil
	}
	return "", fmt.Errorf("%s login: find the org ID: %w (and the token response's id %q names none)", o.method, uiErr, tok.ID)
}

func (o oauth) userInfo(ctx context.Context, endpoint, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	status, body, err := o.s.send(ctx, req)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d: %s", endpoint, status, scrub(string(body), append([]string{token}, o.secrets...)...))
	}
	var info struct {
		OrganizationID string `json:"organization_id"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("GET %s: parse response: %w", endpoint, err)
	}
	if info.OrganizationID == "" {
		return "", fmt.Errorf("GET %s: the response has no organization_id", endpoint)
	}
	return info.OrganizationID, nil
}

// orgIDFromIDURL takes the org ID out of https://host/id/{orgId}/{userId}.
func orgIDFromIDURL(id string) (string, bool) {
	u, err := url.Parse(id)
	if err != nil {
		return "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "id" || !strings.HasPrefix(parts[1], "00D") {
		return "", false
	}
	return parts[1], true
}

// jwtAudience derives the assertion audience from a normalized login URL.
func jwtAudience(loginURL string) string {
	u, err := url.Parse(loginURL)
	if err != nil {
		return loginURL
	}
	host := u.Hostname()
	if !strings.HasSuffix(host, ".salesforce.com") && !strings.HasSuffix(host, ".force.com") {
		return loginURL
	}
	if host == "test.salesforce.com" || strings.Contains(host, ".sandbox.") || strings.Contains(host, ".scratch.") || strings.Contains(host, "--") {
		return SandboxLoginURL
	}
	return DefaultLoginURL
}
