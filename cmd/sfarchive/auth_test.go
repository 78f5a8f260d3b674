package main

import (
	"context"
	"crypto/rsa"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sfarchive/sfarchive/emulator/login"
	"github.com/sfarchive/sfarchive/internal/testkeys"
)

// loginEmulator adds the login endpoints to an emulator, with one user and
// one connected app whose JWT key is written to a file.
type loginEmulator struct {
	*testEmulator
	login    *login.Server
	loginURL string
	keyFile  string // the app's private key (PEM)
	wrongKey string // a key the app does not know
}

// writeKey writes k's PEM to dir/name and returns the path.
func writeKey(t *testing.T, dir, name string, k *rsa.PrivateKey) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, testkeys.PrivatePEM(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startLoginEmulator(t *testing.T) *loginEmulator {
	t.Helper()
	te := startEmulator(t)
	dir := t.TempDir()
	key, stranger := testkeys.Pair()
	keyFile := writeKey(t, dir, "app.key", key)
	wrongKey := writeKey(t, dir, "other.key", stranger)
	ls, err := login.New(login.Config{
		OrgID:       te.srv.OrgID(),
		InstanceURL: emulatorInstanceURL,
		Users:       []login.User{{Username: "auditor@example.com", Password: "s3cret", SecurityToken: "TKN"}},
		Apps: []login.App{{ClientID: "app-1", ClientSecret: "app-secret", RunAs: "auditor@example.com",
			PublicKeyPEM: testkeys.PublicPEM(key)}},
		Issuer: te.srv,
	})
	if err != nil {
		t.Fatal(err)
	}
	url, err := ls.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ls.Stop)
	return &loginEmulator{testEmulator: te, login: ls, loginURL: url, keyFile: keyFile, wrongKey: wrongKey}
}

// loginArgs is a subscribe command line that logs in with method.
func (le *loginEmulator) loginArgs(path string, method ...string) []string {
	args := []string{"subscribe", "--archive", path, "--endpoint", le.addr, "--insecure", "--login-url", le.loginURL,
		"--topic", orderTopic, "--log-format", "json", "--progress", "never"}
	return append(args, method...)
}

func TestEveryLoginMethod(t *testing.T) {
	le := startLoginEmulator(t)
	if _, err := le.gen.PublishN(orderTopic, 30); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SFARCHIVE_PASSWORD", "")
	t.Setenv("SFARCHIVE_CLIENT_SECRET", "")
	methods := map[string][]string{
		"soap":               {"--auth", "soap", "--username", "auditor@example.com", "--password", "s3cretTKN"},
		"client-credentials": {"--auth", "client-credentials", "--client-id", "app-1", "--client-secret", "app-secret"},
		"jwt":                {"--auth", "jwt", "--client-id", "app-1", "--username", "auditor@example.com", "--jwt-key-file", le.keyFile},
	}
	for name, method := range methods {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			r := runCLI(t, append(le.loginArgs(path, method...), "--max-events", "30", "--exit-when-idle", "10s")...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if n := assertArchiveMatches(t, path, le.srv, orderTopic); n != 30 {
				t.Fatalf("archived %d events, want 30", n)
			}
		})
	}

	rejected := map[string][]string{
		"wrong password":      {"--auth", "soap", "--username", "auditor@example.com", "--password", "s3cret"},
		"wrong client secret": {"--auth", "client-credentials", "--client-id", "app-1", "--client-secret", "nope"},
		"wrong jwt key":       {"--auth", "jwt", "--client-id", "app-1", "--username", "auditor@example.com", "--jwt-key-file", le.wrongKey},
	}
	for name, method := range rejected {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			r := runCLI(t, le.loginArgs(path, method...)...)
			assertCleanFailure(t, r, exitRejected, "rejected")
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("a rejected login created the archive (stat: %v)", err)
			}
		})
	}
}

// The session expires while the subscription runs: the next call is refused
// with UNAUTHENTICATED, sfarchive logs in again and resumes from its stored
// position; nothing is lost or duplicated.
func TestSessionExpiresMidRun(t *testing.T) {
	le := startLoginEmulator(t)
	if _, err := le.gen.PublishN(orderTopic, 200); err != nil {
		t.Fatal(err)
	}
	// Every stream ends after 50 events, so sfarchive must open new ones,
	// and each new one meets an expired token.
	le.srv.EndStreamsAfter(50, codes.Unavailable, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				le.srv.ExpireTokens()
			}
		}
	}()
	path := filepath.Join(t.TempDir(), "events.db")
	r := runCLI(t, append(le.loginArgs(path, "--auth", "soap", "--username", "auditor@example.com", "--password", "s3cretTKN"),
		"--max-events", "200", "--exit-when-idle", "20s", "--backoff-max", "200ms")...)
	cancel()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := assertArchiveMatches(t, path, le.srv, orderTopic); n != 200 {
		t.Fatalf("archived %d events, want 200", n)
	}
	if n := le.login.Logins(); n < 2 {
		t.Errorf("sfarchive logged in %d time(s); the expired session should have made it log in again", n)
	}
}
