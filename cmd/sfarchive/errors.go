package main

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/query"
	"github.com/sfarchive/sfarchive/subscriber"
)

// Exit codes, as DESIGN.md and `sfarchive --help` list them.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitRejected    = 4
)

// usageError is a mistake in the command line: a bad flag or value.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error {
	if err == nil {
		return nil
	}
	var u *usageError
	if errors.As(err, &u) {
		return err
	}
	return &usageError{err: err}
}

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// hintedError carries what the user can do about err.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintedError{err: err, hint: hint}
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var u *usageError
	switch {
	case errors.As(err, &u), errors.Is(err, auth.ErrConfig), errors.Is(err, subscriber.ErrConfig),
		errors.Is(err, subscriber.ErrStartPosition):
		return exitUsage
	case errors.Is(err, archive.ErrNotFound), errors.Is(err, archive.ErrNotArchive),
		errors.Is(err, archive.ErrLocked), errors.Is(err, archive.ErrFormatVersion), errors.Is(err, archive.ErrCorrupt):
		return exitUnavailable
	case errors.Is(err, auth.ErrLoginRejected), errors.Is(err, auth.ErrCannotRefresh),
		errors.Is(err, archive.ErrOrgMismatch):
		return exitRejected
	}
	switch grpcCode(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return exitRejected
	}
	return exitFailure
}

// grpcCode finds a gRPC status anywhere in err's chain.
func grpcCode(err error) codes.Code {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok && s.Code() != codes.Unknown {
			return s.Code()
		}
	}
	return codes.OK
}

// hintFor says what to do next about err.
func hintFor(err error) string {
	var h *hintedError
	if errors.As(err, &h) {
		return h.hint
	}
	var u *usageError
	switch {
	case errors.As(err, &u), errors.Is(err, auth.ErrConfig), errors.Is(err, subscriber.ErrConfig),
		errors.Is(err, subscriber.ErrStartPosition):
		return "run the command with --help for its flags and examples"
	case errors.Is(err, archive.ErrNotFound):
		return "check the --archive path; `sfarchive subscribe` creates the archive on its first run"
	case errors.Is(err, archive.ErrNotArchive):
		return "point --archive at a file written by `sfarchive subscribe`"
	case errors.Is(err, archive.ErrLocked):
		return "a running `sfarchive subscribe` holds the archive while it writes; stop it (Ctrl-C or SIGTERM commits and exits), or query after a run with --exit-when-idle or --max-events"
	case errors.Is(err, archive.ErrCorrupt):
		return "the file is damaged; `sfarchive verify` lists what it can read, and a backup copy may be needed"
	case errors.Is(err, archive.ErrFormatVersion):
		return "this archive was written by a newer sfarchive; upgrade sfarchive to read it"
	case errors.Is(err, archive.ErrOrgMismatch):
		return "use a new --archive file for each org"
	case errors.Is(err, auth.ErrLoginRejected):
		return "check the username, password + security token, client ID/secret or key, and --login-url (sandboxes use https://test.salesforce.com)"
	case errors.Is(err, auth.ErrCannotRefresh):
		return "get a new access token (e.g. `sf org display`), or use --auth soap|client-credentials|jwt so sfarchive can log in again by itself"
	case errors.Is(err, archive.ErrSchemaNotFound):
		return "`sfarchive schemas --archive FILE` lists the stored schema IDs"
	case errors.Is(err, subscriber.ErrUnreachable):
		return "check --endpoint (HOST:PORT; Salesforce: api.pubsub.salesforce.com:7443), --insecure or --ca-file, and the network"
	case errors.Is(err, archive.ErrTopicNotFound), errors.Is(err, query.ErrNoTopicMatch):
		return "`sfarchive status --archive FILE` lists the archived topics"
	}
	switch grpcCode(err) {
	case codes.Unauthenticated:
		return "the access token was refused: check --access-token, --instance-url and --org-id, or log in again"
	case codes.PermissionDenied:
		return "check the topic name (e.g. /data/AccountChangeEvent, /event/Order_Event__e) and the user's permission to subscribe"
	case codes.Unavailable, codes.DeadlineExceeded:
		return "check --endpoint (host:port) and the network; the Pub/Sub API listens on api.pubsub.salesforce.com:7443"
	}
	return ""
}
