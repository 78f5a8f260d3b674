package login

import "errors"

var (
	// ErrConfig marks an invalid login config (file or struct).
	ErrConfig = errors.New("invalid login config")
	// ErrStopped is returned by Start and StartTLS after Stop.
	ErrStopped = errors.New("login server stopped")
)
