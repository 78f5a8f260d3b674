package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/emulator"
	"github.com/sfarchive/sfarchive/query"
	"github.com/sfarchive/sfarchive/subscriber"
)

// demoTopics are the topics the demo fills and archives.
var demoTopics = []string{"/data/AccountChangeEvent", "/event/Order_Event__e"}

func demoCommand(e *env) *cli.Command {
	return withUsageErrors(&cli.Command{
		Name:      "demo",
		Usage:     "see sfarchive work end to end on a local emulator: generate events, archive them, resume, query",
		ArgsUsage: " ",
		Description: `Starts a Pub/Sub API emulator in this process with realistic generated events (Account
change events with CDC bitmaps, Order platform events), archives them with the same code as
'subscribe', publishes more and resumes from the stored position (no gap, no duplicate),
then queries the archive and prints a summary and the first events. Finally it prints the
commands that do each step by hand. Nothing leaves this machine.

Example:
  sfarchive demo --events 2000 --archive demo.db`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "events", Aliases: []string{"n"}, Usage: "events to generate and archive in the first run", Value: 500, EnvVars: envVar("demo-events")},
			&cli.StringFlag{Name: "archive", Usage: "archive `FILE` to write (default: demo.db in a new temporary directory; an existing file is refused)", EnvVars: envVar("demo-archive")},
			&cli.Int64Flag{Name: "seed", Usage: "seed of the event generator", Value: 1, EnvVars: envVar("demo-seed")},
			&cli.BoolFlag{Name: "verbose", Usage: "show the subscriber's log", EnvVars: envVar("demo-verbose")},
		},
		Action: func(c *cli.Context) error { return runDemo(c, e) },
	})
}

func runDemo(c *cli.Context, e *env) error {
	n := c.Int("events")
	if n < 2 || n > 1_000_000 {
		return usagef("--events %d: want 2 to 1000000", n)
	}
	path := c.String("archive")
	if path == "" {
		dir, err := os.MkdirTemp("", "sfarchive-demo-")
		if err != nil {
			return fmt.Errorf("make demo directory: %w", err)
		}
		path = filepath.Join(dir, "demo.db")
	} else if _, err := os.Stat(path); err == nil {
		return usagef("--archive %s exists already; the demo writes a new archive (choose another path)", path)
	} else if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return usagef("--archive %s: the directory %s does not exist; create it first", path, filepath.Dir(path))
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if c.Bool("verbose") {
		logger = slog.New(slog.NewTextHandler(e.stderr, nil))
	}
	out := e.stdout

	// 1. The emulator, with generated events.
	srv, err := emulator.New(emulator.Config{InstanceURL: emulatorInstanceURL, Logger: logger})
	if err != nil {
		return err
	}
	const token = "00Ddemo!token"
	srv.AddToken(token, 0)
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the emulator: %w", err)
	}
	defer srv.Stop()
	gen := emulator.NewGenerator(c.Int64("seed"), srv)
	mix, err := parseChangeMix(defaultChangeMix) // the emulator's realistic mix, GAP events included
	if err != nil {
		return err
	}
	if err := gen.SetMix(mix); err != nil {
		return err
	}
	gen.SetClock(recentStart(n / 2))
	perTopic := []int{n / 2, n - n/2}
	for i, t := range demoTopics {
		if _, err := gen.PublishN(t, perTopic[i]); err != nil {
			return fmt.Errorf("generate events for %s: %w", t, err)
		}
	}
	fmt.Fprintf(out, "1. Emulator on %s holds %d generated events: %d on %s, %d on %s.\n",
		addr, n, perTopic[0], demoTopics[0], perTopic[1], demoTopics[1])

	arc, err := archive.Open(path, archive.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer arc.Close()
	cfg := subscriber.Config{
		Endpoint:     addr,
		Insecure:     true,
		Auth:         auth.NewStatic(token, emulatorInstanceURL, srv.OrgID()),
		Topics:       demoTopics,
		MaxEvents:    n,
		ExitWhenIdle: 5 * time.Second,
		Logger:       logger,
	}

	// 2. Archive them.
	sum, err := subscriber.Run(c.Context, cfg, arc)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	fmt.Fprintf(out, "2. Archived %d events into %s in %s (%d transactions).\n",
		sum.Stored, path, sum.Elapsed.Round(time.Millisecond), sum.Commits)
	if c.Context.Err() != nil {
		return nil
	}

	// 3. More events while "down", then resume from the stored position.
	more := max(n/10, 1)
	if _, err := gen.PublishN(demoTopics[0], more); err != nil {
		return err
	}
	cfg.MaxEvents = more
	sum, err = subscriber.Run(c.Context, cfg, arc)
	if err != nil {
		return fmt.Errorf("subscribe again: %w", err)
	}
	fmt.Fprintf(out, "3. %d more events were published while sfarchive was stopped; the next run resumed after the\n"+
		"   stored position (replay preset CUSTOM) and archived exactly %d new events, %d duplicates.\n",
		more, sum.Stored, sum.Duplicates)

	// 4. Query.
	st, err := arc.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "4. The archive (%s):\n", humanBytes(st.FileSize))
	for _, t := range st.Topics {
		fmt.Fprintf(out, "     %-26s %5d events, %d schema(s), position %s\n", t.Topic, t.Events, len(t.Schemas), fmtReplay(t.Mark))
	}
	types, err := changeTypeCounts(c, arc)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   Change types on %s: %s\n", demoTopics[0], types)
	fmt.Fprintf(out, "\n   First UPDATE of an Account (decoded; changedFields expanded to names):\n")
	if _, err := query.Run(c.Context, arc, query.Options{Topics: demoTopics[:1], ChangeTypes: []string{"UPDATE"}, Limit: 1}, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n   First Order events, as a table:\n")
	if _, err := query.Run(c.Context, arc, query.Options{Topics: demoTopics[1:], Limit: 3, Format: query.FormatTable,
		Fields: []string{"replay_id", "CreatedDate", "Order_Number__c", "City__c", "Amount__c"}, TimeFormat: query.TimeRFC3339, Width: 120}, out); err != nil {
		return err
	}

	fmt.Fprintf(out, `
Try it yourself on this archive:
  sfarchive status  --archive %[1]s
  sfarchive query   --archive %[1]s --topic /data/AccountChangeEvent --changed-field Phone --limit 3
  sfarchive query   --archive %[1]s --where 'changeType == "DELETE"' --format table
  sfarchive query   --archive %[1]s --gaps
  sfarchive verify  --archive %[1]s

Or do each step by hand, in two terminals:
  sfarchive emulate --listen 127.0.0.1:7011 --token demo-token --events 250
  SFARCHIVE_ACCESS_TOKEN=demo-token sfarchive subscribe --archive events.db \
      --endpoint 127.0.0.1:7011 --insecure --auth token --instance-url %[2]s --org-id %[3]s \
      --topic /data/AccountChangeEvent --topic /event/Order_Event__e --exit-when-idle 3s
  sfarchive query --archive events.db --limit 5
`, path, emulatorInstanceURL, srv.OrgID())
	return nil
}

// changeTypeCounts counts the demo's Account events by change type, through
// a query projecting that one field.
func changeTypeCounts(c *cli.Context, arc *archive.Archive) (string, error) {
	var buf bytes.Buffer
	if _, err := query.Run(c.Context, arc, query.Options{Topics: demoTopics[:1], Fields: []string{"changeType"}}, &buf); err != nil {
		return "", err
	}
	counts := map[string]int{}
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var rec struct {
			Event map[string]any `json:"event"`
		}
		if err := dec.Decode(&rec); err != nil {
			return "", fmt.Errorf("read query output: %w", err)
		}
		counts[fmt.Sprint(findKey(rec.Event, "changeType"))]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return strings.Join(parts, ", "), nil
}

// findKey looks for key in a decoded record, one level of nesting deep.
func findKey(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for _, v := range m {
		if sub, ok := v.(map[string]any); ok {
			if x, ok := sub[key]; ok {
				return x
			}
		}
	}
	return nil
}
