package subscriber

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/sfarchive/sfarchive/archive"
	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// handleEnd applies the error policy to a stream that ended. It returns nil to
// resubscribe, or the error that stops the topic (run-level errors are also
// reported through run.fail).
func (tr *topicRunner) handleEnd(ctx context.Context, end sessionEnd) error {
	log := tr.log
	if re := end.re; re != nil {
		log = log.With("code", re.Code.String(), "error_code", re.ErrorCode, "rpc_id", re.RPCID)
	}
	if mark, _, _ := tr.t.snapshot(); len(mark) > 0 {
		log = log.With("replay_id", hex.EncodeToString(mark)) // where the topic resumes
	}
	if end.watchdog {
		log.Warn("stream silent; resubscribing from the mark", "watchdog", tr.r.cfg.Watchdog)
		return nil
	}
	switch end.act {
	case actResubscribe:
		if end.got {
			log.Info("server closed the stream; resubscribing from the mark")
			return nil
		}
		d := tr.bo.next()
		log.Warn("server closed the stream before any response; resubscribing after backoff", "backoff", d)
		sleepCtx(ctx, d)
		return nil

	case actReauth:
		tr.authFails++
		if tr.authFails > maxAuthFailures {
			return tr.r.fail(fmt.Errorf("%w: %d attempts with renewed credentials were refused: %w", ErrAuth, maxAuthFailures, end.re))
		}
		if tr.authFails > 1 {
			d := tr.bo.next()
			log.Warn("credentials refused again; waiting before renewing", "backoff", d, "err", end.err)
			if !sleepCtx(ctx, d) {
				return nil
			}
		}
		if _, _, err := tr.r.creds.refresh(ctx, tr.gen); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return tr.r.fail(fmt.Errorf("topic %s: %w (server said: %w)", tr.t.name, err, end.re))
		}
		log.Info("credentials renewed; resubscribing from the mark")
		return nil

	case actInvalidReplay:
		if end.preset != pubsubpb.ReplayPreset_CUSTOM || len(end.replayID) == 0 {
			d := tr.bo.next()
			log.Warn("replay error without a custom position; retrying after backoff", "backoff", d, "err", end.err)
			sleepCtx(ctx, d)
			return nil
		}
		return tr.invalidReplay(end)

	case actStopTopic:
		log.Error("topic refused by the server; stopping it", "err", end.err)
		return fmt.Errorf("%w: %w", ErrTopicRefused, end.re)

	default: // actRetry
		d := tr.bo.next()
		log.Warn("stream failed; resubscribing from the mark after backoff", "backoff", d, "err", end.err)
		sleepCtx(ctx, d)
		return nil
	}
}

// invalidReplay handles a rejected CUSTOM position. A stored position (the
// archive's mark) that aged out: a durable gap record and EARLIEST, or the end
// of the run with the gap explained. A start position the user gave (--from):
// always the end of the run, since nothing was archived from it yet and there
// is no gap to record, only a mistyped or expired ID to correct.
func (tr *topicRunner) invalidReplay(end sessionEnd) error {
	pos := hex.EncodeToString(end.replayID)
	what := "stored position" // the topic's mark in the archive
	if end.given {
		return tr.r.fail(fmt.Errorf("%w: topic %s: the server rejected the start position given with --from, replay ID %s "+
			"(unknown, or older than the retention window): %w; give a replay ID the server still retains, or --from earliest",
			ErrInvalidReplay, tr.t.name, pos, end.re))
	}
	if tr.r.cfg.OnInvalidReplay == OnInvalidReplayFail {
		return tr.r.fail(fmt.Errorf("%w: topic %s: the server rejected the %s, replay ID %s (expired past retention or unknown): %w; "+
			"events between it and the earliest retained event cannot be replayed. Run with --on-invalid-replay earliest "+
			"to record a gap and continue from the earliest retained event", ErrInvalidReplay, tr.t.name, what, pos, end.re))
	}
	reason := fmt.Sprintf("server rejected the %s, replay ID %s: %s; resubscribed from EARLIEST, events between this position and the earliest retained event may be missing", what, pos, end.re)
	g := archive.Gap{Topic: tr.t.name, Time: time.Now(), Kind: GapReplayRejected, FromReplayID: end.replayID, Reason: reason}
	if err := tr.r.store.AddGap(g); err != nil {
		return tr.r.fail(fmt.Errorf("%w: record gap for topic %s at %s: %w", ErrStore, tr.t.name, pos, err))
	}
	tr.gaps++
	tr.rejected = append(tr.rejected, end.replayID)
	tr.log.Warn(what+" rejected; gap recorded, resubscribing from EARLIEST",
		"replay_id", pos, "code", end.re.Code.String(), "error_code", end.re.ErrorCode, "rpc_id", end.re.RPCID)
	return nil
}
