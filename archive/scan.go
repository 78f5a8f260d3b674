package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// scanTrimEvery is how many envelope bytes a Scan reads between two trims of the map's resident pages. Leaf pages
// hold about 1.4 bytes of file per envelope byte, so this keeps a scan's mapped pages near 25 MiB.
const scanTrimEvery = 16 << 20

// StopScan may be returned by a Scan callback to end the scan early; Scan then returns nil.
var StopScan = errors.New("stop scan")

// ScanOptions narrows a Scan. Zero values mean no bound.
type ScanOptions struct {
	AfterReplayID, BeforeReplayID []byte // exclusive bounds on the replay ID; nil = open
	// ReceivedSince (inclusive) and ReceivedUntil (exclusive) bound the receive time. They are served from the
	// topic's times/ index: the scan seeks to the commit before ReceivedSince and stops at the first commit
	// received at or after ReceivedUntil, instead of reading the whole topic. Every event in that range is still
	// checked against its own receive time.
	ReceivedSince, ReceivedUntil time.Time
	Reverse                      bool // newest first
	// OnBadEnvelope: nil → Scan stops with *EnvelopeError{Topic, ReplayID, Err}; else it is called with that
	// *EnvelopeError as err (replayID is valid only during the call) and the scan continues if it returns nil.
	OnBadEnvelope func(topic string, replayID []byte, err error) error
}

// Scan calls fn for each event of topic in key (replay ID) order, or newest first with Reverse. ev and its slices
// are only valid during fn (they point into the read transaction's memory map, and ev is reused): fn copies what
// it keeps. fn returning an error stops the scan and Scan returns it (StopScan → nil). Unknown topic →
// ErrTopicNotFound (wrapped, names the topic). The read transaction stays open for the whole scan; in a process
// that also writes, a long scan delays the writer when the file must grow.
func (a *Archive) Scan(ctx context.Context, topic string, opts ScanOptions, fn func(ev *Event) error) error {
	var decoded uint64
	var inCallback bool
	err := a.view(func(tx *bolt.Tx) error {
		if err := a.checkTree(tx); err != nil {
			return err
		}
		t := topicBucket(tx, topic)
		if t == nil {
			return fmt.Errorf("%w: %s", ErrTopicNotFound, topic)
		}
		events := t.Bucket(bucketEvents)
		if events == nil {
			return nil
		}
		st, err := loadState(t.Bucket(bucketState))
		if err != nil {
			return err
		}
		sc := scanner{topic: topic, opts: &opts, fn: fn, ctx: ctx, decoded: &decoded, inCallback: &inCallback,
			trim: func() {
				if err := trimInTx(a.db, tx.Size()); err != nil {
					a.log.Debug("archive: could not trim the resident map", "path", a.path, "err", err)
				}
			}}
		if st.timeIndexUsable() {
			sc.indexLow, sc.indexHigh = seekTimes(t.Bucket(bucketTimes), opts.ReceivedSince, opts.ReceivedUntil)
		}
		if opts.Reverse {
			return sc.backward(events.Cursor())
		}
		return sc.forward(events.Cursor())
	}, &inCallback)
	a.decoded.Add(decoded)
	if errors.Is(err, StopScan) {
		return nil
	}
	if err != nil {
		var ee *EnvelopeError
		if errors.As(err, &ee) || errors.Is(err, ErrTopicNotFound) {
			return fmt.Errorf("scan %s: %w", a.path, err)
		}
		return fmt.Errorf("scan %s in %s: %w", topic, a.path, err)
	}
	return nil
}

// seekTimes turns receive-time bounds into key bounds using the sparse times/ index (valid because receive times
// grow with key order; callers check timeIndexUsable). low is an inclusive start key: the first event of the last
// commit received before since (every earlier event was received no later than that commit, so before since).
// high is an exclusive end key: the first event of the first commit received at or after until.
func seekTimes(times *bolt.Bucket, since, until time.Time) (low, high []byte) {
	if times == nil {
		return nil, nil
	}
	c := times.Cursor()
	if !since.IsZero() {
		k, _ := c.Seek(timeKey(since))
		var v []byte
		if k == nil {
			_, v = c.Last()
		} else {
			_, v = c.Prev()
		}
		low = v
	}
	if !until.IsZero() {
		if k, v := c.Seek(timeKey(until)); k != nil {
			high = v
		}
	}
	return low, high
}

type scanner struct {
	topic               string
	opts                *ScanOptions
	fn                  func(*Event) error
	ctx                 context.Context
	decoded             *uint64
	indexLow, indexHigh []byte
	ev                  Event
	schemaIntern        string
	steps               int
	inCallback          *bool // set while caller code runs, so its panics are not taken for bbolt's
	// trim drops the map's resident pages; called every scanTrimEvery bytes of envelopes read, so that a scan of
	// a file of any size keeps the process's resident memory small (the pages stay in the page cache).
	trim      func()
	sinceTrim int
}

// lower returns the inclusive start key; upper the exclusive end key (nil = open).
func (s *scanner) bounds() (lower, upper []byte) {
	lower = s.indexLow
	if a := s.opts.AfterReplayID; a != nil && (lower == nil || bytes.Compare(a, lower) >= 0) {
		lower = a // exclusive, but visit() skips it and its collision entries by their real replay ID
	}
	upper = s.opts.BeforeReplayID
	if h := s.indexHigh; h != nil && (upper == nil || bytes.Compare(h, upper) < 0) {
		upper = h
	}
	return lower, upper
}

func (s *scanner) forward(c *bolt.Cursor) error {
	lower, upper := s.bounds()
	var k, v []byte
	if lower != nil {
		k, v = c.Seek(lower)
	} else {
		k, v = c.First()
	}
	var prev []byte
	for ; k != nil; k, v = c.Next() {
		if upper != nil && bytes.Compare(k, upper) >= 0 {
			return nil
		}
		if prev != nil && bytes.Compare(k, prev) <= 0 {
			return keysOutOfOrder(s.topic, prev, k)
		}
		prev = k
		if err := s.visit(k, v); err != nil {
			return err
		}
	}
	return nil
}

// keysOutOfOrder is the error of a cursor that met a key not strictly after (or before, in reverse) the one it
// met last: a healthy bucket never does that, a page tree with a cycle does, and the scan would never end.
func keysOutOfOrder(topic string, prev, k []byte) error {
	return &CorruptError{Reason: fmt.Sprintf("topic %s: key %x comes after key %x, so its pages are linked wrongly", topic, k, prev)}
}

func (s *scanner) backward(c *bolt.Cursor) error {
	lower, upper := s.bounds()
	var k, v []byte
	if upper != nil {
		if k, _ = c.Seek(upper); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	} else {
		k, v = c.Last()
	}
	var prev []byte
	for ; k != nil; k, v = c.Prev() {
		if lower != nil && bytes.Compare(k, lower) < 0 {
			return nil
		}
		if prev != nil && bytes.Compare(k, prev) >= 0 {
			return keysOutOfOrder(s.topic, prev, k)
		}
		prev = k
		if err := s.visit(k, v); err != nil {
			return err
		}
	}
	return nil
}

// visit decodes one entry, applies the exact filters and calls fn.
func (s *scanner) visit(k, v []byte) error {
	if s.steps++; s.steps%256 == 0 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
	}
	if v == nil {
		return nil // a nested bucket: not an event
	}
	*s.decoded++
	s.sinceTrim += len(v)
	if s.sinceTrim >= scanTrimEvery {
		// Before this entry is decoded: no slice of an earlier event is in use any more.
		s.sinceTrim = 0
		s.trim()
	}
	if err := decodeEnvelope(v, &s.ev, &s.schemaIntern); err != nil {
		ee := &EnvelopeError{Topic: s.topic, ReplayID: clone(k), Err: err}
		if s.opts.OnBadEnvelope == nil {
			return ee
		}
		*s.inCallback = true
		err := s.opts.OnBadEnvelope(s.topic, k, ee)
		*s.inCallback = false
		return err
	}
	if s.ev.ReplayID == nil {
		s.ev.ReplayID = k
	}
	o := s.opts
	if o.AfterReplayID != nil && bytes.Compare(s.ev.ReplayID, o.AfterReplayID) <= 0 {
		return nil
	}
	if o.BeforeReplayID != nil && bytes.Compare(s.ev.ReplayID, o.BeforeReplayID) >= 0 {
		return nil
	}
	if !o.ReceivedSince.IsZero() && s.ev.ReceivedAt.Before(o.ReceivedSince) {
		return nil
	}
	if !o.ReceivedUntil.IsZero() && !s.ev.ReceivedAt.Before(o.ReceivedUntil) {
		return nil
	}
	*s.inCallback = true
	err := s.fn(&s.ev)
	*s.inCallback = false
	return err
}
