package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Credentials are what every Pub/Sub API call carries: the accesstoken,
// instanceurl and tenantid headers. Printing them (fmt, slog, encoding/json)
// never shows the token.
type Credentials struct {
	AccessToken string // secret: never printed by String, GoString or LogValue
	InstanceURL string // scheme://host[:port], no path
	OrgID       string
}

// redacted stands in for the access token wherever Credentials are printed.
const redacted = "[redacted]"

func (c Credentials) tokenShown() string {
	if c.AccessToken == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer without the token.
func (c Credentials) String() string {
	return fmt.Sprintf("{InstanceURL:%s OrgID:%s AccessToken:%s}", c.InstanceURL, c.OrgID, c.tokenShown())
}

// GoString implements fmt.GoStringer (%#v) without the token.
func (c Credentials) GoString() string {
	return fmt.Sprintf("auth.Credentials{InstanceURL:%q, OrgID:%q, AccessToken:%q}", c.InstanceURL, c.OrgID, c.tokenShown())
}

// Format implements fmt.Formatter so that no verb (%d, %x, …) can print the
// token: %#v is GoString, anything else is String.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, c.GoString())
		return
	}
	_, _ = io.WriteString(f, c.String())
}

// MarshalJSON writes the credentials with the token redacted, so that they
// cannot reach a JSON log or file by accident.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"instance_url": c.InstanceURL, "org_id": c.OrgID, "access_token": c.tokenShown()})
}

// LogValue implements slog.LogValuer without the token.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("instance_url", c.InstanceURL),
		slog.String("org_id", c.OrgID),
		slog.String("access_token", c.tokenShown()),
	)
}

// Source supplies credentials and obtains new ones when the server says the
// old token is no longer valid. Implementations are safe for concurrent use.
type Source interface {
	// Credentials returns the cached credentials, logging in on first use.
	Credentials(ctx context.Context) (Credentials, error)
	// Refresh logs in again and returns the new credentials. Concurrent calls
	// share one login. A static source returns an error wrapping
	// ErrCannotRefresh.
	Refresh(ctx context.Context) (Credentials, error)
}

// static is a Source for a token the user supplied.
type static struct {
	creds Credentials
	err   error
}

// NewStatic returns a Source for a given access token, instance URL and org
// ID. It never logs in; Refresh returns an error wrapping ErrCannotRefresh.
// Problems with the values (an empty token, a malformed instance URL) are
// reported by Credentials.
func NewStatic(accessToken, instanceURL, orgID string) Source {
	s := &static{}
	switch {
	case accessToken == "":
		s.err = fmt.Errorf("%w: the access token is empty", ErrConfig)
	case orgID == "":
		s.err = fmt.Errorf("%w: an access token needs the org ID too", ErrConfig)
	}
	if s.err != nil {
		return s
	}
	inst, err := normalizeInstanceURL(instanceURL)
	if err != nil {
		s.err = err
		return s
	}
	s.creds = Credentials{AccessToken: accessToken, InstanceURL: inst, OrgID: orgID}
	return s
}

// Credentials returns the given credentials.
func (s *static) Credentials(context.Context) (Credentials, error) {
	if s.err != nil {
		return Credentials{}, s.err
	}
	return s.creds, nil
}

// Refresh always fails: a given token cannot be renewed.
func (s *static) Refresh(context.Context) (Credentials, error) {
	if s.err != nil {
		return Credentials{}, s.err
	}
	return Credentials{}, fmt.Errorf("%w: the access token given for %s has expired or was revoked; "+
		"supply a new token, or use a login method (soap, client-credentials or jwt) that can log in again",
		ErrCannotRefresh, s.creds.InstanceURL)
}
