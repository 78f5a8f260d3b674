package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// assertCleanFailure checks the shape every failure must have: the wanted
// exit code, one error line that names what is wrong and says what to do,
// and no panic.
func assertCleanFailure(t *testing.T, r cliResult, code int, mentions ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstderr: %s", r.code, code, r.stderr)
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("stderr shows a panic:\n%s", r.stderr)
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "sfarchive: error: ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 {
		t.Fatalf("want exactly one error line, got %d:\n%s", len(errLines), r.stderr)
	}
	line := errLines[0]
	if !strings.Contains(line, "; try: ") {
		t.Errorf("error does not say what to do: %s", line)
	}
	for _, m := range mentions {
		if !strings.Contains(line, m) {
			t.Errorf("error does not mention %q: %s", m, line)
		}
	}
}

// existingArchive makes a small, valid archive through the CLI and returns
// its path.
func existingArchive(t *testing.T, te *testEmulator) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	if _, err := te.gen.PublishN(orderTopic, 5); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, append(te.subscribeArgs(path, orderTopic), "--max-events", "5", "--exit-when-idle", "10s")...)
	if r.code != 0 {
		t.Fatalf("subscribe: exit %d: %s", r.code, r.stderr)
	}
	return path
}

func TestQueryBadArchives(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	r := runCLI(t, "query", "--archive", missing)
	assertCleanFailure(t, r, exitUnavailable, missing)
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("query created %s", missing)
	}

	notArchive := filepath.Join(dir, "notes.txt")
	content := []byte("these are my notes, not an archive\n")
	if err := os.WriteFile(notArchive, content, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "query", "--archive", notArchive)
	assertCleanFailure(t, r, exitUnavailable, notArchive)
	if got := fileBytes(t, notArchive); !bytes.Equal(got, content) {
		t.Error("query changed a file that is not an archive")
	}

	te := startEmulator(t)
	path := existingArchive(t, te)
	before := fileBytes(t, path)
	r = runCLI(t, "query", "--archive", path, "--topic", "/event/No_Such_Event__e")
	assertCleanFailure(t, r, exitUsage, "/event/No_Such_Event__e")
	for _, args := range [][]string{
		{"query", "--archive", path, "--where", "Amount__c >"},
		{"query", "--archive", path, "--format", "xml"},
		{"query", "--archive", path, "--since", "yesterday-ish"},
		{"query", "--archive", path, "--after-replay", "not-a-replay-id!"},
		{"query", "--archive", path, "--bogus-flag"},
		{"query", "--archive", path, "--record-id", "123"},
		{"query", "--archive", path, "--after-replay", "ff"},
	} {
		r = runCLI(t, args...)
		assertCleanFailure(t, r, exitUsage, strings.TrimLeft(args[len(args)-1], "-"))
	}
	if !bytes.Equal(before, fileBytes(t, path)) {
		t.Error("a failed query changed the archive")
	}
}

func TestSubscribeRejectedOrUnreachable(t *testing.T) {
	te := startEmulator(t)
	path := existingArchive(t, te)
	before := fileBytes(t, path)

	// A wrong token: rejected by the server, exit 4, archive untouched.
	args := te.subscribeArgs(path, orderTopic)
	for i, a := range args {
		if a == te.token {
			args[i] = "00Dwrong!token"
		}
	}
	r := runCLI(t, args...)
	assertCleanFailure(t, r, exitRejected)
	if strings.Contains(r.stderr, "00Dwrong!token") {
		t.Errorf("the token appears in the output:\n%s", r.stderr)
	}
	if !bytes.Equal(before, fileBytes(t, path)) {
		t.Error("a rejected subscribe changed the archive")
	}

	// An endpoint where nothing listens: a bounded failure naming it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	args = te.subscribeArgs(path, orderTopic)
	for i, a := range args {
		if a == te.addr {
			args[i] = dead
		}
	}
	start := time.Now()
	r = runCLI(t, args...)
	assertCleanFailure(t, r, exitFailure, dead)
	if took := time.Since(start); took > 45*time.Second {
		t.Errorf("unreachable endpoint took %s to report", took)
	}
	if !bytes.Equal(before, fileBytes(t, path)) {
		t.Error("a failed subscribe changed the archive")
	}

	// A first run that fails leaves no empty archive behind.
	fresh := filepath.Join(t.TempDir(), "new.db")
	for i, a := range args {
		if a == path {
			args[i] = fresh
		}
	}
	r = runCLI(t, args...)
	assertCleanFailure(t, r, exitFailure, dead)
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed first run left %s behind (stat: %v)", fresh, err)
	}
}

func TestUnknownCommandAndMissingDirectory(t *testing.T) {
	r := runCLI(t, "version")
	assertCleanFailure(t, r, exitUsage, "version")
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "events.db")
	r = runCLI(t, "subscribe", "--archive", missing, "--topic", accountTopic, "--access-token", "x",
		"--instance-url", "https://x.my.salesforce.com", "--org-id", "00D000000000001")
	assertCleanFailure(t, r, exitUsage, "does not exist")
}

// A reader that goes away ends every command quietly with exit 0.
func TestClosedOutputEndsQuietly(t *testing.T) {
	te := startEmulator(t)
	path, _, _ := richArchive(t, te)
	for _, args := range [][]string{
		{"status", "--archive", path},
		{"schemas", "--archive", path},
		{"query", "--archive", path, "--format", "table"},
		{"query", "--archive", path},
	} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pr.Close() // the reader is gone before anything is written
		var stderr bytes.Buffer
		code := run(context.Background(), append([]string{"sfarchive"}, args...), strings.NewReader(""), pw, &stderr)
		pw.Close()
		if code != exitOK || stderr.Len() != 0 {
			t.Errorf("%s into a closed pipe: exit %d, stderr %q; want 0 and nothing", strings.Join(args, " "), code, stderr.String())
		}
	}
}

func TestSubscribeUsageErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	base := []string{"subscribe", "--archive", path, "--auth", "token", "--access-token", "x",
		"--instance-url", "https://x.my.salesforce.com", "--org-id", "00D000000000001", "--endpoint", "127.0.0.1:1", "--insecure"}
	cases := []struct {
		name     string
		extra    []string
		mentions []string
	}{
		{"cometd latest", []string{"--topic", accountTopic, "--from", "-1"}, []string{"latest"}},
		{"cometd earliest", []string{"--topic", accountTopic, "--from", "-2"}, []string{"earliest"}},
		{"decimal replay id", []string{"--topic", accountTopic, "--from", "12907414"}, []string{"hex"}},
		{"batch too large", []string{"--topic", accountTopic, "--batch", "500"}, []string{"--batch"}},
		{"no topic", nil, []string{"--topic"}},
		{"topic without slash", []string{"--topic", "AccountChangeEvent"}, []string{"AccountChangeEvent"}},
		{"unknown auth", []string{"--topic", accountTopic, "--auth", "magic"}, []string{"magic"}},
		{"bad policy", []string{"--topic", accountTopic, "--on-invalid-replay", "latest"}, []string{"--on-invalid-replay"}},
		{"negative max events", []string{"--topic", accountTopic, "--max-events", "-5"}, []string{"--max-events"}},
		{"negative idle", []string{"--topic", accountTopic, "--exit-when-idle", "-1s"}, []string{"--exit-when-idle"}},
		{"instance url without scheme", []string{"--topic", accountTopic, "--instance-url", "acme.my.salesforce.com"}, []string{"--instance-url"}},
		{"instance url with a path", []string{"--topic", accountTopic, "--instance-url", "https://acme.my.salesforce.com/lightning/page/home"}, []string{"path"}},
		{"org id", []string{"--topic", accountTopic, "--org-id", "garbage"}, []string{"--org-id"}},
		{"short replay id", []string{"--topic", accountTopic, "--from", "zzz"}, []string{"--from"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append(append([]string{}, base...), tc.extra...)...)
			assertCleanFailure(t, r, exitUsage, tc.mentions...)
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("a usage error created the archive")
			}
		})
	}
}

// Every command's --help lists every flag, and secrets given through the
// environment never show up in it.
func TestHelpIsCompleteAndSecretFree(t *testing.T) {
	t.Setenv("SFARCHIVE_PASSWORD", "hunter2-and-token")
	t.Setenv("SFARCHIVE_CLIENT_SECRET", "client-secret-value")
	t.Setenv("SFARCHIVE_ACCESS_TOKEN", "00Dsecret!access")
	app := newApp(&env{})
	type named struct {
		path []string
		cmd  *cli.Command
	}
	var all []named
	for _, cmd := range app.Commands {
		all = append(all, named{[]string{cmd.Name}, cmd})
		for _, sub := range cmd.Subcommands {
			all = append(all, named{[]string{cmd.Name, sub.Name}, sub})
		}
	}
	for _, n := range all {
		name := strings.Join(n.path, " ")
		r := runCLI(t, append(n.path, "--help")...)
		if r.code != 0 {
			t.Errorf("%s --help: exit %d: %s", name, r.code, r.stderr)
		}
		for _, f := range n.cmd.Flags {
			if !strings.Contains(r.stdout, "--"+f.Names()[0]) {
				t.Errorf("%s --help does not list --%s", name, f.Names()[0])
			}
			if ev, ok := f.(cli.DocGenerationFlag); !ok || len(ev.GetEnvVars()) == 0 {
				t.Errorf("%s --%s has no SFARCHIVE_ environment variable", name, f.Names()[0])
			}
		}
		if n.cmd.Usage == "" {
			t.Errorf("%s has no usage line", name)
		}
		for _, secret := range []string{"hunter2", "client-secret-value", "00Dsecret"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%s --help shows a secret from the environment", name)
			}
		}
	}
	r := runCLI(t, "--help")
	for _, cmd := range app.Commands {
		if !strings.Contains(r.stdout, cmd.Name) {
			t.Errorf("sfarchive --help does not list %s", cmd.Name)
		}
	}
}
