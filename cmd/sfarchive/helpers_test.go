package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/emulator"
)

// binPath is the sfarchive binary built once for the subprocess tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sfarchive-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "sfarchive")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sfarchive: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliResult is what one CLI run printed and returned.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs sfarchive in this process.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"sfarchive"}, args...), strings.NewReader(""), &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runBinary runs the built binary as a subprocess, bounded in time.
func runBinary(t *testing.T, timeout time.Duration, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sfarchive %s: did not finish within %s\nstderr:\n%s", strings.Join(args, " "), timeout, stderr.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run sfarchive: %v", err)
		}
		code = ee.ExitCode()
	}
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// testEmulator is an emulator on loopback with one valid token.
type testEmulator struct {
	srv   *emulator.Server
	gen   *emulator.Generator
	addr  string
	token string
}

func startEmulator(t *testing.T) *testEmulator {
	t.Helper()
	srv, err := emulator.New(emulator.Config{InstanceURL: emulatorInstanceURL})
	if err != nil {
		t.Fatal(err)
	}
	const token = "00Dtest!token"
	srv.AddToken(token, 0)
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &testEmulator{srv: srv, gen: emulator.NewGenerator(7, srv), addr: addr, token: token}
}

// subscribeArgs is a subscribe command line against the emulator.
func (te *testEmulator) subscribeArgs(archivePath string, topics ...string) []string {
	args := []string{"subscribe", "--archive", archivePath, "--endpoint", te.addr, "--insecure",
		"--auth", "token", "--access-token", te.token, "--instance-url", emulatorInstanceURL,
		"--org-id", te.srv.OrgID(), "--log-format", "json", "--progress", "never"}
	for _, t := range topics {
		args = append(args, "--topic", t)
	}
	return args
}

// assertArchiveMatches checks that the archive holds exactly the emulator's
// events of each topic, once each, in order, byte for byte.
func assertArchiveMatches(t *testing.T, path string, srv *emulator.Server, topics ...string) int {
	t.Helper()
	arc, err := archive.Open(path, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer arc.Close()
	total := 0
	for _, topic := range topics {
		want := srv.Events(topic)
		i := 0
		err := arc.Scan(context.Background(), topic, archive.ScanOptions{}, func(ev *archive.Event) error {
			if i >= len(want) {
				return fmt.Errorf("archive has more events than published (replay %x)", ev.ReplayID)
			}
			w := want[i]
			if !bytes.Equal(ev.ReplayID, w.ReplayID) {
				return fmt.Errorf("event %d: replay ID %x, published %x", i, ev.ReplayID, w.ReplayID)
			}
			if ev.EventID != w.Event.ID || ev.SchemaID != w.Event.SchemaID {
				return fmt.Errorf("event %d: id/schema %s/%s, published %s/%s", i, ev.EventID, ev.SchemaID, w.Event.ID, w.Event.SchemaID)
			}
			if !bytes.Equal(ev.Payload, w.Event.Payload) {
				return fmt.Errorf("event %d (replay %x): payload differs from what was published", i, ev.ReplayID)
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		if i != len(want) {
			t.Fatalf("%s: archive holds %d events, emulator published %d", topic, i, len(want))
		}
		total += i
	}
	problems, err := arc.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("verify found problems: %+v", problems)
	}
	return total
}

func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
