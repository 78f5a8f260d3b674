package subscriber

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/emulator"
	"github.com/sfarchive/sfarchive/internal/leakcheck"
)

const (
	testToken    = "00Dtest!token-1"
	testInstance = "https://example.my.salesforce.com"
	orderTopic   = "/event/Order_Event__e"
	secondTopic  = "/event/Second_Order__e"
)

// testEnv is an emulator on loopback TCP and an archive path in t.TempDir().
type testEnv struct {
	t    testing.TB
	srv  *emulator.Server
	addr string
	path string
	seq  atomic.Int64
}

func newTestEnv(t testing.TB, cfg emulator.Config) *testEnv {
	t.Helper()
	checkNoLeaks(t) // registered first, so it runs after every other cleanup
	if cfg.InstanceURL == "" {
		cfg.InstanceURL = testInstance
	}
	srv, err := emulator.New(cfg)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("emulator start: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.AddToken(testToken, 0)
	js, err := srv.Schema(mustTopic(t, srv, orderTopic).SchemaID)
	if err != nil {
		t.Fatalf("order schema: %v", err)
	}
	if _, err := srv.AddTopic(secondTopic, strings.Replace(js, `"Order_Event__e"`, `"Second_Order__e"`, 1)); err != nil {
		t.Fatalf("add topic: %v", err)
	}
	return &testEnv{t: t, srv: srv, addr: addr, path: filepath.Join(t.TempDir(), "archive.db")}
}

func mustTopic(t testing.TB, srv *emulator.Server, name string) emulator.TopicInfo {
	t.Helper()
	ti, err := srv.Topic(name)
	if err != nil {
		t.Fatalf("topic %s: %v", name, err)
	}
	return ti
}

// open opens the test archive for writing; it is closed at cleanup.
func (e *testEnv) open() *archive.Archive {
	e.t.Helper()
	a, err := archive.Open(e.path, archive.Options{NoSync: true, LockTimeout: time.Second})
	if err != nil {
		e.t.Fatalf("open archive: %v", err)
	}
	e.t.Cleanup(func() { _ = a.Close() })
	return a
}

// config is a Config for the emulator with small durations.
func (e *testEnv) config(topics ...string) Config {
	return Config{
		Endpoint:    e.addr,
		Insecure:    true,
		Auth:        auth.NewStatic(testToken, testInstance, e.srv.OrgID()),
		Topics:      topics,
		Watchdog:    5 * time.Second,
		BackoffMin:  5 * time.Millisecond,
		BackoffMax:  50 * time.Millisecond,
		DialTimeout: 2 * time.Second,
		Logger:      testLogger(e.t),
	}
}

// publish publishes n real Avro Order events of about size bytes to topic.
func (e *testEnv) publish(topic string, n, size int) {
	e.t.Helper()
	ti := mustTopic(e.t, e.srv, topic)
	js, err := e.srv.Schema(ti.SchemaID)
	if err != nil {
		e.t.Fatalf("schema: %v", err)
	}
	sch, err := avro.ParseWithCache(js, "", &avro.SchemaCache{})
	if err != nil {
		e.t.Fatalf("parse schema: %v", err)
	}
	evs := make([]emulator.Event, n)
	for i := range evs {
		k := e.seq.Add(1)
		pad := strings.Repeat("x", max(size-60, 0))
		rec := map[string]any{
			"CreatedDate":     int64(1700000000000 + k),
			"CreatedById":     "005000000000001AAA",
			"Order_Number__c": fmt.Sprintf("ORD-%08d-%s", k, pad),
			"City__c":         "Lyon",
			"Amount__c":       float64(k) * 1.5,
		}
		b, err := avro.Marshal(sch, rec)
		if err != nil {
			e.t.Fatalf("avro encode: %v", err)
		}
		evs[i] = emulator.Event{ID: fmt.Sprintf("evt-%d", k), SchemaID: ti.SchemaID, Payload: b}
	}
	if _, err := e.srv.Publish(topic, evs...); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// stored returns the events archived for topic, copied.
func stored(t testing.TB, a *archive.Archive, topic string) []archive.Event {
	t.Helper()
	var out []archive.Event
	err := a.Scan(context.Background(), topic, archive.ScanOptions{}, func(ev *archive.Event) error {
		out = append(out, archive.Event{ReplayID: bytes.Clone(ev.ReplayID), EventID: ev.EventID,
			SchemaID: ev.SchemaID, Payload: bytes.Clone(ev.Payload)})
		return nil
	})
	if err != nil && len(out) > 0 {
		t.Fatalf("scan %s: %v", topic, err)
	}
	return out
}

// sameAsEmulator asserts the archive holds exactly the emulator's events of
// topic: none missing, none twice, payloads byte-identical.
func sameAsEmulator(t testing.TB, a *archive.Archive, srv *emulator.Server, topic string) {
	t.Helper()
	want := srv.Events(topic)
	got := stored(t, a, topic)
	if len(got) != len(want) {
		t.Fatalf("%s: archived %d events, emulator has %d", topic, len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if !bytes.Equal(w.ReplayID, g.ReplayID) || w.Event.ID != g.EventID || w.Event.SchemaID != g.SchemaID ||
			!bytes.Equal(w.Event.Payload, g.Payload) {
			t.Fatalf("%s event %d: archived {%x %s %s %d bytes}, emulator {%x %s %s %d bytes}", topic, i,
				g.ReplayID, g.EventID, g.SchemaID, len(g.Payload), w.ReplayID, w.Event.ID, w.Event.SchemaID, len(w.Event.Payload))
		}
	}
}

// count returns the number of events archived for topic (0 for an unknown topic).
func count(a *archive.Archive, topic string) int {
	n := 0
	_ = a.Scan(context.Background(), topic, archive.ScanOptions{}, func(*archive.Event) error { n++; return nil })
	return n
}

// running is a Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	sum    Summary
	err    error
}

func start(t *testing.T, cfg Config, store Store) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.sum, r.err = Run(ctx, cfg, store)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// stop cancels the run and waits for Run to return.
func (r *running) stop(t *testing.T) (Summary, error) {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func (r *running) wait(t *testing.T) (Summary, error) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s")
	}
	return r.sum, r.err
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool, runs ...*running) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			for _, r := range runs {
				select {
				case <-r.done:
					t.Logf("a run ended early: %v", r.err)
				default:
				}
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribes returns the first FetchRequest of each Subscribe stream for topic.
func subscribes(srv *emulator.Server, topic string) []emulator.Request {
	var out []emulator.Request
	for _, r := range srv.Requests() {
		if r.RPC == emulator.RPCSubscribe && r.Topic == topic && r.Preset != "" {
			out = append(out, r)
		}
	}
	return out
}

func hexID(b []byte) string { return hex.EncodeToString(b) }

// checkNoLeaks fails the test if goroutines it started (of this package, of
// gRPC client connections or any other) outlive it.
func checkNoLeaks(t testing.TB) {
	t.Helper()
	leakcheck.Check(t)
}

// testLogger logs to the test log when -v, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() || os.Getenv("SUBSCRIBER_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(&tlogWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// refreshSource is an auth.Source that can log in again: each Refresh mints a
// new token and registers it with the emulator, like a real login would.
type refreshSource struct {
	srv      *emulator.Server
	org      string
	mu       sync.Mutex
	cur      auth.Credentials
	n        int
	refreshs atomic.Int32
}

func newRefreshSource(srv *emulator.Server) *refreshSource {
	s := &refreshSource{srv: srv, org: srv.OrgID()}
	s.mint()
	return s
}

func (s *refreshSource) mint() {
	s.n++
	tok := fmt.Sprintf("00Dtest!refreshed-%d", s.n)
	s.srv.AddToken(tok, 0)
	s.cur = auth.Credentials{AccessToken: tok, InstanceURL: testInstance, OrgID: s.org}
}

func (s *refreshSource) Credentials(context.Context) (auth.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, nil
}

func (s *refreshSource) Refresh(context.Context) (auth.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshs.Add(1)
	s.mint()
	return s.cur, nil
}

// emulatorConfig is the emulator configuration most tests use.
func emulatorConfig() emulator.Config {
	return emulator.Config{NoBuiltinTopics: false}
}

// slowStore delays every Append and records the largest number of events
// waiting in one commit.
type slowStore struct {
	Store
	delay      time.Duration
	mu         sync.Mutex
	maxPending int
}

func (s *slowStore) Append(b []archive.TopicBatch) (archive.AppendStats, error) {
	n := 0
	for _, tb := range b {
		n += len(tb.Events)
	}
	s.mu.Lock()
	s.maxPending = max(s.maxPending, n)
	s.mu.Unlock()
	time.Sleep(s.delay)
	return s.Store.Append(b)
}

var archiveErrOrgMismatch = archive.ErrOrgMismatch
