package query

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

// gapRow is one line of `query --gaps`: an archive gap record (source "archive": the subscriber lost its
// position, e.g. an expired replay ID) or a GAP_* change event (source "event": Salesforce could not send the
// change itself).
type gapRow struct {
	Source       string   `json:"source"`
	Topic        string   `json:"topic"`
	Time         string   `json:"time"`
	Kind         string   `json:"kind"`
	ReplayID     string   `json:"replay_id,omitempty"`
	FromReplayID string   `json:"from_replay_id,omitempty"`
	ToReplayID   string   `json:"to_replay_id,omitempty"`
	Entity       string   `json:"entity,omitempty"`
	RecordIDs    []string `json:"record_ids,omitempty"`
	Reason       string   `json:"reason,omitempty"`
}

var gapColumns = []string{"source", "topic", "time", "kind", "replay_id", "from_replay_id", "to_replay_id", "entity", "record_ids", "reason"}

func (g gapRow) cells() []string {
	ids := strings.Join(g.RecordIDs, " ")
	return []string{g.Source, g.Topic, g.Time, g.Kind, g.ReplayID, g.FromReplayID, g.ToReplayID, g.Entity, ids, g.Reason}
}

// listArchiveGaps writes the archive's gap records of the selected topics (within --since/--until).
func (r *runner) listArchiveGaps(topics []string) error {
	gaps, err := r.src.Gaps()
	if err != nil {
		return fmt.Errorf("list gaps: %w", err)
	}
	if r.opts.Reverse {
		slices.Reverse(gaps)
	}
	for _, g := range gaps {
		if !slices.Contains(topics, g.Topic) {
			continue
		}
		if !r.opts.Since.IsZero() && g.Time.Before(r.opts.Since) || !r.opts.Until.IsZero() && !g.Time.Before(r.opts.Until) {
			continue
		}
		row := gapRow{
			Source: "archive", Topic: g.Topic, Time: g.Time.UTC().Format(time.RFC3339Nano), Kind: g.Kind,
			FromReplayID: hex.EncodeToString(g.FromReplayID), ToReplayID: hex.EncodeToString(g.ToReplayID), Reason: g.Reason,
		}
		if err := r.fmt.gap(row); err != nil {
			return err
		}
		if r.out.err != nil {
			return r.out.err
		}
		r.res.Written++
		if r.opts.Limit > 0 && r.res.Written >= r.opts.Limit {
			return errLimit
		}
	}
	return nil
}

// eventGapRow builds the gap line of a GAP_* change event.
func (r *runner) eventGapRow(topic string, ev *archive.Event, s *Schema) (gapRow, error) {
	need := make([]bool, len(s.topNames))
	if len(need) > 0 {
		need[0] = true
	}
	vals, err := r.dec.Decode(s, ev.Payload, need)
	if err != nil {
		return gapRow{}, err
	}
	h, _ := vals["ChangeEventHeader"].(map[string]any)
	row := gapRow{Source: "event", Topic: topic, ReplayID: hex.EncodeToString(ev.ReplayID),
		Kind: asString(h["changeType"]), Entity: asString(h["entityName"])}
	if ms, ok := h["commitTimestamp"].(int64); ok {
		row.Time = time.UnixMilli(ms).UTC().Format(rfc3339Millis)
	}
	ids, _ := h["recordIds"].([]any)
	for _, id := range ids {
		row.RecordIDs = append(row.RecordIDs, asString(id))
	}
	return row, nil
}
