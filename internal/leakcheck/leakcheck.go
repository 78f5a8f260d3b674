// Package leakcheck fails tests whose goroutines outlive them.
//
// Check guards one test; Main guards a whole test binary from its TestMain. Both note which goroutines run
// when they start, wait up to a grace period for the goroutines started since then to end, and report the
// stacks of those still running. Goroutines of the runtime and of the testing package (test runners, the
// os/signal loop, the finalizer and cleanup goroutines, cgo callbacks) are not counted as leaks, so a report
// lists only goroutines that the code under test started.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// grace is how long a check waits for goroutines to end before it reports them; poll is how often it looks.
var (
	grace = 5 * time.Second
	poll  = 10 * time.Millisecond
)

// Check fails t when goroutines started after the call are still running a grace period after t has ended.
//
// It registers a Cleanup; call it first in the test (or in the helper that sets the test up), before any
// cleanup that stops what the test started, so that the check runs after all of those.
func Check(t testing.TB) {
	t.Helper()
	before := ids(goroutines())
	t.Cleanup(func() {
		t.Helper() // report the failure at the test's call of Check
		if leaked := wait(before); len(leaked) > 0 {
			t.Errorf("leakcheck: %s", report(leaked))
		}
	})
}

// Main runs the tests of m and exits with their exit code. When they pass but goroutines started during the
// run are still running after a grace period, it prints their stacks to standard error and exits with 1.
// Call it from TestMain in place of os.Exit(m.Run()).
func Main(m *testing.M) {
	before := ids(goroutines())
	code := m.Run()
	if code == 0 {
		if leaked := wait(before); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: the tests passed, but %s\n", report(leaked))
			code = 1
		}
	}
	os.Exit(code)
}

// goroutine is one goroutine of a runtime.Stack dump.
type goroutine struct {
	id      int
	state   string // "chan receive", "select", "syscall, 2 minutes", ...
	top     string // the function running at the top of the stack
	creator string // the function whose go statement started it; "" for the main goroutine
	stack   string // the whole entry of the dump
}

// wait polls until no goroutine outside before (nor the caller's) is running other than the runtime's and the
// testing package's own, for at most grace. It returns those still running then.
func wait(before map[int]bool) []goroutine {
	deadline := time.Now().Add(grace)
	for {
		leaked := started(before)
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(poll)
	}
}

// started returns the running goroutines that are not in before, not the caller and not the runtime's or the
// testing package's own.
func started(before map[int]bool) []goroutine {
	all := goroutines()
	var out []goroutine
	for i, g := range all {
		// runtime.Stack lists the calling goroutine first.
		if i == 0 || before[g.id] || own(g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

// own reports whether g belongs to the runtime or the testing package rather than to the code under test.
func own(g goroutine) bool {
	switch {
	case g.creator == "":
		// The main goroutine, which runs testing.(*M).Run.
		return true
	case strings.HasPrefix(g.creator, "testing.") || strings.HasPrefix(g.creator, "runtime."),
		strings.HasPrefix(g.creator, "runtime/trace."):
		// Test runners (created by testing.(*T).Run and testing.runTests), signal forwarding
		// (runtime.ensureSigM), finalizers and cleanups running user code, the execution tracer.
		return true
	case strings.HasPrefix(g.top, "os/signal.") || strings.Contains(g.stack, "\nos/signal.loop("):
		// The loop signal.Notify starts once per process.
		return true
	case g.top == "runtime.goexit" && strings.HasPrefix(g.state, "syscall"):
		// A goroutine returning from cgo (go.dev/issue/16714).
		return true
	}
	return false
}

// report describes leaked goroutines with their stacks.
func report(leaked []goroutine) string {
	var b strings.Builder
	if len(leaked) == 1 {
		b.WriteString("1 goroutine is still running:")
	} else {
		fmt.Fprintf(&b, "%d goroutines are still running:", len(leaked))
	}
	for _, g := range leaked {
		b.WriteString("\n\n")
		b.WriteString(g.stack)
	}
	return b.String()
}

// ids returns the IDs of gs.
func ids(gs []goroutine) map[int]bool {
	m := make(map[int]bool, len(gs))
	for _, g := range gs {
		m[g.id] = true
	}
	return m
}

// goroutines parses a dump of all goroutines, the caller's first.
func goroutines() []goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for _, entry := range strings.Split(strings.TrimSpace(string(buf)), "\n\n") {
		if g, ok := parse(entry); ok {
			out = append(out, g)
		}
	}
	return out
}

// parse reads one entry of a runtime.Stack dump:
//
//	goroutine 7 [chan receive]:
//	pkg.f(...)
//		/path/f.go:12 +0x1d
//	created by pkg.g in goroutine 1
//		/path/g.go:30 +0x25
func parse(entry string) (goroutine, bool) {
	header, rest, _ := strings.Cut(entry, "\n")
	head, ok := strings.CutPrefix(header, "goroutine ")
	if !ok {
		return goroutine{}, false
	}
	// The ID may be followed by more than the state in brackets (gp=… m=… with GOTRACEBACK=system).
	idText, _, _ := strings.Cut(head, " ")
	id, err := strconv.Atoi(idText)
	if err != nil {
		return goroutine{}, false
	}
	_, state, _ := strings.Cut(head, "[")
	state, _, _ = strings.Cut(state, "]")
	g := goroutine{id: id, state: state, stack: entry}
	for i, line := range strings.Split(rest, "\n") {
		if strings.HasPrefix(line, "\t") {
			continue // a file:line
		}
		if c, ok := strings.CutPrefix(line, "created by "); ok {
			c, _, _ = strings.Cut(c, " in goroutine ")
			g.creator = c
		} else if i == 0 {
			g.top = funcName(line)
		}
	}
	return g, true
}

// funcName strips the argument list from a frame line such as "pkg.(*T).m(0xc000012345, {0x1, 0x2})".
func funcName(frame string) string {
	if i := strings.LastIndex(frame, "("); i > 0 {
		return frame[:i]
	}
	return frame
}
