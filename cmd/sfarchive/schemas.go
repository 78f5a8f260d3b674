package main

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/query"
)

func schemasCommand(e *env) *cli.Command {
	common := func() []cli.Flag { return []cli.Flag{archiveFlag(), lockTimeoutFlag()} }
	return withUsageErrors(&cli.Command{
		Name:  "schemas",
		Usage: "list, show and compare the Avro schemas stored in an archive",
		Description: `Every event is stored with the ID of the schema that wrote it, and every schema is stored
once, exactly as the server returned it. Without a subcommand, 'schemas' lists them per topic.

Examples:
  sfarchive schemas --archive events.db
  sfarchive schemas show --archive events.db vjfSL_rX8hSnqyn0Yla8Zw
  sfarchive schemas show --archive events.db --json vjfSL_rX8hSnqyn0Yla8Zw > account.avsc
  sfarchive schemas diff --archive events.db --topic /data/AccountChangeEvent
  sfarchive schemas diff --archive events.db OLD_ID NEW_ID`,
		Flags:  common(),
		Action: func(c *cli.Context) error { return listSchemas(c, e) },
		Subcommands: []*cli.Command{
			withUsageErrors(&cli.Command{
				Name:      "list",
				Usage:     "schema IDs per topic, with their events and first and last use",
				Flags:     common(),
				Action:    func(c *cli.Context) error { return listSchemas(c, e) },
				ArgsUsage: " ",
			}),
			withUsageErrors(&cli.Command{
				Name:      "show",
				Usage:     "the fields of one schema (--json: the schema JSON as stored)",
				ArgsUsage: "SCHEMA_ID",
				Flags:     append(common(), &cli.BoolFlag{Name: "json", Usage: "print the schema JSON exactly as stored", EnvVars: envVar("schemas-json")}),
				Action:    func(c *cli.Context) error { return showSchema(c, e) },
			}),
			withUsageErrors(&cli.Command{
				Name:      "diff",
				Usage:     "compare two schemas field by field: OLD_ID NEW_ID, or a topic's last two schemas with --topic",
				ArgsUsage: "[OLD_ID NEW_ID]",
				Flags:     append(common(), &cli.StringFlag{Name: "topic", Usage: "compare the two schemas of `TOPIC` that appeared last (by replay ID)", EnvVars: envVar("schemas-topic")}),
				Action:    func(c *cli.Context) error { return diffSchemas(c, e) },
			}),
		},
	})
}

func listSchemas(c *cli.Context, e *env) error {
	if c.Args().Len() > 0 {
		return usagef("unexpected argument %q: did you mean `schemas show %s`?", c.Args().First(), c.Args().First())
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
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tSCHEMA ID\tRECORD\tFIELDS\tEVENTS\tFIRST USED\tLAST USED\tFIRST REPLAY\tLAST REPLAY")
	for _, t := range st.Topics {
		for _, s := range t.Schemas {
			record, fields := describeBrief(arc, s.SchemaID)
			id := s.SchemaID
			if id == "" {
				id = "(blank)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", t.Topic, id, record, fields, s.Count,
				fmtTime(s.FirstReceived), fmtTime(s.LastReceived), fmtReplay(s.FirstReplayID), fmtReplay(s.LastReplayID))
		}
	}
	return tw.Flush()
}

// describeBrief names a schema's record and counts its top-level fields,
// or says why it cannot.
func describeBrief(arc *archive.Archive, id string) (record, fields string) {
	if id == "" {
		return "(undecodable: no schema ID)", "-"
	}
	js, err := arc.Schema(id)
	if err != nil {
		return "(missing from the archive)", "-"
	}
	info, err := query.DescribeSchema(id, js)
	if err != nil {
		return "(invalid schema)", "-"
	}
	top := 0
	for _, f := range info.Fields {
		if !strings.Contains(f.Name, ".") {
			top++
		}
	}
	return info.Name, fmt.Sprint(top)
}

func showSchema(c *cli.Context, e *env) error {
	if c.Args().Len() != 1 {
		return usagef("schemas show takes one SCHEMA_ID (see `sfarchive schemas --archive FILE`)")
	}
	id := c.Args().First()
	arc, err := openReadOnly(c)
	if err != nil {
		return err
	}
	defer arc.Close()
	js, err := arc.Schema(id)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		_, err := fmt.Fprintln(e.stdout, js)
		return err
	}
	info, err := query.DescribeSchema(id, js)
	if err != nil {
		return err
	}
	kind := "platform event"
	if info.ChangeEvent {
		kind = "change event"
	}
	fmt.Fprintf(e.stdout, "schema %s: %s (%s)\n", id, info.Name, kind)
	return writeFields(e.stdout, info.Fields)
}

func writeFields(w io.Writer, fields []query.SchemaField) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BIT\tFIELD\tTYPE\tDOC")
	for _, f := range fields {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", f.Index, f.Name, f.Type, f.Doc)
	}
	return tw.Flush()
}

func diffSchemas(c *cli.Context, e *env) error {
	arc, err := openReadOnly(c)
	if err != nil {
		return err
	}
	defer arc.Close()
	var oldID, newID string
	switch {
	case c.String("topic") != "" && c.Args().Len() == 0:
		oldID, newID, err = lastTwoSchemas(arc, c.String("topic"))
		if err != nil {
			return err
		}
	case c.String("topic") == "" && c.Args().Len() == 2:
		oldID, newID = c.Args().Get(0), c.Args().Get(1)
	default:
		return usagef("schemas diff takes OLD_ID NEW_ID, or --topic TOPIC alone")
	}
	oldJSON, err := arc.Schema(oldID)
	if err != nil {
		return err
	}
	newJSON, err := arc.Schema(newID)
	if err != nil {
		return err
	}
	changes, err := query.DiffSchemas(oldJSON, newJSON)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "schema %s → %s: %d difference(s) (+ added, - removed, ~ changed)\n", oldID, newID, len(changes))
	for _, ch := range changes {
		fmt.Fprintf(e.stdout, "  %s\n", ch)
	}
	return nil
}

// lastTwoSchemas picks a topic's two schemas that were first used last.
func lastTwoSchemas(arc *archive.Archive, topic string) (string, string, error) {
	st, err := arc.Stats()
	if err != nil {
		return "", "", err
	}
	for _, t := range st.Topics {
		if t.Topic != topic {
			continue
		}
		var uses []archive.SchemaUse
		for _, s := range t.Schemas {
			if s.SchemaID != "" {
				uses = append(uses, s)
			}
		}
		if len(uses) < 2 {
			return "", "", withHint(fmt.Errorf("topic %s has %d schema(s): nothing to compare", topic, len(uses)),
				"`sfarchive schemas --archive FILE` lists each topic's schemas; `schemas diff OLD_ID NEW_ID` compares any two")
		}
		// First use in delivery (replay ID) order: schemas that first appear
		// in one commit share a receive time.
		sort.Slice(uses, func(i, j int) bool { return bytes.Compare(uses[i].FirstReplayID, uses[j].FirstReplayID) < 0 })
		return uses[len(uses)-2].SchemaID, uses[len(uses)-1].SchemaID, nil
	}
	return "", "", fmt.Errorf("topic %s: %w", topic, archive.ErrTopicNotFound)
}
