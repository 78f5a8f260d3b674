package query

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sfarchive/sfarchive/archive"
)

// VerifyStats counts what VerifyPayloads read.
type VerifyStats struct {
	Topics   int
	Events   int
	Problems int
}

// VerifyPayloads decodes every event of every topic with its own schema (for `sfarchive verify`; the archive
// checks its own structure). Each problem is passed to report as an *EventError wrapping ErrBlankSchemaID,
// archive.ErrSchemaNotFound, ErrBadSchema, ErrUndecodable (including trailing bytes), ErrBitmap, or the
// archive's *EnvelopeError; verification goes on after each. report may be called once per bad event, so a
// caller printing them should cap the list. The returned error is for failures to read at all (and ctx).
func VerifyPayloads(ctx context.Context, src Source, report func(*EventError)) (VerifyStats, error) {
	var st VerifyStats
	topics, err := src.Topics()
	if err != nil {
		return st, fmt.Errorf("list topics: %w", err)
	}
	dec := NewDecoder()
	schemas := map[string]schemaEntry{}
	var buf []byte
	var rs recordState
	problem := func(topic string, ev *archive.Event, err error) {
		st.Problems++
		if report != nil {
			report(&EventError{Topic: topic, ReplayID: slices.Clone(ev.ReplayID), SchemaID: ev.SchemaID, Err: err})
		}
	}
	for _, topic := range topics {
		st.Topics++
		opts := archive.ScanOptions{OnBadEnvelope: func(topic string, replayID []byte, err error) error {
			problem(topic, &archive.Event{ReplayID: replayID}, err)
			return nil
		}}
		err := src.Scan(ctx, topic, opts, func(ev *archive.Event) error {
			st.Events++
			if st.Events&1023 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if ev.SchemaID == "" {
				problem(topic, ev, ErrBlankSchemaID)
				return nil
			}
			e, ok := schemas[ev.SchemaID]
			if !ok {
				js, err := src.Schema(ev.SchemaID)
				if err != nil {
					e.err = err
				} else {
					e.s, e.err = ParseSchema(ev.SchemaID, js)
				}
				schemas[ev.SchemaID] = e
			}
			if e.err != nil {
				problem(topic, ev, e.err)
				return nil
			}
			buf, err = dec.AppendJSON(buf[:0], e.s, ev.Payload)
			if err != nil {
				problem(topic, ev, err)
				return nil
			}
			if e.s.cdc {
				rs.expand(dec, e.s, false)
				if len(rs.problems) > 0 {
					problem(topic, ev, fmt.Errorf("%w: %s", ErrBitmap, strings.Join(rs.problems, "; ")))
				}
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("verify %s: %w", topic, err)
		}
	}
	return st, nil
}
