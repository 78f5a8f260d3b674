package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sfarchive/sfarchive/archive"
)

func statusCommand(e *env) *cli.Command {
	return withUsageErrors(&cli.Command{
		Name:  "status",
		Usage: "show what an archive holds: topics, counts, positions, gaps, schemas, file size",
		Description: `Reads the archive without changing it (safe while nothing else writes; a running subscribe
holds a lock, and status then says so within --lock-timeout).

Examples:
  sfarchive status --archive events.db
  sfarchive status --archive events.db --format json | jq '.topics[].events'`,
		Flags: []cli.Flag{
			archiveFlag(),
			&cli.StringFlag{Name: "format", Usage: "output format: text or json", Value: "text", EnvVars: envVar("status-format")},
			lockTimeoutFlag(),
		},
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if format != "text" && format != "json" {
				return usagef("--format %q: want text or json", format)
			}
			arc, err := openReadOnly(c)
			if err != nil {
				return err
			}
			defer arc.Close()
			st, err := arc.Stats()
			if err != nil {
				return err
			}
			gaps, err := arc.Gaps()
			if err != nil {
				return err
			}
			if format == "json" {
				return writeStatusJSON(e.stdout, st, gaps)
			}
			return writeStatusText(e.stdout, st, gaps)
		},
	})
}

// openReadOnly opens --archive for reading, with the lock timeout.
func openReadOnly(c *cli.Context) (*archive.Archive, error) {
	path, err := archivePath(c)
	if err != nil {
		return nil, err
	}
	return archive.Open(path, archive.Options{ReadOnly: true, LockTimeout: lockTimeout(c)})
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtReplay(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

func writeStatusText(w io.Writer, st archive.Stats, gaps []archive.Gap) error {
	org := st.OrgID
	if org == "" {
		org = "(not bound yet)"
	}
	fmt.Fprintf(w, "archive      %s\nsize         %s (%d bytes)\nformat       %d, created %s\norg          %s %s\nschemas      %d\ngap records  %d (positions the server no longer had; GAP_* change events: query --gaps)\n\n",
		st.Path, humanBytes(st.FileSize), st.FileSize, st.Format, fmtTime(st.CreatedAt), org, st.InstanceURL, st.Schemas, st.Gaps)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tEVENTS\tFIRST REPLAY\tLAST REPLAY\tMARK\tFIRST RECEIVED\tLAST RECEIVED\tDUPLICATES\tCOLLISIONS\tBLANK SCHEMA")
	for _, t := range st.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", t.Topic, t.Events, fmtReplay(t.FirstReplayID), fmtReplay(t.LastReplayID),
			fmtReplay(t.Mark), fmtTime(t.FirstReceived), fmtTime(t.LastReceived), t.Duplicates, t.Collisions, t.BlankSchema)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tSCHEMA ID\tEVENTS\tFIRST RECEIVED\tLAST RECEIVED")
	for _, t := range st.Topics {
		for _, s := range t.Schemas {
			id := s.SchemaID
			if id == "" {
				id = "(blank)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", t.Topic, id, s.Count, fmtTime(s.FirstReceived), fmtTime(s.LastReceived))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(gaps) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nGAPS (positions the server no longer had; events between them may be missing)\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTOPIC\tKIND\tREJECTED POSITION\tREASON")
	for _, g := range gaps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", fmtTime(g.Time), g.Topic, g.Kind, fmtReplay(g.FromReplayID), g.Reason)
	}
	return tw.Flush()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

type statusJSON struct {
	Path        string            `json:"path"`
	FileSize    int64             `json:"file_size"`
	Format      int               `json:"format"`
	CreatedAt   string            `json:"created_at"`
	OrgID       string            `json:"org_id"`
	InstanceURL string            `json:"instance_url"`
	Schemas     int               `json:"schemas"`
	Gaps        int               `json:"gaps"`
	Topics      []topicStatusJSON `json:"topics"`
	GapRecords  []gapJSON         `json:"gap_records"`
}

type gapJSON struct {
	Time         string `json:"time"`
	Topic        string `json:"topic"`
	Kind         string `json:"kind"`
	FromReplayID string `json:"from_replay_id"`
	ToReplayID   string `json:"to_replay_id"`
	Reason       string `json:"reason"`
}

type topicStatusJSON struct {
	Topic         string          `json:"topic"`
	Events        uint64          `json:"events"`
	FirstReplayID string          `json:"first_replay_id"`
	LastReplayID  string          `json:"last_replay_id"`
	Mark          string          `json:"mark"`
	FirstReceived string          `json:"first_received"`
	LastReceived  string          `json:"last_received"`
	Duplicates    uint64          `json:"duplicates"`
	Collisions    uint64          `json:"collisions"`
	OutOfOrder    uint64          `json:"out_of_order"`
	BlankSchema   uint64          `json:"blank_schema"`
	Schemas       []schemaUseJSON `json:"schemas"`
}

type schemaUseJSON struct {
	SchemaID      string `json:"schema_id"`
	Events        uint64 `json:"events"`
	FirstReplayID string `json:"first_replay_id"`
	LastReplayID  string `json:"last_replay_id"`
	FirstReceived string `json:"first_received"`
	LastReceived  string `json:"last_received"`
}

func writeStatusJSON(w io.Writer, st archive.Stats, gaps []archive.Gap) error {
	out := statusJSON{Path: st.Path, FileSize: st.FileSize, Format: st.Format, CreatedAt: fmtTime(st.CreatedAt),
		OrgID: st.OrgID, InstanceURL: st.InstanceURL, Schemas: st.Schemas, Gaps: st.Gaps, Topics: []topicStatusJSON{}}
	for _, t := range st.Topics {
		tj := topicStatusJSON{Topic: t.Topic, Events: t.Events, FirstReplayID: hex.EncodeToString(t.FirstReplayID),
			LastReplayID: hex.EncodeToString(t.LastReplayID), Mark: hex.EncodeToString(t.Mark),
			FirstReceived: fmtTime(t.FirstReceived), LastReceived: fmtTime(t.LastReceived), Duplicates: t.Duplicates,
			Collisions: t.Collisions, OutOfOrder: t.OutOfOrder, BlankSchema: t.BlankSchema, Schemas: []schemaUseJSON{}}
		for _, s := range t.Schemas {
			tj.Schemas = append(tj.Schemas, schemaUseJSON{SchemaID: s.SchemaID, Events: s.Count,
				FirstReplayID: hex.EncodeToString(s.FirstReplayID), LastReplayID: hex.EncodeToString(s.LastReplayID),
				FirstReceived: fmtTime(s.FirstReceived), LastReceived: fmtTime(s.LastReceived)})
		}
		out.Topics = append(out.Topics, tj)
	}
	out.GapRecords = []gapJSON{}
	for _, g := range gaps {
		out.GapRecords = append(out.GapRecords, gapJSON{Time: fmtTime(g.Time), Topic: g.Topic, Kind: g.Kind,
			FromReplayID: hex.EncodeToString(g.FromReplayID), ToReplayID: hex.EncodeToString(g.ToReplayID), Reason: g.Reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
