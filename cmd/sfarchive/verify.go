package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/query"
)

// maxListedProblems caps the problems printed one per line.
const maxListedProblems = 100

func verifyCommand(e *env) *cli.Command {
	return withUsageErrors(&cli.Command{
		Name:      "verify",
		Usage:     "check an archive: file consistency, envelopes, schemas, positions, and that every event decodes",
		ArgsUsage: " ",
		Description: `Reads the whole archive without changing it and checks: bbolt's own consistency, that every
stored envelope is readable, that every referenced schema is stored, that each topic's stored
position is not behind its last event, and that every payload decodes with its own schema.
Exits 0 when all is well, 1 with the list of problems otherwise.

Example:
  sfarchive verify --archive events.db`,
		Flags: []cli.Flag{archiveFlag(), lockTimeoutFlag()},
		Action: func(c *cli.Context) error {
			arc, err := openReadOnly(c)
			if err != nil {
				return err
			}
			defer arc.Close()
			problems := 0
			say := func(format string, args ...any) {
				problems++
				if problems <= maxListedProblems {
					fmt.Fprintf(e.stdout, "problem: "+format+"\n", args...)
				}
			}
			structural, err := arc.Verify(c.Context)
			if errors.Is(err, archive.ErrCorrupt) {
				say("archive: %v", err) // damage Verify could not get past: still a finding, not a failure to run
				err = nil
			}
			if err != nil {
				return err
			}
			for _, p := range structural {
				where := p.Topic
				if len(p.ReplayID) > 0 {
					where += " replay " + fmtReplay(p.ReplayID)
				}
				if where == "" {
					where = "archive"
				}
				say("%s: %s", where, p.What)
			}
			stats, err := query.VerifyPayloads(c.Context, arc, func(ee *query.EventError) { say("%v", ee) })
			if errors.Is(err, archive.ErrCorrupt) {
				say("archive: %v", err)
				err = nil
			}
			if err != nil {
				return err
			}
			if problems > maxListedProblems {
				fmt.Fprintf(e.stdout, "… and %d more\n", problems-maxListedProblems)
			}
			if problems > 0 {
				return fmt.Errorf("verify %s: %d problem(s) in %d events of %d topics", c.String("archive"), problems, stats.Events, stats.Topics)
			}
			fmt.Fprintf(e.stdout, "ok: %d events in %d topics; every envelope, schema, position and payload checked\n", stats.Events, stats.Topics)
			return nil
		},
	})
}
