package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLockedErrorNamesHolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the holder is looked up in /proc/locks")
	}
	path := filepath.Join(t.TempDir(), "held.sfa")
	_ = openTest(t, path, Options{NoSync: true})
	_, err := Open(path, Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open beside a writer = %v, want ErrLocked", err)
	}
	le, ok := errors.AsType[*LockedError](err)
	if !ok {
		t.Fatalf("Open beside a writer = %T %v, want *LockedError", err, err)
	}
	if le.PID != os.Getpid() {
		t.Fatalf("holder PID %d, want this process %d (error %q)", le.PID, os.Getpid(), err)
	}
	// The command line is this test binary's, cut to maxHolderCommand runes.
	if !strings.Contains(le.Command, filepath.Base(os.Args[0])) {
		t.Errorf("holder command %q does not name %s", le.Command, filepath.Base(os.Args[0]))
	}
	if n := len([]rune(le.Command)); n > maxHolderCommand+1 {
		t.Errorf("holder command is %d runes long", n)
	}
	want := fmt.Sprintf("archive %s is locked by process %d (%s); gave up after 50ms", path, os.Getpid(), le.Command)
	if err.Error() != want {
		t.Errorf("error\n%q, want\n%q", err, want)
	}
}

func TestLockedErrorWithoutHolder(t *testing.T) {
	for _, tc := range []struct {
		e    LockedError
		want []string
	}{
		{LockedError{Path: "a.db", Waited: 2 * time.Second}, []string{"open archive a.db: ", ErrLocked.Error(),
			"probably a running `sfarchive subscribe`, or a query still reading", "gave up after 2s"}},
		{LockedError{Path: "a.db", ReadOnly: true, Waited: time.Second}, []string{"is writing it", "gave up after 1s"}},
		{LockedError{Path: "a.db", Waited: -1}, []string{"did not wait"}},
		{LockedError{Path: "a.db", Waited: time.Second, PID: 7, Others: 2},
			[]string{"archive a.db is locked by process 7 and 2 others; gave up after 1s"}},
	} {
		got := tc.e.Error()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%+v: error %q does not contain %q", tc.e, got, w)
			}
		}
		if !errors.Is(&tc.e, ErrLocked) {
			t.Errorf("%+v does not wrap ErrLocked", tc.e)
		}
	}
}

func TestNegativeLockTimeoutDoesNotWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nowait.sfa")
	w := openTest(t, path, Options{NoSync: true})
	start := time.Now()
	_, err := Open(path, Options{ReadOnly: true, LockTimeout: -1})
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("negative LockTimeout waited %v", took)
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "did not wait") {
		t.Fatalf("Open with a negative LockTimeout beside a writer = %v, want ErrLocked saying it did not wait", err)
	}
	// Free, it opens at once.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, Options{ReadOnly: true, LockTimeout: -time.Second})
	if err != nil {
		t.Fatalf("Open of a free file with a negative LockTimeout: %v", err)
	}
	_ = r.Close()
}
