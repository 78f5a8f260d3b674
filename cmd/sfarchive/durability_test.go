package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

// A real `sfarchive subscribe` on three topics is killed with SIGKILL at 20
// random moments while the emulator publishes 20,000 events. After a final
// clean run the archive holds every event exactly once, byte for byte, and
// passes bbolt's consistency check.
func TestSIGKILLLosesNothingAndDuplicatesNothing(t *testing.T) {
	te := startEmulator(t)
	path := filepath.Join(t.TempDir(), "events.db")
	topics := []string{accountTopic, orderTopic, contactTopic}
	const total, kills = 20000, 20

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// Publish steadily for about as long as the kill loop runs.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	published := make(chan error, 1)
	go func() {
		defer wg.Done()
		const chunk = 60
		for n := 0; n < total; n += chunk {
			if _, err := te.gen.PublishN(topics[(n/chunk)%len(topics)], min(chunk, total-n)); err != nil {
				published <- err
				return
			}
			select {
			case <-ctx.Done():
				published <- ctx.Err()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		published <- nil
	}()

	args := te.subscribeArgs(path, topics...)
	for i := 0; i < kills; i++ {
		cmd := exec.Command(binPath, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rng.IntN(450)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		err := cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("run %d was not killed by SIGKILL (it ended by itself: %v)\n%s", i, err, stderr.String())
		}
	}
	if err := <-published; err != nil {
		t.Fatalf("publishing: %v", err)
	}
	wg.Wait()

	// The archive between kills: consistent, and never ahead of the emulator.
	arc, err := archive.Open(path, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open the archive after %d kills: %v", kills, err)
	}
	st, err := arc.Stats()
	arc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var before uint64
	for _, ts := range st.Topics {
		before += ts.Events
	}
	t.Logf("after %d kills the archive held %d of %d events", kills, before, total)
	if before == 0 {
		t.Fatal("no event was archived between the kills: the kill loop tested nothing")
	}

	// A final clean run catches up.
	final := append(args, "--exit-when-idle", "3s")
	if r := runBinary(t, 2*time.Minute, final...); r.code != 0 {
		t.Fatalf("final run: exit %d\n%s", r.code, r.stderr)
	}
	if n := assertArchiveMatches(t, path, te.srv, topics...); n != total {
		t.Fatalf("archive holds %d events, want %d", n, total)
	}
}

// A second subscriber on the same archive exits within seconds with a clear
// error, and the first one, stopped with SIGTERM, commits and exits 0.
func TestSecondSubscriberIsRefused(t *testing.T) {
	te := startEmulator(t)
	path := filepath.Join(t.TempDir(), "events.db")
	if _, err := te.gen.PublishN(orderTopic, 300); err != nil {
		t.Fatal(err)
	}
	first := exec.Command(binPath, te.subscribeArgs(path, orderTopic)...)
	var firstErr syncBuffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	// Wait until the first holds the archive.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first subscriber never created the archive\n%s", firstErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	r := runBinary(t, 30*time.Second, te.subscribeArgs(path, orderTopic)...)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the second subscriber took %s to give up", took)
	}
	assertCleanFailure(t, r, exitUnavailable, path, "lock")

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("first subscriber after SIGTERM: %v\n%s", err, firstErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("first subscriber did not stop within 20s of SIGTERM\n%s", firstErr.String())
	}
	// Whatever the first had not received yet, a clean run completes.
	if r := runBinary(t, time.Minute, append(te.subscribeArgs(path, orderTopic), "--exit-when-idle", "2s")...); r.code != 0 {
		t.Fatalf("catch-up run: exit %d\n%s", r.code, r.stderr)
	}
	if n := assertArchiveMatches(t, path, te.srv, orderTopic); n != 300 {
		t.Fatalf("archive holds %d events, want 300", n)
	}
}

// syncBuffer is a bytes.Buffer safe for a subprocess's output copier and a
// reading test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
