package subscriber

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/sfarchive/sfarchive/auth"
)

// dial builds the client connection. grpc.NewClient does not connect; the
// start-up GetTopic calls do, within DialTimeout.
func dial(cfg Config) (*grpc.ClientConn, error) {
	var tc credentials.TransportCredentials
	if cfg.Insecure {
		tc = insecure.NewCredentials()
	} else {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%w: read CA file: %w", ErrConfig, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrConfig, cfg.CAFile)
			}
		}
		tc = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(cfg.Endpoint,
		grpc.WithTransportCredentials(tc),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: 20e9, // 20s for the ping's answer
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint %q: %w", ErrConfig, cfg.Endpoint, err)
	}
	return conn, nil
}

// credHolder shares the current credentials between topics and makes sure a
// burst of auth errors (every stream fails at once when a token expires) costs
// one login, not one per topic.
type credHolder struct {
	src   auth.Source
	orgID string // the org the archive is bound to; a refresh must not change it

	mu  sync.Mutex
	cur auth.Credentials
	gen uint64
}

func (h *credHolder) get() (auth.Credentials, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur, h.gen
}

// refresh renews the credentials unless someone already did since seen.
func (h *credHolder) refresh(ctx context.Context, seen uint64) (auth.Credentials, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen != seen {
		return h.cur, h.gen, nil
	}
	c, err := h.src.Refresh(ctx)
	if err != nil {
		if errors.Is(err, auth.ErrCannotRefresh) {
			// The server answers UNAUTHENTICATED alike for an expired token, a
			// wrong instance URL and a wrong org ID (tenantid): name all three.
			// The source's own text only blames the token, so it is kept in the
			// chain (errors.Is) but not in the message.
			return auth.Credentials{}, h.gen, &refusedError{
				msg: fmt.Sprintf("%s: the server refused the access token, instance URL (%s) or org ID (%s), and a given token cannot be renewed; check all three, and that the token has not expired",
					ErrAuth, h.cur.InstanceURL, h.cur.OrgID),
				errs: []error{ErrAuth, err},
			}
		}
		return auth.Credentials{}, h.gen, fmt.Errorf("%w: renew credentials: %w", ErrAuth, err)
	}
	if h.orgID != "" && !sameOrg(c.OrgID, h.orgID) {
		return auth.Credentials{}, h.gen, fmt.Errorf("%w: renewed credentials are for org %s, the archive belongs to org %s", ErrAuth, c.OrgID, h.orgID)
	}
	h.cur = c
	h.gen++
	return c, h.gen, nil
}

// refusedError is an error with its own message that still matches every
// error in errs with errors.Is and errors.As.
type refusedError struct {
	msg  string
	errs []error
}

func (e *refusedError) Error() string   { return e.msg }
func (e *refusedError) Unwrap() []error { return e.errs }

// withCreds returns ctx carrying the Pub/Sub metadata headers for one RPC.
func withCreds(ctx context.Context, c auth.Credentials) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(
		"accesstoken", c.AccessToken,
		"instanceurl", c.InstanceURL,
		"tenantid", c.OrgID,
		"x-client-trace-id", newUUID(),
	))
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// sameOrg compares org IDs, treating the 15- and 18-character forms as equal.
func sameOrg(x, y string) bool {
	if len(x) >= 15 && len(y) >= 15 && (len(x) == 15 || len(y) == 15) {
		return x[:15] == y[:15]
	}
	return x == y
}
