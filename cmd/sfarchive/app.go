package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// env is the environment the commands see; tests replace it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// run builds the CLI, runs it with args and returns the process exit code.
// The first SIGINT or SIGTERM cancels ctx (commands drain and exit 0); a
// second one exits at once.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := withSignals(ctx, stderr)
	defer stop()

	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	app := newApp(e)
	err := app.RunContext(ctx, args)
	return report(stderr, err)
}

// withSignals returns a context cancelled by the first SIGINT/SIGTERM. A
// second signal ends the process immediately with status 130.
func withSignals(parent context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "sfarchive: stopping (press Ctrl-C again to exit at once)")
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "sfarchive: second signal: exiting now; the archive stays consistent")
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

func newApp(e *env) *cli.App {
	return &cli.App{
		Name:    "sfarchive",
		Usage:   "archive Salesforce Pub/Sub API events into one file and query them offline",
		Version: version,
		Description: `sfarchive subscribes to Salesforce platform-event and Change Data Capture topics over the
Pub/Sub API and writes every event, byte for byte, into one bbolt file, with each topic's position
stored in the same transaction. After a restart, a crash or an outage it resumes where it stopped:
no gap, no duplicate. The archive is queried offline: every event decoded with the schema it was
written with, CDC bitmaps expanded to field names.

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 archive unavailable (missing, locked,
corrupt), 4 rejected by the server (authentication, permission).

Every flag can also be set with the environment variable shown beside it.`,
		Reader:         e.stdin,
		Writer:         e.stdout,
		ErrWriter:      e.stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // run() maps errors to exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErr(err)
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q; the commands are subscribe, query, status, schemas, verify, emulate and demo", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			subscribeCommand(e),
			queryCommand(e),
			statusCommand(e),
			schemasCommand(e),
			verifyCommand(e),
			emulateCommand(e),
			demoCommand(e),
		},
	}
}

// withUsageErrors marks flag-parsing errors of every command as usage
// errors (exit 2).
func withUsageErrors(c *cli.Command) *cli.Command {
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageErr(err) }
	return c
}

// report prints err (if any) with its hint on one line and returns the exit
// code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		return exitOK
	}
	if errors.Is(err, syscall.EPIPE) {
		return exitOK // the reader went away (`| head`): a quiet end
	}
	code := exitCode(err)
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if h := hintFor(err); h != "" {
		msg += "; try: " + h
	}
	fmt.Fprintf(stderr, "sfarchive: error: %s\n", msg)
	return code
}
