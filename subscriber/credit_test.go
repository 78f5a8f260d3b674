package subscriber

import (
	"sync"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/emulator"
)

// Case 8: a burst of 350 events with a batch of 100: all archived once, never
// more than 100 requested and outstanding, whether the count crosses a batch
// boundary inside one response or not.
func TestBurstNeverOverRequests(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		batch, maxUncommitted int
	}{
		{"batch100", 100, 1000},
		{"batch100-tight-memory", 100, 150},
		{"batch7", 7, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, emulator.Config{})
			e.publish(orderTopic, 350, 200)
			a := e.open()
			cfg := e.config(orderTopic)
			cfg.Batch, cfg.MaxUncommitted = tc.batch, tc.maxUncommitted
			cfg.MaxEvents = 350
			var mu sync.Mutex
			var worst, worstServer int32
			cfg.creditHook = func(_ string, outstanding, pending int32) {
				mu.Lock()
				defer mu.Unlock()
				worst = max(worst, outstanding)
				worstServer = max(worstServer, pending)
			}
			if _, err := start(t, cfg, a).wait(t); err != nil {
				t.Fatalf("run: %v", err)
			}
			sameAsEmulator(t, a, e.srv, orderTopic)
			if worst > int32(tc.batch) || worstServer > int32(tc.batch) {
				t.Fatalf("outstanding reached %d (server said %d), batch is %d", worst, worstServer, tc.batch)
			}
			// On the wire: per stream, what was asked for never exceeds what was
			// delivered plus the batch.
			var asked int
			var n int
			for _, r := range e.srv.Requests() {
				if r.RPC == emulator.RPCSubscribe && r.Topic == orderTopic {
					asked += int(r.NumRequested)
					n++
					if r.NumRequested <= 0 || r.NumRequested > int32(tc.batch) {
						t.Fatalf("request %d asked for %d", n, r.NumRequested)
					}
				}
			}
			if asked > 350+tc.batch {
				t.Fatalf("asked for %d events in total for 350 delivered (batch %d)", asked, tc.batch)
			}
		})
	}
}

// The received-but-uncommitted bound holds while the archive is slow: a store
// that takes its time never has more than MaxUncommitted+Batch events waiting.
func TestUncommittedBounded(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 600, 100)
	a := e.open()
	slow := &slowStore{Store: a, delay: 20 * time.Millisecond}
	cfg := e.config(orderTopic)
	cfg.Batch, cfg.MaxUncommitted = 50, 120
	cfg.MaxEvents = 600
	if _, err := start(t, cfg, slow).wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	sameAsEmulator(t, a, e.srv, orderTopic)
	if slow.maxPending > cfg.MaxUncommitted {
		t.Fatalf("one commit carried %d events; bound is %d", slow.maxPending, cfg.MaxUncommitted)
	}
}
