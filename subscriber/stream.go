package subscriber

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sfarchive/sfarchive/archive"
	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// Gap kinds written by the subscriber.
const (
	// GapReplayRejected: the server rejected the stored position (or, for a
	// topic without one, the start position Config.From); the topic went on
	// from EARLIEST, so events between the position and the earliest retained
	// event may be missing.
	GapReplayRejected = "invalid-replay"
)

// maxAuthFailures is how many consecutive auth failures, each after renewed
// credentials, end the run.
const maxAuthFailures = 3

// topicRunner runs one topic's Subscribe streams until the run stops.
type topicRunner struct {
	r   *run
	t   *topicState
	log *slog.Logger

	bo         backoff
	authFails  int
	rejected   [][]byte // replay IDs the server rejected; never sent again
	lastHanded []byte   // mark of the last batch handed to the writer
	gen        uint64   // credentials generation of the current stream

	subscribes, keepalives, gaps int
}

// sessionEnd says why a Subscribe stream ended.
type sessionEnd struct {
	stopped  bool // the run is stopping
	watchdog bool // nothing arrived within the watchdog window
	got      bool // at least one response arrived
	err      error
	re       *RemoteError
	act      action
	preset   pubsubpb.ReplayPreset
	replayID []byte
	given    bool // replayID is Config.From, not a stored mark
}

// loop subscribes and resubscribes until the run stops or the topic cannot go
// on. It returns nil on a clean stop.
func (tr *topicRunner) loop() error {
	defer tr.setEnded()
	ctx := tr.r.streamCtx
	for ctx.Err() == nil {
		preset, id, given := tr.position()
		end := tr.session(preset, id)
		end.given = given
		tr.setConnected(false)
		if !tr.waitCommitted(ctx) || end.stopped {
			return nil
		}
		if err := tr.handleEnd(ctx, end); err != nil {
			return err
		}
	}
	return nil
}

// position picks where the next stream starts: CUSTOM from the committed mark;
// with no mark the configured start; EARLIEST instead of a rejected ID. given
// reports that a CUSTOM ID is the configured start, not a stored mark.
func (tr *topicRunner) position() (preset pubsubpb.ReplayPreset, id []byte, given bool) {
	mark, _, _ := tr.t.snapshot()
	if len(mark) == 0 {
		switch tr.r.cfg.From.Kind {
		case StartLatest:
			return pubsubpb.ReplayPreset_LATEST, nil, false
		case StartCustom:
			mark, given = tr.r.cfg.From.ReplayID, true
		default:
			return pubsubpb.ReplayPreset_EARLIEST, nil, false
		}
	}
	for _, r := range tr.rejected {
		if sameID(r, mark) {
			return pubsubpb.ReplayPreset_EARLIEST, nil, false
		}
	}
	return pubsubpb.ReplayPreset_CUSTOM, mark, given
}

// waitCommitted waits until every batch handed to the writer is committed, so
// that the next stream starts exactly at the committed mark.
func (tr *topicRunner) waitCommitted(ctx context.Context) bool {
	for {
		if _, _, inFlight := tr.t.snapshot(); inFlight == 0 {
			return true
		}
		select {
		case <-tr.t.signal:
		case <-ctx.Done():
			return false
		}
	}
}

// setConnected records whether the topic has an open stream. Every change
// restarts the ExitWhenIdle clock: idle time counts only while every topic
// has had an open stream for all of it.
func (tr *topicRunner) setConnected(v bool) {
	tr.t.mu.Lock()
	changed := tr.t.connected != v
	tr.t.connected = v
	tr.t.mu.Unlock()
	if changed {
		tr.r.resetIdle(time.Now())
	}
}

// setEnded records that the topic's runner returned; an ended topic no longer
// holds back ExitWhenIdle.
func (tr *topicRunner) setEnded() {
	tr.t.mu.Lock()
	tr.t.connected = false
	tr.t.ended = true
	tr.t.mu.Unlock()
	tr.r.resetIdle(time.Now())
}

type received struct {
	resp    *pubsubpb.FetchResponse
	err     error
	trailer metadata.MD
}

// session runs one Subscribe stream.
func (tr *topicRunner) session(preset pubsubpb.ReplayPreset, replayID []byte) (end sessionEnd) {
	cfg := tr.r.cfg
	end.preset, end.replayID = preset, replayID
	ctx, cancel := context.WithCancel(tr.r.streamCtx)
	defer cancel()
	creds, gen := tr.r.creds.get()
	tr.gen = gen
	tr.subscribes++
	log := tr.log.With("preset", preset.String())
	if len(replayID) > 0 {
		log = log.With("replay_id", hex.EncodeToString(replayID))
	}
	stream, err := tr.r.client.Subscribe(withCreds(ctx, creds))
	if err != nil {
		return tr.failed(ctx, end, "Subscribe", err, nil)
	}
	credit := int32(cfg.Batch)
	first := &pubsubpb.FetchRequest{TopicName: tr.t.name, ReplayPreset: preset, ReplayId: replayID, NumRequested: credit}
	if err := stream.Send(first); err != nil {
		log.Debug("send first fetch request", "err", err) // Recv reports the cause
	}
	log.Info("subscribed", "num_requested", credit)
	if h := cfg.creditHook; h != nil {
		h(tr.t.name, credit, -1)
	}
	tr.setConnected(true)

	recvCh := make(chan received)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			resp, err := stream.Recv()
			r := received{resp: resp, err: err}
			if err != nil {
				r.trailer = stream.Trailer()
			}
			select {
			case recvCh <- r:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-recvDone
	}()

	wd := time.NewTimer(cfg.Watchdog)
	defer wd.Stop()
	outstanding := credit
	for {
		select {
		case <-ctx.Done():
			end.stopped = true
			return end
		case <-wd.C:
			if outstanding == 0 {
				wd.Reset(cfg.Watchdog) // nothing asked for: silence is expected
				continue
			}
			end.watchdog = true
			end.err = fmt.Errorf("no response (event or keepalive) for %s", cfg.Watchdog)
			return end
		case <-tr.t.signal:
			tr.topUp(stream, &outstanding)
		case r := <-recvCh:
			if r.err != nil {
				return tr.failed(ctx, end, "Subscribe", r.err, r.trailer)
			}
			end.got = true
			tr.bo.reset()
			tr.authFails = 0
			if !wd.Stop() {
				select {
				case <-wd.C:
				default:
				}
			}
			wd.Reset(cfg.Watchdog)
			n := int32(len(r.resp.GetEvents()))
			outstanding = max(outstanding-n, 0)
			if p := r.resp.GetPendingNumRequested(); p > outstanding {
				outstanding = p // never believe less is owed than the server says
			}
			if h := cfg.creditHook; h != nil {
				h(tr.t.name, outstanding, r.resp.GetPendingNumRequested())
			}
			if err := tr.handle(ctx, r.resp); err != nil {
				if ctx.Err() != nil {
					end.stopped = true
					return end
				}
				return tr.failed(ctx, end, "GetSchema", err, nil)
			}
			tr.topUp(stream, &outstanding)
		}
	}
}

// failed fills end from a failed call.
func (tr *topicRunner) failed(ctx context.Context, end sessionEnd, rpc string, err error, trailer metadata.MD) sessionEnd {
	if ctx.Err() != nil {
		end.stopped = true
		return end
	}
	end.err = err
	if errors.Is(err, io.EOF) {
		end.act = actResubscribe // the server closed the stream with OK
		return end
	}
	if !errors.As(err, &end.re) {
		end.re = remoteFailure(rpc, tr.t.name, err, trailer)
	}
	end.act = classify(err, end.re)
	return end
}

// topUp asks for more events: never more than Batch outstanding, never more
// than MaxUncommitted received-but-uncommitted plus outstanding, and not in
// dribbles (only when at least half a batch can be asked for, or nothing is
// outstanding).
func (tr *topicRunner) topUp(stream grpc.BidiStreamingClient[pubsubpb.FetchRequest, pubsubpb.FetchResponse], outstanding *int32) {
	cfg := tr.r.cfg
	if tr.r.creditStopped() {
		return
	}
	_, unc, _ := tr.t.snapshot()
	want := min(int32(cfg.Batch)-*outstanding, int32(cfg.MaxUncommitted-unc)-*outstanding)
	if want <= 0 || (*outstanding > 0 && want < int32(cfg.Batch+1)/2) {
		return
	}
	if err := stream.Send(&pubsubpb.FetchRequest{TopicName: tr.t.name, NumRequested: want}); err != nil {
		tr.log.Debug("send fetch request", "err", err) // Recv reports the cause
		return
	}
	*outstanding += want
	if h := cfg.creditHook; h != nil {
		h(tr.t.name, *outstanding, -1)
	}
}

// handle turns one response into a batch for the writer.
func (tr *topicRunner) handle(ctx context.Context, resp *pubsubpb.FetchResponse) error {
	now := time.Now()
	events := resp.GetEvents()
	batch := archive.TopicBatch{Topic: tr.t.name, LatestReplayID: resp.GetLatestReplayId()}
	if len(events) > 0 {
		batch.Events = make([]archive.Event, 0, len(events))
	}
	for _, ce := range events {
		pe := ce.GetEvent()
		if len(ce.GetReplayId()) == 0 {
			tr.log.Error("event without a replay ID cannot be archived; skipped", "event_id", pe.GetId(), "rpc_id", resp.GetRpcId())
			continue
		}
		ev := archive.Event{
			ReplayID:   ce.GetReplayId(),
			EventID:    pe.GetId(),
			SchemaID:   pe.GetSchemaId(),
			Payload:    pe.GetPayload(),
			ReceivedAt: now,
		}
		for _, h := range pe.GetHeaders() {
			ev.Headers = append(ev.Headers, archive.Header{Key: h.GetKey(), Value: h.GetValue()})
		}
		if ev.SchemaID == "" {
			tr.log.Warn("event with a blank schema ID archived raw", "replay_id", hex.EncodeToString(ev.ReplayID), "event_id", ev.EventID)
		} else {
			js, err := tr.r.schemas.need(ctx, ev.SchemaID, tr.fetchSchema)
			if err != nil {
				return err
			}
			if js != "" {
				if batch.Schemas == nil {
					batch.Schemas = make(map[string]string)
				}
				batch.Schemas[ev.SchemaID] = js
			}
		}
		batch.Events = append(batch.Events, ev)
	}
	if len(batch.Events) == 0 {
		if len(batch.LatestReplayID) == 0 || sameID(batch.LatestReplayID, tr.lastHanded) {
			return nil
		}
		tr.keepalives++
		tr.log.Debug("keepalive", "replay_id", hex.EncodeToString(batch.LatestReplayID), "rpc_id", resp.GetRpcId())
	} else {
		tr.r.eventsReceived(len(batch.Events), now)
	}
	tr.lastHanded = batchMark(batch)
	tr.t.handed(len(batch.Events))
	tr.r.writerIn <- handoff{t: tr.t, batch: batch}
	return nil
}

// fetchSchema calls GetSchema for one ID.
func (tr *topicRunner) fetchSchema(ctx context.Context, id string) (string, error) {
	creds, _ := tr.r.creds.get()
	var md metadata.MD
	info, err := tr.r.client.GetSchema(withCreds(ctx, creds), &pubsubpb.SchemaRequest{SchemaId: id}, grpc.Trailer(&md))
	if err != nil {
		re := remoteFailure("GetSchema", tr.t.name, err, md)
		if classify(err, re) == actStopTopic {
			// The server will not give this schema (unknown ID, no access):
			// archive its events raw, as for a blank schema ID, and go on.
			tr.log.Warn("schema refused by the server; its events are archived raw and cannot be decoded",
				"schema_id", id, "code", re.Code.String(), "error_code", re.ErrorCode, "rpc_id", re.RPCID)
			return "", nil
		}
		return "", re
	}
	if info.GetSchemaJson() == "" {
		return "", fmt.Errorf("GetSchema %s: the server returned an empty schema (rpc-id %s)", id, info.GetRpcId())
	}
	tr.log.Info("schema fetched", "schema_id", id, "rpc_id", info.GetRpcId())
	return info.GetSchemaJson(), nil
}
