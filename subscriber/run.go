package subscriber

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// Stop reasons reported in Summary.Reason.
const (
	ReasonCanceled   = "canceled"       // ctx was cancelled
	ReasonMaxEvents  = "max-events"     // Config.MaxEvents reached
	ReasonIdle       = "idle"           // Config.ExitWhenIdle passed without events
	ReasonTopicsDone = "topics-stopped" // every topic was refused by the server
	ReasonError      = "error"          // a run-level failure; Run returns it
)

// Summary is what a run did.
type Summary struct {
	Topics     []TopicSummary
	Stored     int // events newly stored
	Duplicates int // redelivered events already stored (skipped)
	Collisions int // reused replay IDs with a different event ID (kept apart)
	Commits    int // Append calls (transactions)
	Elapsed    time.Duration
	Reason     string
}

// TopicSummary is what a run did on one topic.
type TopicSummary struct {
	Topic      string
	Archived   int64  // events committed this run (stored, duplicate or collision)
	Keepalives int    // responses without events that moved the mark
	Subscribes int    // Subscribe calls (1 + resubscribes)
	Gaps       int    // gap records written
	Mark       []byte // committed mark at the end
	Err        error  // why the topic stopped early; nil if it ran until the run stopped
}

// TopicProgress is a live report on one topic.
type TopicProgress struct {
	Topic        string
	Archived     int64     // events committed this run
	Rate         float64   // events/s committed since the previous report; the run's average on the final one
	Mark         []byte    // committed mark
	LastReceived time.Time // receive time of the newest committed event; zero if none
	// LastEventTime is the newest committed event's own time (commitTimestamp
	// of a change event, CreatedDate of a platform event); zero if unknown.
	// LastReceived minus it is how far behind the live stream the archive is.
	LastEventTime time.Time
	Connected     bool // a stream is open
	// Stopped marks the final report, made once the run has stopped (no
	// stream is open then; Rate is the average over the whole run).
	Stopped bool
}

// run is one Run's shared state.
type run struct {
	cfg      Config
	client   pubsubpb.PubSubClient
	creds    *credHolder
	store    Store
	schemas  *schemaCache
	writerIn chan handoff

	streamCtx  context.Context // cancelled when the run stops
	stopStream context.CancelFunc

	mu       sync.Mutex
	reason   string
	fatalErr error

	received  atomic.Int64 // events received, all topics
	idleFrom  atomic.Int64 // unix nanos of the last event received or change of a stream's state
	committed atomic.Int64 // events committed, all topics
}

// stop ends the run (first reason wins).
func (r *run) stop(reason string) {
	r.mu.Lock()
	if r.reason == "" {
		r.reason = reason
	}
	r.mu.Unlock()
	r.stopStream()
}

// fail stops the run with err (first error wins) and returns err.
func (r *run) fail(err error) error {
	r.mu.Lock()
	if r.fatalErr == nil {
		r.fatalErr = err
	}
	r.mu.Unlock()
	r.stop(ReasonError)
	return err
}

func (r *run) creditStopped() bool {
	return r.cfg.MaxEvents > 0 && r.received.Load() >= int64(r.cfg.MaxEvents)
}

func (r *run) eventsReceived(n int, at time.Time) {
	r.received.Add(int64(n))
	r.resetIdle(at)
}

// resetIdle restarts the ExitWhenIdle clock at at (never moving it back).
func (r *run) resetIdle(at time.Time) {
	ns := at.UnixNano()
	for {
		cur := r.idleFrom.Load()
		if cur >= ns || r.idleFrom.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// Run subscribes to cfg.Topics and archives their events into store until ctx
// is cancelled, MaxEvents or ExitWhenIdle is reached, or a run-level failure.
// A clean stop returns nil. Before anything is written Run gets credentials,
// checks each topic with GetTopic within DialTimeout (ErrUnreachable names the
// endpoint) and binds the archive to the org (another org's archive is refused
// with archive.ErrOrgMismatch). Topics the server refuses later stop alone;
// their errors (ErrTopicRefused) are joined into Run's error.
func Run(ctx context.Context, cfg Config, store Store) (Summary, error) {
	started := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	if store == nil {
		return Summary{}, fmt.Errorf("%w: no archive given", ErrConfig)
	}
	log := cfg.Logger.With("endpoint", cfg.Endpoint)
	creds, err := cfg.Auth.Credentials(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Summary{Reason: ReasonCanceled}, nil
		}
		return Summary{}, fmt.Errorf("get credentials: %w", err)
	}
	conn, err := dial(cfg)
	if err != nil {
		return Summary{}, err
	}
	defer conn.Close()
	r := &run{
		cfg:     cfg,
		client:  pubsubpb.NewPubSubClient(conn),
		creds:   &credHolder{src: cfg.Auth, cur: creds},
		store:   store,
		schemas: newSchemaCache(store),
	}
	for _, topic := range cfg.Topics {
		if err := r.checkTopic(ctx, topic); err != nil {
			if ctx.Err() != nil {
				return Summary{Reason: ReasonCanceled}, nil
			}
			return Summary{}, err
		}
	}
	creds, _ = r.creds.get()
	if err := store.BindOrg(creds.OrgID, creds.InstanceURL); err != nil {
		return Summary{}, fmt.Errorf("bind archive to org %s (%s): %w", creds.OrgID, creds.InstanceURL, err)
	}
	r.creds.orgID = creds.OrgID
	states := make([]*topicState, len(cfg.Topics))
	for i, topic := range cfg.Topics {
		mark, err := store.HighWaterMark(topic)
		if err != nil {
			return Summary{}, fmt.Errorf("%w: read mark of %s: %w", ErrStore, topic, err)
		}
		states[i] = newTopicState(topic, mark)
	}
	log.Info("connected", "topics", len(cfg.Topics), "org_id", creds.OrgID)
	return r.stream(ctx, states, started)
}

// checkTopic calls GetTopic within DialTimeout: the first contact with the
// server, so an unreachable endpoint, a refused token or an unknown topic fails
// here, before anything is written.
func (r *run) checkTopic(ctx context.Context, topic string) error {
	for attempt := 0; ; attempt++ {
		creds, gen := r.creds.get()
		cctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
		var md metadata.MD
		info, err := r.client.GetTopic(withCreds(cctx, creds), &pubsubpb.TopicRequest{TopicName: topic}, grpc.Trailer(&md))
		cancel()
		if err == nil {
			if !info.GetCanSubscribe() {
				return fmt.Errorf("%w: topic %s: the user may not subscribe to it (GetTopic can_subscribe=false, rpc-id %s)", ErrTopicRefused, topic, info.GetRpcId())
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		re := remoteFailure("GetTopic", topic, err, md)
		if re.ErrorCode == "" && (re.Code == codes.Unavailable || re.Code == codes.DeadlineExceeded) {
			return fmt.Errorf("%w: cannot reach the Pub/Sub API at %s: %s", ErrUnreachable, r.cfg.Endpoint, re.Message)
		}
		switch classify(err, re) {
		case actReauth:
			if attempt > 0 {
				return fmt.Errorf("%w: renewed credentials were refused too: %w", ErrAuth, re)
			}
			if _, _, rerr := r.creds.refresh(ctx, gen); rerr != nil {
				return fmt.Errorf("%w (server said: %w)", rerr, re)
			}
		case actStopTopic:
			return fmt.Errorf("%w: %w", ErrTopicRefused, re)
		default:
			return fmt.Errorf("check topic at %s: %w", r.cfg.Endpoint, re)
		}
	}
}

// rejectedPositions reads, per topic, the replay IDs that the server once
// rejected, from the archive's gap records: a run that stopped after
// recording a gap but before committing anything newer must not send the
// same rejected position again (nor record a second gap for it).
func rejectedPositions(store Store) (map[string][][]byte, error) {
	gaps, err := store.Gaps()
	if err != nil {
		return nil, fmt.Errorf("%w: read gap records: %w", ErrStore, err)
	}
	out := map[string][][]byte{}
	for _, g := range gaps {
		if g.Kind == GapReplayRejected && len(g.FromReplayID) > 0 {
			out[g.Topic] = append(out[g.Topic], g.FromReplayID)
		}
	}
	return out, nil
}

// stream runs the writer, one runner per topic and the monitors until the run
// stops, then drains the writer.
func (r *run) stream(ctx context.Context, states []*topicState, started time.Time) (Summary, error) {
	cfg := r.cfg
	r.streamCtx, r.stopStream = context.WithCancel(ctx)
	defer r.stopStream()
	r.idleFrom.Store(time.Now().UnixNano())
	r.writerIn = make(chan handoff, 4*len(states))
	w := &writer{
		store: r.store, in: r.writerIn, schemas: r.schemas, log: cfg.Logger, limit: int64(cfg.MaxEvents),
		fatal: func(err error) { r.fail(err) },
		afterCommit: func(n int) {
			if total := r.committed.Add(int64(n)); cfg.MaxEvents > 0 && total >= int64(cfg.MaxEvents) {
				r.stop(ReasonMaxEvents)
			}
		},
	}
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.run() }()

	rejected, err := rejectedPositions(r.store)
	if err != nil {
		return Summary{}, err
	}
	runners := make([]*topicRunner, len(states))
	errs := make([]error, len(states))
	var wg sync.WaitGroup
	for i, st := range states {
		runners[i] = &topicRunner{r: r, t: st, log: cfg.Logger.With("topic", st.name),
			bo: backoff{min: cfg.BackoffMin, max: cfg.BackoffMax}, rejected: rejected[st.name]}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = runners[i].loop() }()
	}
	var monitors sync.WaitGroup
	if cfg.ExitWhenIdle > 0 {
		monitors.Add(1)
		go func() { defer monitors.Done(); r.watchIdle(states) }()
	}
	if cfg.Progress != nil {
		monitors.Add(1)
		go func() { defer monitors.Done(); r.report(states) }()
	}
	topicsDone := make(chan struct{})
	go func() { wg.Wait(); close(topicsDone) }()
	select {
	case <-topicsDone:
		r.stop(ReasonTopicsDone)
	case <-r.streamCtx.Done():
		<-topicsDone
	}
	close(r.writerIn)
	<-writerDone
	monitors.Wait()
	if ctx.Err() != nil {
		r.stop(ReasonCanceled) // no-op if another reason came first
	}

	sum := Summary{Elapsed: time.Since(started), Reason: r.reason}
	st, commits := w.totals()
	sum.Stored, sum.Duplicates, sum.Collisions, sum.Commits = st.Stored, st.Duplicates, st.Collisions, commits
	for i, tr := range runners {
		mark, _, _ := tr.t.snapshot()
		sum.Topics = append(sum.Topics, TopicSummary{Topic: tr.t.name, Archived: tr.t.archived, Keepalives: tr.keepalives,
			Subscribes: tr.subscribes, Gaps: tr.gaps, Mark: mark, Err: errs[i]})
	}
	if cfg.Progress != nil {
		r.reportOnce(states, nil, started, true)
	}
	cfg.Logger.Info("stopped", "reason", sum.Reason, "stored", sum.Stored, "duplicates", sum.Duplicates, "commits", sum.Commits)
	if r.fatalErr != nil {
		return sum, r.fatalErr
	}
	var topicErrs []error
	for _, e := range errs {
		if e != nil {
			topicErrs = append(topicErrs, e)
		}
	}
	return sum, errors.Join(topicErrs...)
}

// watchIdle stops the run once no event arrived for ExitWhenIdle while every
// topic still running had an open stream: a topic that is reconnecting (in
// backoff, waiting for commits, renewing credentials) restarts the clock, so
// an outage longer than ExitWhenIdle does not end the run as if the backlog
// were drained.
func (r *run) watchIdle(states []*topicState) {
	tick := min(max(r.cfg.ExitWhenIdle/4, 5*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-r.streamCtx.Done():
			return
		case now := <-t.C:
			if !allConnected(states) {
				r.resetIdle(now)
				continue
			}
			if now.Sub(time.Unix(0, r.idleFrom.Load())) >= r.cfg.ExitWhenIdle {
				r.cfg.Logger.Info("no events; stopping", "idle", r.cfg.ExitWhenIdle)
				r.stop(ReasonIdle)
				return
			}
		}
	}
}

// allConnected reports whether every topic that has not ended has an open
// stream.
func allConnected(states []*topicState) bool {
	for _, st := range states {
		st.mu.Lock()
		ok := st.connected || st.ended
		st.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// report calls Progress every ProgressEvery.
func (r *run) report(states []*topicState) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	prev := make([]int64, len(states))
	last := time.Now()
	for {
		select {
		case <-r.streamCtx.Done():
			return
		case now := <-t.C:
			r.reportOnce(states, prev, last, false)
			last = now
		}
	}
}

// reportOnce calls Progress for each topic. prev (may be nil) holds the
// counts of the previous report made at since, and is updated; the rate is
// taken since then. The final report (stopped) has no prev: its rate is the
// average since the run started at since.
func (r *run) reportOnce(states []*topicState, prev []int64, since time.Time, stopped bool) {
	now := time.Now()
	secs := now.Sub(since).Seconds()
	for i, st := range states {
		st.mu.Lock()
		p := TopicProgress{Topic: st.name, Archived: st.archived, Mark: st.mark, LastReceived: st.lastReceived,
			LastEventTime: st.lastEvent, Connected: st.connected && !stopped, Stopped: stopped}
		st.mu.Unlock()
		base := int64(0)
		if prev != nil {
			base = prev[i]
			prev[i] = p.Archived
		}
		if secs > 0 {
			p.Rate = float64(p.Archived-base) / secs
		}
		r.cfg.Progress(p)
	}
}
