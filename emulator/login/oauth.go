package login

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Grant types of the token endpoint.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// oauthError is an OAuth error response.
type oauthError struct {
	status      int
	code        string
	description string
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_grant", desc}
}

var (
	errUnknownClient = &oauthError{http.StatusBadRequest, "invalid_client_id", "client identifier invalid"}
	errBadSecret     = &oauthError{http.StatusUnauthorized, "invalid_client", "invalid client credentials"}
	errAuthFailure   = errInvalidGrant("authentication failure")
)

// tokenResponse is the JSON the token endpoint returns on success.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	Signature   string `json:"signature,omitempty"`
	Scope       string `json:"scope,omitempty"`
	InstanceURL string `json:"instance_url"`
	ID          string `json:"id"`
	TokenType   string `json:"token_type"`
	IssuedAt    string `json:"issued_at"`
}

// handleToken answers POST /services/oauth2/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "the request body is not a form"})
		return
	}
	grant := r.PostForm.Get("grant_type")
	var (
		u     *User
		app   *App
		scope string
		err   *oauthError
	)
	switch grant {
	case GrantPassword:
		u, app, err = s.passwordGrant(r)
	case GrantClientCredentials:
		u, app, err = s.clientCredentialsGrant(r)
		scope = "api"
	case GrantJWTBearer:
		u, app, err = s.jwtBearerGrant(r)
		scope = "api"
	case "":
		err = &oauthError{http.StatusBadRequest, "invalid_request", "grant_type is missing"}
	default:
		err = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "grant type not supported"}
	}
	if err != nil {
		s.log.Info("oauth login rejected", "grant_type", grant, "error", err.code, "error_description", err.description)
		writeOAuthError(w, err)
		return
	}
	token, _ := s.issue(u)
	s.log.Info("oauth login", "grant_type", grant, "client_id", app.ClientID, "username", u.Username)
	resp := tokenResponse{
		AccessToken: token,
		Scope:       scope,
		InstanceURL: s.instanceBase(r),
		ID:          s.loginBase(r) + "/id/" + s.cfg.OrgID + "/" + u.UserID,
		TokenType:   "Bearer",
		IssuedAt:    strconv.FormatInt(s.cfg.Now().UnixMilli(), 10),
	}
	if grant != GrantJWTBearer && app.ClientSecret != "" {
		mac := hmac.New(sha256.New, []byte(app.ClientSecret))
		mac.Write([]byte(resp.ID + resp.IssuedAt))
		resp.Signature = base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	writeJSON(w, http.StatusOK, resp)
}

// clientApp finds the app named by client_id and checks client_secret.
func (s *Server) clientApp(r *http.Request) (*App, *oauthError) {
	app := s.apps[r.PostForm.Get("client_id")]
	if app == nil {
		return nil, errUnknownClient
	}
	secret := r.PostForm.Get("client_secret")
	if app.ClientSecret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret)) != 1 {
		return nil, errBadSecret
	}
	return app, nil
}

func (s *Server) passwordGrant(r *http.Request) (*User, *App, *oauthError) {
	app, err := s.clientApp(r)
	if err != nil {
		return nil, nil, err
	}
	u := s.user(r.PostForm.Get("username"))
	if u == nil || r.PostForm.Get("password") != u.Password+u.SecurityToken {
		return nil, nil, errAuthFailure
	}
	return u, app, nil
}

func (s *Server) clientCredentialsGrant(r *http.Request) (*User, *App, *oauthError) {
	app, err := s.clientApp(r)
	if err != nil {
		return nil, nil, err
	}
	if app.RunAs == "" {
		return nil, nil, errInvalidGrant("no client credentials user enabled")
	}
	return s.user(app.RunAs), app, nil
}

// jwtClaims are the assertion claims the server checks.
type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp json.Number     `json:"exp"`
}

// jwtBearerGrant verifies an RS256 assertion: signature with the app's key,
// then aud, exp and sub.
func (s *Server) jwtBearerGrant(r *http.Request) (*User, *App, *oauthError) {
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return nil, nil, errInvalidGrant("invalid assertion: not a signed JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, nil, errInvalidGrant("invalid assertion: bad header: " + err.Error())
	}
	if header.Alg != "RS256" {
		return nil, nil, errInvalidGrant("invalid assertion: algorithm must be RS256, not " + strconv.Quote(header.Alg))
	}
	var claims jwtClaims
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, nil, errInvalidGrant("invalid assertion: bad claims: " + err.Error())
	}
	app := s.apps[claims.Iss]
	if app == nil {
		return nil, nil, errUnknownClient
	}
	if app.publicKey == nil {
		return nil, nil, errInvalidGrant("invalid assertion: the connected app has no certificate")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, nil, errInvalidGrant("invalid assertion: bad signature encoding")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(app.publicKey, crypto.SHA256, digest[:], sig); err != nil {
		return nil, nil, errInvalidGrant("invalid assertion: signature does not verify with the connected app's certificate")
	}
	want := s.loginBase(r)
	if !audienceMatches(claims.Aud, want) {
		return nil, nil, errInvalidGrant("audience is invalid")
	}
	exp, err := claims.Exp.Int64()
	if err != nil {
		return nil, nil, errInvalidGrant("invalid assertion: exp must be a number of seconds")
	}
	if !s.cfg.Now().Before(time.Unix(exp, 0)) {
		return nil, nil, errInvalidGrant("expired authorization code")
	}
	u := s.user(claims.Sub)
	if u == nil {
		return nil, nil, errInvalidGrant("user hasn't approved this consumer")
	}
	return u, app, nil
}

// audienceMatches accepts aud as a string or an array of strings, each
// compared with want ignoring one trailing slash.
func audienceMatches(raw json.RawMessage, want string) bool {
	var one string
	var many []string
	if err := json.Unmarshal(raw, &one); err == nil {
		many = []string{one}
	} else if err := json.Unmarshal(raw, &many); err != nil {
		return false
	}
	for _, a := range many {
		if strings.TrimSuffix(a, "/") == want {
			return true
		}
	}
	return false
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("base64url: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	return dec.Decode(v)
}

// handleUserInfo answers /services/oauth2/userinfo for a Bearer token.
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var u *User
	if ok {
		u, ok = s.lookup(strings.TrimSpace(token))
	}
	if !ok {
		// Salesforce answers a bad token here with 403 and a bare text body.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("Bad_OAuth_Token"))
		return
	}
	id := s.loginBase(r) + "/id/" + s.cfg.OrgID + "/" + u.UserID
	writeJSON(w, http.StatusOK, map[string]any{
		"sub":                id,
		"user_id":            u.UserID,
		"organization_id":    s.cfg.OrgID,
		"preferred_username": u.Username,
		"nickname":           strings.SplitN(u.Username, "@", 2)[0],
		"name":               u.FullName,
		"email":              u.Email,
		"email_verified":     true,
		"zoneinfo":           "America/Los_Angeles",
		"locale":             "en_US",
		"language":           "en_US",
		"user_type":          "STANDARD",
		"active":             true,
		"is_app_installed":   true,
		"updated_at":         s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z"),
	})
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
