package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// printedCommand returns the shell command printed after the line that
// starts with header, joined across its backslash-continued lines.
func printedCommand(t *testing.T, banner []string, header string) string {
	t.Helper()
	for i, l := range banner {
		if !strings.HasPrefix(l, header) {
			continue
		}
		var cmd strings.Builder
		for _, next := range banner[i+1:] {
			part := strings.TrimSpace(next)
			cont := strings.HasSuffix(part, "\\")
			cmd.WriteString(strings.TrimSuffix(part, "\\"))
			cmd.WriteString(" ")
			if !cont {
				return cmd.String()
			}
		}
	}
	t.Fatalf("no %q in the banner:\n%s", header, strings.Join(banner, "\n"))
	return ""
}

// runShell runs a printed command line in dir with the built sfarchive
// first on PATH.
func runShell(t *testing.T, dir, command string) cliResult {
	t.Helper()
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binPath)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code: code, stderr: string(out)}
}

func archivedEvents(t *testing.T, path string) int {
	t.Helper()
	r := runCLI(t, "status", "--archive", path, "--format", "json")
	var st struct {
		Topics []struct {
			Events int `json:"events"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status of %s: %v\n%s", path, err, r.stderr)
	}
	n := 0
	for _, ts := range st.Topics {
		n += ts.Events
	}
	return n
}

// `sfarchive emulate` over TLS, with faults on, prints command lines that
// work as printed: the token one and the SOAP login one. SIGUSR1 then
// expires every token.
func TestEmulatePrintsWorkingCommands(t *testing.T) {
	dir := t.TempDir()
	emu := exec.Command(binPath, "emulate", "--listen", "127.0.0.1:0", "--login-listen", "127.0.0.1:0", "--tls",
		"--cert-dir", dir, "--events", "30", "--end-streams-after", "7", "--fail", "Subscribe:2:UNAVAILABLE",
		"--change-mix", "UPDATE=1,GAP_OVERFLOW=1", "--schema-change-after", "10", "--log-level", "warn")
	out, err := emu.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		emu.Process.Signal(syscall.SIGTERM)
		emu.Wait()
	}()
	var banner []string
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(30*time.Second, func() { emu.Process.Kill() })
	for sc.Scan() {
		banner = append(banner, sc.Text())
		if strings.HasPrefix(sc.Text(), "Or log in as that user:") {
			for i := 0; i < 3 && sc.Scan(); i++ {
				banner = append(banner, sc.Text())
			}
			break
		}
	}
	deadline.Stop()
	go func() {
		for sc.Scan() {
		}
	}()

	tokenCmd := printedCommand(t, banner, "Archive its events with:")
	soapCmd := printedCommand(t, banner, "Or log in as that user:")
	for name, cmd := range map[string]string{"token": tokenCmd, "soap": soapCmd} {
		t.Run(name, func(t *testing.T) {
			sub := t.TempDir()
			r := runShell(t, sub, cmd+" --exit-when-idle 3s --max-events 60 --backoff-max 200ms --progress never")
			if r.code != 0 {
				t.Fatalf("%s\nexit %d:\n%s", cmd, r.code, r.stderr)
			}
			path := filepath.Join(sub, "events.db")
			if n := archivedEvents(t, path); n != 60 {
				t.Fatalf("archived %d events through streams that end every 7 events, want 60", n)
			}
			// --change-mix: GAP events; --schema-change-after: two schemas to compare.
			r = runCLI(t, "query", "--archive", path, "--change-type", "GAP_*", "--fields", "changeType")
			if r.code != 0 || strings.Count(r.stdout, "GAP_OVERFLOW") == 0 {
				t.Errorf("no GAP_OVERFLOW event archived (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
			}
			r = runCLI(t, "schemas", "diff", "--archive", path, "--topic", accountTopic)
			if r.code != 0 || !strings.Contains(r.stdout, "1 difference") {
				t.Errorf("schemas diff after --schema-change-after: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}

	if err := emu.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	r := runShell(t, t.TempDir(), tokenCmd+" --exit-when-idle 3s --progress never")
	if r.code != exitRejected {
		t.Fatalf("after SIGUSR1 the old token still works: exit %d\n%s", r.code, r.stderr)
	}
}

// Topics can come from a file; a running subscriber's archive is reported
// locked to a query within seconds.
func TestTopicsFileAndQueryOfALockedArchive(t *testing.T) {
	te := startEmulator(t)
	for _, topic := range []string{accountTopic, orderTopic} {
		if _, err := te.gen.PublishN(topic, 20); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	topicsFile := filepath.Join(dir, "topics.txt")
	if err := os.WriteFile(topicsFile, []byte("# what we archive\n"+accountTopic+"\n\n"+orderTopic+"  # orders\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.db")
	sub := exec.Command(binPath, append(te.subscribeArgs(path), "--topics-file", topicsFile)...)
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer sub.Process.Kill()
	for start := time.Now(); ; {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("the subscriber never created the archive")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	r := runCLI(t, "query", "--archive", path, "--lock-timeout", "1s")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("query of a locked archive took %s", took)
	}
	assertCleanFailure(t, r, exitUnavailable, "lock")

	sub.Process.Signal(syscall.SIGTERM)
	if err := sub.Wait(); err != nil {
		t.Fatalf("subscriber after SIGTERM: %v", err)
	}
	// Whatever it had not received before SIGTERM, a catch-up run completes.
	if r := runCLI(t, append(te.subscribeArgs(path), "--topics-file", topicsFile, "--exit-when-idle", "2s")...); r.code != 0 {
		t.Fatalf("catch-up run: exit %d: %s", r.code, r.stderr)
	}
	if n := assertArchiveMatches(t, path, te.srv, accountTopic, orderTopic); n != 40 {
		t.Fatalf("archived %d events from the topics file, want 40", n)
	}
}

// The org of a --login-config is the org the emulator plays, unless --org-id
// says otherwise.
func TestEmulateTakesTheOrgOfTheLoginConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "login.json")
	if err := os.WriteFile(cfg, []byte(`{"org_id":"00D000000000009AAA","users":[{"username":"u@example.com","password":"p"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, "00D000000000009AAA"},
		{[]string{"--org-id", "00D000000000007AAA"}, "00D000000000007AAA"},
	} {
		emu := exec.Command(binPath, append([]string{"emulate", "--listen", "127.0.0.1:0", "--login-listen", "127.0.0.1:0",
			"--login-config", cfg, "--events", "1", "--log-level", "warn"}, tc.extra...)...)
		out, err := emu.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := emu.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		org := ""
		timer := time.AfterFunc(20*time.Second, func() { emu.Process.Kill() })
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "org ID"); ok {
				org = strings.TrimSpace(rest)
				break
			}
		}
		timer.Stop()
		emu.Process.Signal(syscall.SIGTERM)
		emu.Wait()
		if org != tc.want {
			t.Errorf("emulate %v plays org %q, want %s", tc.extra, org, tc.want)
		}
	}
}
