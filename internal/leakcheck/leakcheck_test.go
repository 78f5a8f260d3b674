package leakcheck

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"testing"
	"time"
)

// childEnv selects what TestChild does in a child process of TestInChildProcess.
const childEnv = "LEAKCHECK_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "" {
		os.Exit(m.Run())
	}
	grace = 300 * time.Millisecond
	Main(m)
}

// leakyWorker blocks until stop is closed; the tests look for its name in the reports.
func leakyWorker(stop <-chan struct{}) { <-stop }

// fakeTB records what Check does with a testing.TB: its cleanups, to run them on demand, and its errors.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

// end runs the cleanups, last registered first, as the testing package does when a test ends.
func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// setGrace shortens the grace period for one test.
func setGrace(t *testing.T, d time.Duration) {
	old := grace
	grace = d
	t.Cleanup(func() { grace = old })
}

func TestCheckFailsOnLeak(t *testing.T) {
	setGrace(t, 200*time.Millisecond)
	for _, tc := range []struct {
		leaks int
		want  string
	}{
		{1, "leakcheck: 1 goroutine is still running:"},
		{3, "leakcheck: 3 goroutines are still running:"},
	} {
		stop := make(chan struct{})
		f := &fakeTB{TB: t}
		Check(f)
		for range tc.leaks {
			go leakyWorker(stop)
		}
		began := time.Now()
		f.end()
		waited := time.Since(began)
		close(stop)
		if waited < grace {
			t.Errorf("%d leaks: reported after %s, before the grace period of %s", tc.leaks, waited, grace)
		}
		if len(f.errors) != 1 {
			t.Errorf("%d leaks: got %d errors, want 1: %q", tc.leaks, len(f.errors), f.errors)
			continue
		}
		report := f.errors[0]
		if !strings.Contains(report, tc.want) {
			t.Errorf("report lacks %q:\n%s", tc.want, report)
		}
		if n := strings.Count(report, "leakcheck.leakyWorker("); n != tc.leaks {
			t.Errorf("report shows %d stacks of leakyWorker, want %d:\n%s", n, tc.leaks, report)
		}
		if strings.Count(report, "\ncreated by ") != tc.leaks || strings.Contains(report, "testing.tRunner") {
			t.Errorf("report shows goroutines other than the leaked ones:\n%s", report)
		}
	}
}

func TestCheckPassesWithoutLeak(t *testing.T) {
	setGrace(t, 5*time.Second)
	f := &fakeTB{TB: t}
	Check(f)
	// One goroutine ends at once, one only during the grace period.
	go func() {}()
	stop := make(chan struct{})
	go leakyWorker(stop)
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	f.end()
	if len(f.errors) != 0 {
		t.Fatalf("unexpected errors: %q", f.errors)
	}
}

func TestCheckIgnoresEarlierGoroutines(t *testing.T) {
	setGrace(t, 100*time.Millisecond)
	stop := make(chan struct{})
	defer close(stop)
	go leakyWorker(stop)
	f := &fakeTB{TB: t}
	Check(f)
	f.end()
	if len(f.errors) != 0 {
		t.Fatalf("a goroutine started before Check was reported: %q", f.errors)
	}
}

func TestCheckIgnoresSignalLoop(t *testing.T) {
	setGrace(t, 100*time.Millisecond)
	f := &fakeTB{TB: t}
	Check(f)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt) // starts os/signal's loop goroutine, which runs for good
	signal.Stop(c)
	f.end()
	if len(f.errors) != 0 {
		t.Fatalf("os/signal's goroutine was reported: %q", f.errors)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		entry string
		want  goroutine
	}{
		{
			entry: "goroutine 1 [chan receive]:\ntesting.(*T).Run(0xc000003340, {0x5a1b2c, 0x4}, 0x5b8f10)\n\t/go/src/testing/testing.go:2005 +0x485\n" +
				"testing.runTests.func1(0xc000003340)\n\t/go/src/testing/testing.go:2477 +0x37\nmain.main()\n\t_testmain.go:45 +0x9b",
			want: goroutine{id: 1, state: "chan receive", top: "testing.(*T).Run"},
		},
		{
			entry: "goroutine 42 gp=0xc000102a80 m=nil [select, 2 minutes]:\nexample.com/p.(*srv).loop(0xc0001a2000)\n\t/src/p/p.go:12 +0x1d\n" +
				"created by example.com/p.Start in goroutine 7\n\t/src/p/p.go:30 +0x25",
			want: goroutine{id: 42, state: "select, 2 minutes", top: "example.com/p.(*srv).loop", creator: "example.com/p.Start"},
		},
	} {
		got, ok := parse(tc.entry)
		tc.want.stack = tc.entry
		if !ok || got != tc.want {
			t.Errorf("parse(%q) = %+v, %v; want %+v", tc.entry, got, ok, tc.want)
		}
	}
	if _, ok := parse("not a goroutine"); ok {
		t.Error("parse accepted an entry without a goroutine header")
	}
}

// TestChild is what the child processes of TestInChildProcess run, chosen by childEnv.
func TestChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("runs only in a child process of TestInChildProcess")
	}
	if strings.HasPrefix(mode, "check-") {
		Check(t)
	}
	t.Run("sub", func(t *testing.T) {})
	stop := make(chan struct{})
	go leakyWorker(stop)
	if strings.HasSuffix(mode, "-clean") {
		close(stop)
	}
}

// TestInChildProcess runs the test binary again with a real testing.T and testing.M: Check and Main must fail
// a run that leaks a goroutine and pass one that does not.
func TestInChildProcess(t *testing.T) {
	for _, tc := range []struct {
		mode string
		fail bool
		want []string
	}{
		{"check-leak", true, []string{"--- FAIL: TestChild", "leakcheck: 1 goroutine is still running:", "leakcheck.leakyWorker("}},
		{"check-clean", false, []string{"--- PASS: TestChild"}},
		{"main-leak", true, []string{"--- PASS: TestChild", "leakcheck: the tests passed, but 1 goroutine is still running:", "leakcheck.leakyWorker("}},
		{"main-clean", false, []string{"--- PASS: TestChild"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			Check(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.mode)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case tc.fail && !errors.As(err, &exit):
				t.Fatalf("child passed (%v), want exit status 1\n%s", err, out)
			case tc.fail && exit.ExitCode() != 1:
				t.Fatalf("child: %v, want exit status 1\n%s", err, out)
			case !tc.fail && err != nil:
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
