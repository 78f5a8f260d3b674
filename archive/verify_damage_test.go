package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// damagedArchiveSource writes a real archive (two seeded topics, one topic of 3,000 events spread over branch pages)
// and returns its bytes.
func damagedArchiveSource(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "source.sfa")
	a := openTest(t, path, Options{NoSync: true})
	seedArchive(t, a)
	fillTopic(t, a, topicA, 30, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// plainDamageMessage fails the test if msg carries Go runtime text or sends the user to the command that produced it.
func plainDamageMessage(t *testing.T, what, msg string) {
	t.Helper()
	for _, bad := range []string{"runtime error", "goroutine", "index out of range", "nil pointer", "sfarchive verify"} {
		if strings.Contains(msg, bad) {
			t.Errorf("%s %q contains %q", what, msg, bad)
		}
	}
}

// TestVerifyBitFlips damages copies of a real archive with a few flipped bits each (the seed names the copy) and
// checks that Verify never panics or hangs, and that any damage it meets comes back as problems in plain words.
func TestVerifyBitFlips(t *testing.T) {
	src := damagedArchiveSource(t)
	seeds := 400
	if testing.Short() {
		seeds = 60
	}
	dir := t.TempDir()
	var healthy, found, refused, damagedPages int
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 0x5fa))
		data := append([]byte(nil), src...)
		flips := 1 + rng.IntN(8)
		for range flips {
			// Mostly past the two meta pages: damage there only makes bbolt fall back to the other meta.
			i := 8192 + rng.IntN(len(data)-8192)
			if rng.IntN(10) == 0 {
				i = rng.IntN(len(data))
			}
			data[i] ^= 1 << rng.IntN(8)
		}
		path := filepath.Join(dir, fmt.Sprintf("flipped-%d.sfa", seed))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := Open(path, Options{ReadOnly: true, LockTimeout: -1})
		if err != nil {
			if !errors.Is(err, ErrNotArchive) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormatVersion) {
				t.Fatalf("seed %d: Open = %v, want ErrNotArchive, ErrCorrupt or ErrFormatVersion", seed, err)
			}
			plainDamageMessage(t, fmt.Sprintf("seed %d: Open error", seed), err.Error())
			refused++
			continue
		}
		type result struct {
			problems []Problem
			err      error
			panicked any
		}
		done := make(chan result, 1)
		go func() {
			var r result
			defer func() {
				r.panicked = recover()
				done <- r
			}()
			r.problems, r.err = a.Verify(t.Context())
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("seed %d: Verify still running after 20 s", seed)
		}
		_ = a.Close()
		if r.panicked != nil {
			t.Fatalf("seed %d: Verify panicked: %v", seed, r.panicked)
		}
		if r.err != nil {
			t.Fatalf("seed %d: Verify = %v, want damage reported as problems", seed, r.err)
		}
		for _, p := range r.problems {
			plainDamageMessage(t, fmt.Sprintf("seed %d: problem", seed), p.String())
			if strings.HasPrefix(p.What, "file damaged") {
				damagedPages++
			}
		}
		if len(r.problems) == 0 {
			healthy++ // the flips hit free space or slack, or bytes no check can tell from good ones
		} else {
			found++
		}
		_ = os.Remove(path)
	}
	t.Logf("%d copies: %d refused by Open, %d with problems (%d page-level), %d looked healthy", seeds, refused,
		found, damagedPages, healthy)
	if found < seeds/4 || damagedPages == 0 {
		t.Errorf("only %d of %d damaged copies gave problems (%d page-level)", found, seeds, damagedPages)
	}
}

// TestCorruptErrorIsPlain: the error kept for Open, Scan and Stats says the file is damaged without Go runtime
// text, and still carries that text for a bug report.
func TestCorruptErrorIsPlain(t *testing.T) {
	a := newTest(t)
	fillTopic(t, a, topicA, 1, 3)
	err := a.view(func(*bolt.Tx) error {
		var s []int
		_ = s[5] // what a damaged page does to bbolt
		return nil
	}, nil)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("view after a panic = %v, want ErrCorrupt", err)
	}
	plainDamageMessage(t, "error", err.Error())
	ce, ok := errors.AsType[*CorruptError](err)
	if !ok || !strings.Contains(ce.Detail, "index out of range") ||
		!strings.Contains(fmt.Sprintf("%+v", ce), "index out of range") {
		t.Fatalf("CorruptError %#v does not keep the runtime text", ce)
	}
}

// cyclicArchive writes an archive whose topicA events root (a branch page) points at itself.
func cyclicArchive(t *testing.T) (path string, root uint64) {
	t.Helper()
	return damagedRootArchive(t, func(p []byte, root uint64) {
		copy(p[boltPageHeader+8:], binaryNE64(root)) // element 0 → the page itself
	})
}

// damagedRootArchive writes an archive and lets damage change the topicA events root page (a branch page) in the
// file.
func damagedRootArchive(t *testing.T, damage func(page []byte, root uint64)) (path string, root uint64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "cycle.sfa")
	a, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillTopic(t, a, topicA, 30, 100)
	var pageSize int
	if err := a.db.View(func(tx *bolt.Tx) error {
		root = uint64(topicBucket(tx, topicA).Bucket(bucketEvents).Root())
		pageSize = tx.DB().Info().PageSize
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := data[root*uint64(pageSize):]
	if flags := binary.NativeEndian.Uint16(p[8:]); flags != pageFlagBranch {
		t.Fatalf("events root page %d is not a branch page (flags %#x): the topic is too small", root, flags)
	}
	damage(p, root)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, root
}

// TestVerifyPageCycle: a branch page pointing at itself would make bbolt loop for ever (or overflow its stack in
// Check). Verify reports it, and a Scan of the same snapshot then fails at once instead of looping.
func TestVerifyPageCycle(t *testing.T) {
	path, root := cyclicArchive(t)
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		problems, err := ro.Verify(t.Context())
		if err != nil {
			t.Errorf("Verify = %v, want problems", err)
			return
		}
		want := fmt.Sprintf("file damaged: page %d is referenced twice", root)
		if len(problems) != 1 || !strings.Contains(problems[0].String(), want) {
			t.Errorf("problems %v, want one saying %q", problems, want)
		}
		err = ro.Scan(t.Context(), topicA, ScanOptions{}, func(*Event) error { return nil })
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "referenced twice") {
			t.Errorf("Scan after Verify = %v, want ErrCorrupt naming the damage", err)
		}
		plainDamageMessage(t, "Scan error", fmt.Sprint(err))
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Verify or Scan of a file with a page cycle still running after 20 s")
	}
}

// A Scan that meets a page twice without Verify first (the root's second child points at its first, so the
// cursor would go round the same keys) ends with ErrCorrupt instead of repeating events, forward and backward.
// (A branch page that points at itself makes bbolt's own cursor descend for ever before any key is seen; only
// Verify, which walks the page tree itself, catches that one.)
func TestScanOfARepeatedPageEnds(t *testing.T) {
	path, _ := damagedRootArchive(t, func(p []byte, _ uint64) {
		copy(p[boltPageHeader+16+8:], p[boltPageHeader+8:boltPageHeader+16]) // element 1 → element 0's child
	})
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, reverse := range []bool{false, true} {
		done := make(chan error, 1)
		go func() {
			done <- ro.Scan(t.Context(), topicA, ScanOptions{Reverse: reverse}, func(*Event) error { return nil })
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Scan(reverse=%v) of a repeated page = %v, want ErrCorrupt", reverse, err)
			}
			plainDamageMessage(t, "Scan error", fmt.Sprint(err))
		case <-time.After(20 * time.Second):
			t.Fatalf("Scan(reverse=%v) of a repeated page still running after 20 s", reverse)
		}
	}
}

func binaryNE64(v uint64) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, v)
	return b
}

// TestVerifyUnreadablePage: when bbolt panics on a page midway, Verify returns the problems found so far plus one
// saying the file is damaged, in plain words (bbolt's own assertion text is kept, the Go runtime's is not).
func TestVerifyUnreadablePage(t *testing.T) {
	at := time.Now()
	for _, tc := range []struct {
		name  string
		panic func()
		want  string
	}{
		{"runtime error", func() { var s []int; _ = s[len(s)+3] }, "file damaged: a page could not be read; the check stopped there"},
		{"bbolt assertion", func() { panic("assertion failed: Page expected to be: 5, but self identifies as 7") },
			"file damaged: a page could not be read (bbolt: assertion failed: Page expected to be: 5, but self identifies as 7)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTest(t)
			mustAppend(t, a, TopicBatch{Topic: "/data/A", Events: []Event{testEvent(1, "gone", at)}},
				TopicBatch{Topic: "/event/B", Events: []Event{testEvent(1, "s", at)}, Schemas: map[string]string{"s": "{}"}})
			testHookVerifyTopic = func(topic string) {
				if topic == "/event/B" {
					tc.panic()
				}
			}
			defer func() { testHookVerifyTopic = nil }()
			problems, err := a.Verify(t.Context())
			if err != nil {
				t.Fatalf("Verify = %v, want problems", err)
			}
			if len(problems) != 2 || !strings.Contains(problems[0].String(), "schema gone is not stored") ||
				!strings.Contains(problems[1].String(), tc.want) {
				t.Fatalf("problems %q, want the missing schema, then %q", problems, tc.want)
			}
			plainDamageMessage(t, "problem", problems[1].String())
		})
	}
}
