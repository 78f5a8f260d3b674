package auth

import (
	"errors"
	"strconv"
)

var (
	// ErrCannotRefresh is returned by a Source that has no way to obtain a new
	// token (NewStatic): the run cannot go on once the given token expires.
	ErrCannotRefresh = errors.New("cannot refresh the access token")
	// ErrLoginRejected means the login server refused the credentials (wrong
	// username, password, security token, client secret or key, or a flow the
	// connected app does not allow). Retrying will not help. The error that
	// wraps it is a *RejectedError carrying the server's message.
	ErrLoginRejected = errors.New("login rejected")
	// ErrConfig marks login settings that are unusable before any request is
	// made: a malformed login URL, a missing username or key, and the like.
	ErrConfig = errors.New("invalid login settings")
)

// RejectedError is the server's refusal of a login. It unwraps to
// ErrLoginRejected. Message is the server's text with any secret removed.
type RejectedError struct {
	Method     string // "soap", "client credentials" or "jwt"
	URL        string // the endpoint that answered
	StatusCode int    // HTTP status
	Code       string // SOAP faultcode (sf:INVALID_LOGIN) or OAuth error (invalid_grant)
	Message    string // faultstring or error_description
}

// Error implements error.
func (e *RejectedError) Error() string {
	msg := e.Method + " login at " + e.URL + " rejected (HTTP " + strconv.Itoa(e.StatusCode)
	if e.Code != "" {
		msg += ", " + e.Code
	}
	msg += ")"
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap returns ErrLoginRejected.
func (e *RejectedError) Unwrap() error { return ErrLoginRejected }
