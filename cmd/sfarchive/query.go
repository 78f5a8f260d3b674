package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/query"
)

func queryCommand(e *env) *cli.Command {
	return withUsageErrors(&cli.Command{
		Name:      "query",
		Usage:     "decode, filter and print archived events (offline)",
		ArgsUsage: " ",
		Description: `Reads the archive without changing it, decodes every event with the schema it was written
with, and prints the events that pass every filter given, in replay order per topic.

Output record (jsonl, json):
  {"topic":…, "replay_id":"<hex>", "event_id":…, "schema_id":…, "received_at":"<RFC 3339>",
   "event":{…decoded, schema field order…}, "changed_fields":[…], "nulled_fields":[…], "diff_fields":[…]}
Change events get their changedFields/nulledFields/diffFields bitmaps expanded to field names
(BillingAddress.City for compound fields); long values are exact; bytes are base64.

` + query.WhereHelp + `

Examples:
  sfarchive query --archive events.db --topic /data/AccountChangeEvent --since 24h
  sfarchive query --archive events.db --topic '/data/*ChangeEvent' --changed-field BillingAddress.City \
      --since 2026-03-01 --until 2026-04-01 --format csv --fields commitUser,recordIds,BillingAddress.City
  sfarchive query --archive events.db --record-id 001xx000003DGb2AAG --time-format rfc3339
  sfarchive query --archive events.db --gaps
  sfarchive query --archive events.db --format raw --topic /event/Order_Event__e > orders.avro-stream`,
		Flags: []cli.Flag{
			archiveFlag(),
			&cli.StringSliceFlag{Name: "topic", Aliases: []string{"t"}, Usage: "topic name or glob such as '/data/*ChangeEvent' (repeatable; default: all)", EnvVars: envVar("query-topic")},
			&cli.StringFlag{Name: "since", Usage: "events whose own time (commitTimestamp, or CreatedDate for platform events) is at or after `TIME`: RFC 3339, a date, or a duration ago such as 36h or 7d", EnvVars: envVar("since")},
			&cli.StringFlag{Name: "until", Usage: "events whose own time is before `TIME` (same forms as --since)", EnvVars: envVar("until")},
			&cli.StringFlag{Name: "received-since", Usage: "events archived at or after `TIME` (uses the archive's time index)", EnvVars: envVar("received-since")},
			&cli.StringFlag{Name: "received-until", Usage: "events archived before `TIME`", EnvVars: envVar("received-until")},
			&cli.StringFlag{Name: "after-replay", Usage: "events after replay `ID` (hex as printed, or base64)", EnvVars: envVar("after-replay")},
			&cli.StringFlag{Name: "before-replay", Usage: "events before replay `ID`", EnvVars: envVar("before-replay")},
			&cli.StringSliceFlag{Name: "change-type", Usage: "change type or glob: CREATE, UPDATE, DELETE, UNDELETE, GAP_* … (repeatable)", EnvVars: envVar("change-type")},
			&cli.StringSliceFlag{Name: "entity", Usage: "entity name of change events, e.g. Account (repeatable)", EnvVars: envVar("entity")},
			&cli.StringSliceFlag{Name: "record-id", Usage: "record ID in recordIds, 15 or 18 characters (repeatable)", EnvVars: envVar("record-id")},
			&cli.StringSliceFlag{Name: "changed-field", Usage: "events whose changed fields include `NAME`, e.g. Phone or BillingAddress.City (repeatable)", EnvVars: envVar("changed-field")},
			&cli.StringFlag{Name: "where", Usage: "keep events for which the expr-lang `EXPRESSION` is true (syntax above)", EnvVars: envVar("where")},
			&cli.StringSliceFlag{Name: "fields", Usage: "project the output (comma-separated or repeated): event field paths such as BillingAddress.City or changeType. jsonl/json keep only these in \"event\" (the record's other keys stay); csv/table print exactly these columns in this order, which may also be topic, replay_id, event_id, schema_id, received_at, changed_fields, nulled_fields, diff_fields", EnvVars: envVar("fields")},
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Usage: "stop after `N` events (0: all)", EnvVars: envVar("limit")},
			&cli.BoolFlag{Name: "reverse", Usage: "newest first", EnvVars: envVar("reverse")},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "jsonl, json, csv, table or raw (each stored Avro payload prefixed by its length as a uvarint)", Value: "jsonl", EnvVars: envVar("format")},
			&cli.StringFlag{Name: "time-format", Usage: "epoch-millisecond timestamps as: epoch (numbers, as stored) or rfc3339", Value: "epoch", EnvVars: envVar("time-format")},
			&cli.BoolFlag{Name: "flatten-compound", Usage: "name changed compound subfields by their SOQL column (BillingAddress.City → BillingCity, Name.FirstName → FirstName)", EnvVars: envVar("flatten-compound")},
			&cli.IntFlag{Name: "width", Usage: "table width in columns", DefaultText: "the terminal's, else 120", EnvVars: envVar("width")},
			&cli.BoolFlag{Name: "gaps", Usage: "list gaps instead of events: the archive's gap records and GAP_* change events", EnvVars: envVar("gaps")},
			&cli.BoolFlag{Name: "skip-bad", Usage: "report undecodable events on stderr and go on, instead of stopping at the first", EnvVars: envVar("skip-bad")},
			lockTimeoutFlag(),
		},
		Action: func(c *cli.Context) error { return runQuery(c, e) },
	})
}

func runQuery(c *cli.Context, e *env) error {
	if c.Args().Len() > 0 {
		return usagef("unexpected argument %q: filters are flags, e.g. --topic or --where", c.Args().First())
	}
	opts, err := queryOptions(c, e)
	if err != nil {
		return err
	}
	arc, err := openReadOnly(c)
	if err != nil {
		return err
	}
	defer arc.Close()

	res, err := query.Run(c.Context, arc, opts, e.stdout)
	switch {
	case errors.Is(err, query.ErrOutputClosed):
		return nil
	case errors.Is(err, query.ErrBadOption), errors.Is(err, query.ErrBadExpression), errors.Is(err, query.ErrNoTopicMatch),
		errors.Is(err, archive.ErrTopicNotFound):
		return usageErr(err)
	case err != nil:
		var ee *query.EventError
		var envErr *archive.EnvelopeError
		if errors.As(err, &ee) || errors.As(err, &envErr) {
			return withHint(err, "add --skip-bad to report such events and go on; `sfarchive verify` lists every problem")
		}
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "sfarchive: warning: %s\n", w)
	}
	if res.Bad > 0 {
		fmt.Fprintf(e.stderr, "sfarchive: %d undecodable event(s) skipped\n", res.Bad)
	}
	return nil
}

func queryOptions(c *cli.Context, e *env) (query.Options, error) {
	now := time.Now()
	opts := query.Options{
		Topics:          c.StringSlice("topic"),
		ChangeTypes:     c.StringSlice("change-type"),
		Entities:        c.StringSlice("entity"),
		RecordIDs:       c.StringSlice("record-id"),
		ChangedFields:   c.StringSlice("changed-field"),
		Where:           c.String("where"),
		Fields:          splitFields(c.StringSlice("fields")),
		Limit:           c.Int("limit"),
		Reverse:         c.Bool("reverse"),
		Format:          query.Format(c.String("format")),
		FlattenCompound: c.Bool("flatten-compound"),
		Width:           c.Int("width"),
		Gaps:            c.Bool("gaps"),
		SkipBad:         c.Bool("skip-bad"),
		OnBad: func(err error) {
			fmt.Fprintf(e.stderr, "sfarchive: skipped: %v\n", err)
		},
	}
	if opts.Limit < 0 {
		return opts, usagef("--limit %d: want 0 (all) or more", opts.Limit)
	}
	for _, id := range opts.RecordIDs {
		if !isRecordID(id) {
			return opts, usagef("--record-id %q: a record ID has 15 or 18 letters and digits, e.g. 001xx000003DGb2AAG", id)
		}
	}
	if opts.Width < 0 {
		return opts, usagef("--width %d: want a number of columns", opts.Width)
	}
	switch opts.Format {
	case query.FormatJSONL, query.FormatJSON, query.FormatCSV, query.FormatTable, query.FormatRaw:
	default:
		return opts, usagef("--format %q: want jsonl, json, csv, table or raw", c.String("format"))
	}
	switch tf := c.String("time-format"); tf {
	case "epoch", "":
		opts.TimeFormat = query.TimeEpochMillis
	case "rfc3339":
		opts.TimeFormat = query.TimeRFC3339
	default:
		return opts, usagef("--time-format %q: want epoch or rfc3339", tf)
	}
	if opts.Format == query.FormatTable && opts.Width == 0 {
		opts.Width = terminalWidth(e.stdout)
	}
	times := []struct {
		flag string
		dst  *time.Time
	}{{"since", &opts.Since}, {"until", &opts.Until}, {"received-since", &opts.ReceivedSince}, {"received-until", &opts.ReceivedUntil}}
	for _, t := range times {
		if v := c.String(t.flag); v != "" {
			parsed, err := query.ParseTimeBound(v, now)
			if err != nil {
				return opts, usageErr(fmt.Errorf("--%s: %w", t.flag, err))
			}
			*t.dst = parsed
		}
	}
	replays := []struct {
		flag string
		dst  *[]byte
	}{{"after-replay", &opts.AfterReplayID}, {"before-replay", &opts.BeforeReplayID}}
	for _, r := range replays {
		if v := c.String(r.flag); v != "" {
			id, err := query.ParseReplayID(v)
			if err != nil {
				return opts, usageErr(fmt.Errorf("--%s: %w", r.flag, err))
			}
			*r.dst = id
		}
	}
	return opts, nil
}
