package login

import "errors"

// ErrConfig marks an invalid login config (file or struct).
var ErrConfig = errors.New("invalid login config")
