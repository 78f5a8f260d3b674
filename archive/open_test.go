package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.sfa")
	before := time.Now().Add(-time.Second)
	a := openTest(t, path, Options{NoSync: true, WriterVersion: "sfarchive test"})
	st, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != FormatVersion || st.CreatedAt.Before(before) || st.Path != path || st.FileSize == 0 {
		t.Fatalf("stats of a new archive: %+v", st)
	}
	err = a.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketSchemas, bucketTopics, bucketGaps} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		if got := string(tx.Bucket(bucketMeta).Get(metaWriterVersion)); got != "sfarchive test" {
			t.Errorf("writer version %q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", fi, err)
	}
}

func TestOpenReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sfa")
	_, err := Open(path, Options{ReadOnly: true})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v, want ErrNotFound naming the path", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only open created the file: %v", err)
	}
}

func TestOpenNotAnArchive(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("text.txt", []byte(strings.Repeat("this is not a database\n", 2000)))
	short := write("short.txt", []byte("hello"))
	empty := write("empty", nil)
	zeros := write("zeros", make([]byte, 64<<10))

	// A bbolt file of another program: valid bbolt, no meta bucket.
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("other"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A real archive cut short: valid header, pages missing.
	whole := filepath.Join(dir, "whole.sfa")
	a := openTest(t, whole, Options{NoSync: true})
	mustAppend(t, a, TopicBatch{Topic: "/event/X__e", Events: []Event{testEvent(1, "s", time.Now())}})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	truncated := write("truncated.sfa", data[:16384]) // bbolt pages reach 32 KiB here

	cases := []struct {
		name, path string
		readOnly   bool
	}{
		{"text read-only", text, true}, {"text writable", text, false},
		{"short read-only", short, true}, {"short writable", short, false},
		{"empty read-only", empty, true},
		{"zeros read-only", zeros, true}, {"zeros writable", zeros, false},
		{"foreign bbolt read-only", foreign, true}, {"foreign bbolt writable", foreign, false},
		{"truncated read-only", truncated, true}, {"truncated writable", truncated, false},
		{"directory", dir, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before []byte
			if fi, err := os.Stat(c.path); err == nil && !fi.IsDir() {
				before, _ = os.ReadFile(c.path)
			}
			a, err := Open(c.path, Options{ReadOnly: c.readOnly, NoSync: true})
			if err == nil {
				_ = a.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrNotArchive) || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("Open = %v, want ErrNotArchive naming the path", err)
			}
			if before != nil {
				after, _ := os.ReadFile(c.path)
				if !bytes.Equal(before, after) {
					t.Fatal("the refused file was modified")
				}
			}
		})
	}
}

func TestOpenUnknownFormatVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.sfa")
	a := openTest(t, path, Options{NoSync: true})
	if err := a.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaFormat, []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{true, false} {
		_, err := Open(path, Options{ReadOnly: ro})
		if !errors.Is(err, ErrFormatVersion) {
			t.Fatalf("Open(read-only=%t) = %v, want ErrFormatVersion", ro, err)
		}
	}
	// Put the version back so the cleanup's consistency check can open it.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaFormat, []byte("1")) }); err != nil {
		t.Fatal(err)
	}
}

func TestOpenEmptyFileWritableBecomesArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "touched.sfa")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := openTest(t, path, Options{NoSync: true})
	if _, err := a.Stats(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.sfa")
	writer := openTest(t, path, Options{NoSync: true})
	mustAppend(t, writer, TopicBatch{Topic: "/event/X__e", Events: []Event{testEvent(1, "s", time.Now())}})
	for _, ro := range []bool{false, true} {
		timeout := 300 * time.Millisecond
		start := time.Now()
		a, err := Open(path, Options{ReadOnly: ro, LockTimeout: timeout})
		took := time.Since(start)
		if err == nil {
			_ = a.Close()
			t.Fatalf("second open (read-only=%t) succeeded while a writer holds the file", ro)
		}
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second open (read-only=%t) = %v, want ErrLocked", ro, err)
		}
		// The holder is the first handle, so on Linux the error names this very process.
		holder := "subscribe"
		if runtime.GOOS == "linux" {
			holder = fmt.Sprintf("is locked by process %d (", os.Getpid())
		}
		for _, want := range []string{path, holder} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if took < timeout-50*time.Millisecond || took > timeout+time.Second {
			t.Errorf("gave up after %v, want about %v", took, timeout)
		}
	}
	// Readers share: two read-only handles at once, and the writer waits for them.
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	r1 := openTest(t, path, Options{ReadOnly: true})
	r2 := openTest(t, path, Options{ReadOnly: true})
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("writer open beside readers = %v, want ErrLocked", err)
	}
	for _, r := range []*Archive{r1, r2} {
		if n := len(collect(t, r, "/event/X__e", ScanOptions{})); n != 1 {
			t.Fatalf("reader sees %d events", n)
		}
	}
}

func TestReadOnlyNeverModifies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.sfa")
	w := openTest(t, path, Options{NoSync: true})
	seedArchive(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fiBefore, _ := os.Stat(path)

	a := openTest(t, path, Options{ReadOnly: true})
	ctx := context.Background()
	if n := len(collect(t, a, "/data/AccountChangeEvent", ScanOptions{Reverse: true})); n == 0 {
		t.Fatal("no events")
	}
	if _, err := a.Stats(); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Verify(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Verify = %v, %v", p, err)
	}
	if _, err := a.Gaps(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append([]TopicBatch{{Topic: "t", LatestReplayID: rid10(1)}}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append on read-only = %v", err)
	}
	if err := a.BindOrg("00D000000000001AAA", "https://x"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("BindOrg on read-only = %v", err)
	}
	if err := a.AddGap(Gap{Topic: "t"}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("AddGap on read-only = %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fiAfter, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !fiAfter.ModTime().Equal(fiBefore.ModTime()) {
		t.Fatal("read-only open, scan, stats, verify and close changed the file")
	}
}

// seedArchive writes a small realistic archive: two topics, schemas, a mark, an org and a gap.
func seedArchive(t *testing.T, a *Archive) {
	t.Helper()
	if err := a.BindOrg("00D000000000001AAA", "https://example.my.salesforce.com"); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for c := range 5 {
		var acc, ord []Event
		for i := range 10 {
			n := uint64(c*10 + i + 1)
			acc = append(acc, testEvent(n, "acc1", base.Add(time.Duration(n)*time.Second)))
			ord = append(ord, testEvent(n, "ord1", base.Add(time.Duration(n)*time.Second)))
		}
		mustAppend(t, a,
			TopicBatch{Topic: "/data/AccountChangeEvent", Events: acc, Schemas: map[string]string{"acc1": `{"type":"record","name":"A","fields":[]}`}},
			TopicBatch{Topic: "/event/Order_Event__e", Events: ord, Schemas: map[string]string{"ord1": `{"type":"record","name":"O","fields":[]}`}})
	}
	if err := a.AddGap(Gap{Topic: "/event/Order_Event__e", Kind: "invalid-replay", FromReplayID: rid10(0), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedPagesGiveErrCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "damaged.sfa")
	a, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillTopic(t, a, topicA, 20, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4 * 4096; i < len(data); i++ { // meta and freelist pages intact, every data page garbage
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{ReadOnly: true})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a damaged archive = %v, want ErrCorrupt naming the path", err)
	}
	plainDamageMessage(t, "Open error", err.Error())
}

func TestScanCallbackPanicPropagates(t *testing.T) {
	a := newTest(t)
	fillTopic(t, a, topicA, 1, 3)
	defer func() {
		if r := recover(); r != "caller bug" {
			t.Fatalf("recovered %v, want the callback's own panic", r)
		}
		// The read transaction was rolled back: writes still work.
		mustAppend(t, a, TopicBatch{Topic: topicA, LatestReplayID: rid10(9)})
	}()
	_ = a.Scan(t.Context(), topicA, ScanOptions{}, func(*Event) error { panic("caller bug") })
	t.Fatal("Scan returned after its callback panicked")
}
