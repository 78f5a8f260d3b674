package subscriber

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/sfarchive/sfarchive/emulator"
)

// recordHandler keeps every log record's message, level and attributes.
type recordHandler struct {
	mu    *sync.Mutex
	recs  *[]logRecord
	attrs []slog.Attr
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newRecordHandler() *recordHandler {
	return &recordHandler{mu: &sync.Mutex{}, recs: &[]logRecord{}}
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordHandler{mu: h.mu, recs: h.recs, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.attrs[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) records() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), *h.recs...)
}

// Every failure is logged once, with the topic, status, error-code, rpc-id and
// the position it resumes from; the token never appears in the log.
func TestFailuresLoggedOnceWithTrailers(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 50, 100) // streams end after 20 and 40; the third reaches MaxEvents
	e.srv.EndStreamsAfter(20, codes.Internal, emulator.CodeUnavailable)
	h := newRecordHandler()
	a := e.open()
	cfg := e.config(orderTopic)
	cfg.Logger = slog.New(h)
	cfg.MaxEvents = 50
	if _, err := start(t, cfg, a).wait(t); err != nil {
		t.Fatal(err)
	}
	var failures []logRecord
	for _, r := range h.records() {
		for k, v := range r.attrs {
			if v == testToken || k == "accesstoken" {
				t.Fatalf("the access token was logged: %+v", r)
			}
		}
		if r.level == slog.LevelWarn {
			failures = append(failures, r)
		}
	}
	if len(failures) != 2 {
		t.Fatalf("%d failure logs for 2 failures: %+v", len(failures), failures)
	}
	for _, f := range failures {
		if f.attrs["topic"] != orderTopic || f.attrs["code"] != "Internal" || f.attrs["error_code"] != emulator.CodeUnavailable ||
			len(f.attrs["rpc_id"]) != 36 || len(f.attrs["replay_id"]) == 0 || f.attrs["backoff"] == "" {
			t.Fatalf("failure log lacks a key: %+v", f)
		}
	}
}
