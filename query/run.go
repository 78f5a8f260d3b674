package query

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path"
	"slices"
	"syscall"
	"time"

	"github.com/sfarchive/sfarchive/archive"
)

// Source is what a query reads: *archive.Archive satisfies it, whether opened read-only by the CLI or shared
// with a running subscriber in the same process.
type Source interface {
	Topics() ([]string, error)
	Schema(id string) (string, error)
	Scan(ctx context.Context, topic string, opts archive.ScanOptions, fn func(ev *archive.Event) error) error
	Gaps() ([]archive.Gap, error)
}

// Format is an output format.
type Format string

// Output formats.
const (
	FormatJSONL Format = "jsonl" // one JSON record per line (default)
	FormatJSON  Format = "json"  // one JSON array of records
	FormatCSV   Format = "csv"   // flattened dotted columns
	FormatTable Format = "table" // aligned columns for a terminal
	FormatRaw   Format = "raw"   // stored Avro payloads, each prefixed by its length as a uvarint
)

// TimeFormat says how epoch-millisecond fields are rendered.
type TimeFormat string

// Time formats.
const (
	TimeEpochMillis TimeFormat = ""        // numbers, as stored (default)
	TimeRFC3339     TimeFormat = "rfc3339" // RFC 3339 UTC strings with milliseconds
)

// Options select and shape the events of a query. The zero value prints every event of every topic as JSON
// lines.
type Options struct {
	// Topics are topic names or path.Match globs ("/data/*ChangeEvent"); empty = every topic.
	Topics []string
	// Since (inclusive) and Until (exclusive) bound the event's own time: ChangeEventHeader.commitTimestamp for
	// change events, CreatedDate for platform events. Events without such a field are excluded when set.
	Since, Until time.Time
	// ReceivedSince/ReceivedUntil bound the archive's receive time (served from its time index).
	ReceivedSince, ReceivedUntil time.Time
	// AfterReplayID/BeforeReplayID are exclusive replay ID bounds (see ParseReplayID).
	AfterReplayID, BeforeReplayID []byte
	// ChangeTypes are globs over ChangeEventHeader.changeType ("UPDATE", "GAP_*"), case-insensitive; any may
	// match.
	ChangeTypes []string
	// Entities match ChangeEventHeader.entityName (case-insensitive); any may match.
	Entities []string
	// RecordIDs match any of ChangeEventHeader.recordIds; a 15-character ID also matches its 18-character form.
	RecordIDs []string
	// ChangedFields keep change events whose expanded changedFields include any of these names (see
	// matchesChangedField for the forms accepted).
	ChangedFields []string
	// Where is an expr-lang expression over the decoded event (see the package documentation).
	Where string
	// Fields projects the output. In jsonl/json it selects the event's fields (paths such as
	// "BillingAddress.City", or a ChangeEventHeader field by its own name such as "changeType"); the record's
	// envelope and bitmap keys stay. In csv/table it is the column list, in order: event paths and record
	// columns (topic, replay_id, event_id, schema_id, received_at, changed_fields, nulled_fields, diff_fields,
	// bitmap_errors). Names no scanned schema has are reported in Result.Warnings.
	Fields []string
	// Limit stops after this many events (0 = no limit).
	Limit int
	// Reverse lists newest first (topics in reverse order too).
	Reverse bool

	Format          Format
	TimeFormat      TimeFormat
	FlattenCompound bool // expanded bitmap names use SOQL names (BillingAddress.City → BillingCity)
	Width           int  // table width in columns; 0 = 120

	// Gaps lists gaps instead of events: the archive's gap records and GAP_* change events.
	Gaps bool

	// SkipBad reports undecodable events (missing schema, blank schema ID, bad payload, damaged envelope) to
	// OnBad and goes on; without it the first one stops the run with an error naming topic and replay ID.
	SkipBad bool
	OnBad   func(err error) // nil → logged at warn level

	Logger *slog.Logger
}

// Result summarises a run.
type Result struct {
	Topics  []string // topics scanned, in scan order
	Scanned int      // events read from the archive
	Written int      // records written (events or gaps)
	Bad     int      // events skipped under SkipBad
	// WhereErrors counts events for which the --where expression failed at run time (e.g. comparing a null
	// field); those events do not match.
	WhereErrors int
	Warnings    []string
}

// errLimit stops a scan once Limit records are written.
var errLimit = errors.New("limit reached")

// Run executes a query against src and writes the output to w. It streams: memory does not grow with the
// archive. A closed output returns ErrOutputClosed.
func Run(ctx context.Context, src Source, opts Options, w io.Writer) (Result, error) {
	r, err := newRunner(src, opts)
	if err != nil {
		return Result{}, err
	}
	res, err := r.run(ctx, w)
	if err != nil && isClosedPipe(err) {
		return res, ErrOutputClosed
	}
	return res, err
}

type runner struct {
	src    Source
	opts   Options
	log    *slog.Logger
	dec    *Decoder
	filter *filter
	out    *output
	fmt    formatter
	res    Result

	schemas  map[string]schemaEntry
	lastID   string
	lastEnt  schemaEntry
	haveLast bool
}

type schemaEntry struct {
	s   *Schema
	err error
}

func newRunner(src Source, opts Options) (*runner, error) {
	if opts.Format == "" {
		opts.Format = FormatJSONL
	}
	switch opts.Format {
	case FormatJSONL, FormatJSON, FormatCSV, FormatTable, FormatRaw:
	default:
		return nil, fmt.Errorf("%w: format %q (want jsonl, json, csv, table or raw)", ErrBadOption, opts.Format)
	}
	switch opts.TimeFormat {
	case TimeEpochMillis, TimeRFC3339:
	default:
		return nil, fmt.Errorf("%w: time format %q (want rfc3339, or nothing for epoch milliseconds)", ErrBadOption, opts.TimeFormat)
	}
	if opts.Gaps && opts.Format == FormatRaw {
		return nil, fmt.Errorf("%w: --gaps cannot be written as raw", ErrBadOption)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%w: limit %d is negative", ErrBadOption, opts.Limit)
	}
	for _, p := range opts.Topics {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%w: topic glob %q: %v", ErrBadOption, p, err)
		}
	}
	f, err := newFilter(opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dec := NewDecoder()
	dec.TimeRFC3339 = opts.TimeFormat == TimeRFC3339
	return &runner{src: src, opts: opts, log: log, dec: dec, filter: f, schemas: map[string]schemaEntry{}}, nil
}

// matchTopics resolves the topic names and globs against the archive.
func matchTopics(all []string, patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return all, nil
	}
	seen := map[string]bool{}
	for _, p := range patterns {
		n := 0
		for _, t := range all {
			if ok, _ := path.Match(p, t); ok {
				n++
				seen[t] = true
			}
		}
		if n == 0 {
			if !hasMeta(p) {
				return nil, fmt.Errorf("topic %s: %w", p, archive.ErrTopicNotFound)
			}
			return nil, fmt.Errorf("%w %q", ErrNoTopicMatch, p)
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func hasMeta(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

func (r *runner) run(ctx context.Context, w io.Writer) (Result, error) {
	all, err := r.src.Topics()
	if err != nil {
		return r.res, fmt.Errorf("list topics: %w", err)
	}
	topics, err := matchTopics(all, r.opts.Topics)
	if err != nil {
		return r.res, err
	}
	if r.opts.Reverse {
		slices.Reverse(topics)
	}
	r.res.Topics = topics
	r.out = newOutput(w)
	r.fmt = newFormatter(r)
	if err := r.fmt.begin(); err != nil {
		return r.res, err
	}
	if r.opts.Gaps {
		err := r.listArchiveGaps(topics)
		if errors.Is(err, errLimit) {
			topics = nil
		} else if err != nil {
			return r.res, r.finishErr(err)
		}
	}
	scanOpts := archive.ScanOptions{
		AfterReplayID: r.opts.AfterReplayID, BeforeReplayID: r.opts.BeforeReplayID,
		ReceivedSince: r.opts.ReceivedSince, ReceivedUntil: r.opts.ReceivedUntil,
		Reverse: r.opts.Reverse,
	}
	for _, topic := range topics {
		scanOpts.OnBadEnvelope = nil
		if r.opts.SkipBad {
			scanOpts.OnBadEnvelope = func(topic string, replayID []byte, err error) error {
				r.reportBad(&EventError{Topic: topic, ReplayID: slices.Clone(replayID), Err: err})
				return nil
			}
		}
		err := r.src.Scan(ctx, topic, scanOpts, func(ev *archive.Event) error { return r.event(ctx, topic, ev) })
		if errors.Is(err, errLimit) {
			break
		}
		if err != nil {
			return r.res, r.finishErr(fmt.Errorf("query %s: %w", topic, err))
		}
	}
	if err := r.fmt.end(); err != nil {
		return r.res, err
	}
	r.res.Warnings = append(r.res.Warnings, r.filter.warnings()...)
	r.res.Warnings = append(r.res.Warnings, r.fieldWarnings()...)
	if r.filter.where != nil {
		r.res.WhereErrors = r.filter.where.errs
	}
	return r.res, r.out.flush()
}

// fieldWarnings reports Fields names that are neither record columns nor a field of any schema read during
// the run (their column or key stays empty, which is easy to miss).
func (r *runner) fieldWarnings() []string {
	if len(r.opts.Fields) == 0 || r.opts.Gaps {
		return nil
	}
	var schemas []*Schema
	for _, e := range r.schemas {
		if e.s != nil {
			schemas = append(schemas, e.s)
		}
	}
	if len(schemas) == 0 {
		return nil
	}
	var unknown []string
	for _, name := range r.opts.Fields {
		if isRecordColumn(name) || slices.Contains(unknown, name) {
			continue
		}
		p, err := fieldPath(name)
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(schemas, func(s *Schema) bool { _, _, ok := resolvePath(s, p); return ok }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("--fields names %v, which no scanned event has (names are case-sensitive)", unknown)}
}

// finishErr flushes what was written before an error, so the output holds every good record before it.
func (r *runner) finishErr(err error) error {
	if ferr := r.out.flush(); ferr != nil && isClosedPipe(ferr) {
		return ErrOutputClosed
	}
	if isClosedPipe(err) {
		return ErrOutputClosed
	}
	return err
}

func (r *runner) reportBad(err error) {
	r.res.Bad++
	if r.opts.OnBad != nil {
		r.opts.OnBad(err)
		return
	}
	r.log.Warn("skipping bad event", "err", err)
}

// schema returns the compiled schema of an ID, parsed once.
func (r *runner) schema(id string) (*Schema, error) {
	if r.haveLast && id == r.lastID {
		return r.lastEnt.s, r.lastEnt.err
	}
	e, ok := r.schemas[id]
	if !ok {
		js, err := r.src.Schema(id)
		if err != nil {
			e.err = err
		} else {
			e.s, e.err = ParseSchema(id, js)
		}
		r.schemas[id] = e
	}
	r.lastID, r.lastEnt, r.haveLast = id, e, true
	return e.s, e.err
}

func (r *runner) event(ctx context.Context, topic string, ev *archive.Event) error {
	r.res.Scanned++
	if r.res.Scanned&1023 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	bad := func(err error) error {
		e := &EventError{Topic: topic, ReplayID: slices.Clone(ev.ReplayID), SchemaID: ev.SchemaID, Err: err}
		if r.opts.SkipBad {
			r.reportBad(e)
			return nil
		}
		return e
	}
	if ev.SchemaID == "" {
		return bad(ErrBlankSchemaID)
	}
	s, err := r.schema(ev.SchemaID)
	if err != nil {
		return bad(err)
	}
	keep, err := r.filter.match(r.dec, topic, ev, s)
	if err != nil {
		return bad(err)
	}
	if !keep {
		return nil
	}
	if r.opts.Gaps {
		row, err := r.eventGapRow(topic, ev, s)
		if err != nil {
			return bad(err)
		}
		if err := r.fmt.gap(row); err != nil {
			return err
		}
	} else if err := r.fmt.event(topic, ev, s); err != nil {
		if r.out.err != nil {
			return r.out.err
		}
		return bad(err)
	}
	if r.out.err != nil {
		return r.out.err
	}
	r.res.Written++
	if r.opts.Limit > 0 && r.res.Written >= r.opts.Limit {
		return errLimit
	}
	return nil
}

// output is the buffered writer all formats write through; it remembers the first write error.
type output struct {
	bw  *bufio.Writer
	err error
}

func newOutput(w io.Writer) *output { return &output{bw: bufio.NewWriterSize(w, 64<<10)} }

func (o *output) write(b []byte) {
	if o.err != nil {
		return
	}
	if _, err := o.bw.Write(b); err != nil {
		o.err = fmt.Errorf("write output: %w", err)
	}
}

func (o *output) flush() error {
	if o.err == nil {
		if err := o.bw.Flush(); err != nil {
			o.err = fmt.Errorf("write output: %w", err)
		}
	}
	if o.err != nil && isClosedPipe(o.err) {
		return ErrOutputClosed
	}
	return o.err
}

func isClosedPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, ErrOutputClosed)
}
