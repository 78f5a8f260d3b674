package subscriber

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

// topicState is what a topic's stream and the writer share.
type topicState struct {
	name   string
	signal chan struct{} // capacity 1: "something was committed"

	mu           sync.Mutex
	mark         []byte // committed mark
	uncommitted  int    // events handed to the writer, not yet committed
	inFlight     int    // batches handed to the writer, not yet committed
	archived     int64  // events committed this run
	lastReceived time.Time
	lastEvent    time.Time // the newest committed event's own time, when it could be read
	connected    bool      // a stream is open
	ended        bool      // the topic's runner returned (refused or the run stopped)
}

func newTopicState(name string, mark []byte) *topicState {
	return &topicState{name: name, mark: mark, signal: make(chan struct{}, 1)}
}

func (t *topicState) handed(events int) {
	t.mu.Lock()
	t.uncommitted += events
	t.inFlight++
	t.mu.Unlock()
}

// committed settles one handed batch: handed is how many events it had when
// it was handed over, kept how many of them were committed (fewer when
// MaxEvents cut the batch; the rest are redelivered from the mark next run).
func (t *topicState) committed(handed, kept int, mark []byte, received, eventAt time.Time) {
	t.mu.Lock()
	t.uncommitted -= handed
	t.inFlight--
	t.archived += int64(kept)
	if len(mark) > 0 {
		t.mark = mark
	}
	if !received.IsZero() {
		t.lastReceived = received
	}
	if !eventAt.IsZero() {
		t.lastEvent = eventAt
	}
	t.mu.Unlock()
	select {
	case t.signal <- struct{}{}:
	default:
	}
}

func (t *topicState) snapshot() (mark []byte, uncommitted, inFlight int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mark, t.uncommitted, t.inFlight
}

// handoff is one response's batch on its way to the writer.
type handoff struct {
	t     *topicState
	batch archive.TopicBatch
}

// writer owns Store.Append: it folds every waiting batch into one call.
type writer struct {
	store   Store
	in      chan handoff
	schemas *schemaCache
	log     *slog.Logger
	// afterCommit is called with the number of events each commit stored.
	afterCommit func(events int)
	// fatal is called once when Append fails; the writer then discards.
	fatal func(error)
	// limit is Config.MaxEvents (0 = none): the writer commits at most this
	// many events in all and drops what comes after.
	limit int64

	passed int64 // events passed to Append so far (writer goroutine only)

	mu      sync.Mutex
	stats   archive.AppendStats
	commits int
	failed  bool
}

func (w *writer) run() {
	for first := range w.in {
		group := []handoff{first}
	drain:
		for {
			select {
			case h, ok := <-w.in:
				if !ok {
					break drain
				}
				group = append(group, h)
			default:
				break drain
			}
		}
		w.commit(group)
	}
}

func (w *writer) commit(all []handoff) {
	if w.failed {
		return // the run is stopping; a crash-equivalent: nothing marked
	}
	group, handed, dropped := w.limitGroup(all)
	defer func() {
		// Dropped batches were handed over but are not committed: release
		// them without moving the mark (after the commit of the kept ones).
		if w.failed {
			return
		}
		n := 0
		for i, h := range group {
			n += handed[i] - len(h.batch.Events) // cut off a batch at the limit
		}
		for _, h := range dropped {
			n += len(h.batch.Events)
			h.t.committed(len(h.batch.Events), 0, nil, time.Time{}, time.Time{})
		}
		if n > 0 {
			w.log.Debug("max events reached; events received past it are not committed (the next run receives them again)", "events", n)
		}
	}()
	if len(group) == 0 {
		return
	}
	batches := mergeByTopic(group)
	start := time.Now()
	st, err := w.store.Append(batches)
	if err != nil {
		w.failed = true
		w.fatal(fmt.Errorf("%w: commit %d batches: %w", ErrStore, len(batches), err))
		return
	}
	events := 0
	for _, b := range batches {
		events += len(b.Events)
		for id := range b.Schemas {
			w.schemas.committed(id)
		}
	}
	w.mu.Lock()
	w.stats.Stored += st.Stored
	w.stats.Duplicates += st.Duplicates
	w.stats.Collisions += st.Collisions
	w.commits++
	w.mu.Unlock()
	if st.Collisions > 0 {
		w.log.Warn("replay IDs reused with a different event ID; kept under collision keys", "collisions", st.Collisions)
	}
	w.log.Debug("committed", "topics", len(batches), "events", events, "stored", st.Stored,
		"duplicates", st.Duplicates, "took", time.Since(start))
	w.passed += int64(events)
	for i, h := range group {
		var recv, eventAt time.Time
		if n := len(h.batch.Events); n > 0 {
			last := &h.batch.Events[n-1]
			recv = last.ReceivedAt
			eventAt, _ = eventTime(h.batch.Topic, last.Payload)
		}
		h.t.committed(handed[i], len(h.batch.Events), batchMark(h.batch), recv, eventAt)
	}
	if w.afterCommit != nil {
		w.afterCommit(events)
	}
}

// limitGroup applies the MaxEvents limit to a group before it is committed:
// it keeps, in delivery order, only as many events as the limit still allows.
// A batch cut short ends at its last kept event, and its mark becomes that
// event's replay ID, so the mark never passes an event that was not
// committed. Once the limit is reached every further batch of the group is
// dropped, keepalives included. handed[i] is how many events group[i] had when
// it was handed over. Nothing is lost: the dropped events are redelivered
// from the mark on the next run.
func (w *writer) limitGroup(all []handoff) (group []handoff, handed []int, dropped []handoff) {
	handed = make([]int, 0, len(all))
	if w.limit <= 0 {
		for _, h := range all {
			handed = append(handed, len(h.batch.Events))
		}
		return all, handed, nil
	}
	left := w.limit - w.passed
	for i, h := range all {
		if left <= 0 {
			return group, handed, all[i:]
		}
		n := len(h.batch.Events)
		if int64(n) > left {
			b := h.batch
			b.Events = b.Events[:left:left]
			b.LatestReplayID = b.Events[left-1].ReplayID
			h.batch = b
		}
		group = append(group, h)
		handed = append(handed, n)
		left -= int64(len(h.batch.Events))
	}
	return group, handed, nil
}

func (w *writer) totals() (archive.AppendStats, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats, w.commits
}

// batchMark is the mark a committed batch leaves: its latest_replay_id, else
// its last event's replay ID.
func batchMark(b archive.TopicBatch) []byte {
	if len(b.LatestReplayID) > 0 {
		return b.LatestReplayID
	}
	if n := len(b.Events); n > 0 {
		return b.Events[n-1].ReplayID
	}
	return nil
}

// mergeByTopic folds consecutive handoffs of one topic into one TopicBatch, in
// first-seen topic order; events keep their delivery order.
func mergeByTopic(group []handoff) []archive.TopicBatch {
	idx := make(map[string]int)
	var out []archive.TopicBatch
	for _, h := range group {
		b := h.batch
		i, ok := idx[b.Topic]
		if !ok {
			idx[b.Topic] = len(out)
			cp := b
			cp.Events = append([]archive.Event(nil), b.Events...)
			if len(b.Schemas) > 0 {
				cp.Schemas = make(map[string]string, len(b.Schemas))
				for k, v := range b.Schemas {
					cp.Schemas[k] = v
				}
			}
			out = append(out, cp)
			continue
		}
		m := &out[i]
		m.Events = append(m.Events, b.Events...)
		m.LatestReplayID = batchMark(b)
		for k, v := range b.Schemas {
			if m.Schemas == nil {
				m.Schemas = make(map[string]string)
			}
			m.Schemas[k] = v
		}
	}
	return out
}

// schemaCache remembers which schema IDs the archive holds, fetches unknown
// ones once (concurrent topics wait for the same fetch), and keeps fetched
// schemas attached to batches until a commit stored them.
type schemaCache struct {
	store Store

	mu      sync.Mutex
	known   map[string]bool    // in the archive
	missing map[string]bool    // the server refused to give it; events stored raw
	pending map[string]string  // fetched, not yet committed
	flights map[string]*flight // fetches in progress
}

type flight struct {
	done chan struct{}
	json string
	err  error
}

func newSchemaCache(store Store) *schemaCache {
	return &schemaCache{store: store, known: map[string]bool{}, missing: map[string]bool{}, pending: map[string]string{}, flights: map[string]*flight{}}
}

// need returns the schema JSON to include with a batch that uses id, or "" if
// the archive already holds it or the server refused it (fetch returned "" and
// no error: the events are stored raw). fetch is called at most once per ID at
// a time, and not again once it succeeded or was refused.
func (c *schemaCache) need(ctx context.Context, id string, fetch func(context.Context, string) (string, error)) (string, error) {
	c.mu.Lock()
	if c.known[id] || c.missing[id] {
		c.mu.Unlock()
		return "", nil
	}
	if js, ok := c.pending[id]; ok {
		c.mu.Unlock()
		return js, nil
	}
	if f, ok := c.flights[id]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if f.err != nil {
			return "", f.err
		}
		return c.need(ctx, id, fetch)
	}
	f := &flight{done: make(chan struct{})}
	c.flights[id] = f
	c.mu.Unlock()

	has, err := c.store.HasSchema(id)
	if err != nil {
		f.err = fmt.Errorf("%w: look up schema %s: %w", ErrStore, id, err)
	} else if !has {
		f.json, f.err = fetch(ctx, id)
	}
	c.mu.Lock()
	delete(c.flights, id)
	switch {
	case f.err != nil:
	case has:
		c.known[id] = true
	case f.json == "":
		c.missing[id] = true
	default:
		c.pending[id] = f.json
	}
	c.mu.Unlock()
	close(f.done)
	if f.err != nil || has || f.json == "" {
		return "", f.err
	}
	return f.json, nil
}

func (c *schemaCache) committed(id string) {
	c.mu.Lock()
	c.known[id] = true
	delete(c.pending, id)
	c.mu.Unlock()
}

// sameID reports whether two replay IDs are the same bytes.
func sameID(a, b []byte) bool { return len(a) > 0 && bytes.Equal(a, b) }
