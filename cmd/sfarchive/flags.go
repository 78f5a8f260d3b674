package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// envVar names the SFARCHIVE_ variable of a flag.
func envVar(flag string) []string {
	return []string{"SFARCHIVE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

// archiveFlag is --archive. It is checked by archivePath rather than
// marked Required, so that a missing one is a usage error (exit 2) and a
// subcommand does not inherit the check from its parent.
func archiveFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "archive",
		Aliases: []string{"a"},
		Usage:   "path of the archive `FILE` (one bbolt file; required)",
		EnvVars: envVar("archive"),
	}
}

// archivePath returns --archive, or a usage error when it is missing.
func archivePath(c *cli.Context) (string, error) {
	p := c.String("archive")
	if p == "" {
		return "", usagef("--archive FILE is required (or set SFARCHIVE_ARCHIVE)")
	}
	return p, nil
}

func lockTimeoutFlag() *cli.DurationFlag {
	return &cli.DurationFlag{
		Name:    "lock-timeout",
		Usage:   "how long to wait for an archive locked by another process before giving up (0: do not wait)",
		Value:   defaultLockTimeout,
		EnvVars: envVar("lock-timeout"),
	}
}

// lockTimeout turns --lock-timeout into archive.Options.LockTimeout, where
// zero means the library's default and a negative value "do not wait".
func lockTimeout(c *cli.Context) time.Duration {
	if d := c.Duration("lock-timeout"); d > 0 {
		return d
	}
	return -1
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Usage: "log format: `text` or json", Value: "text", EnvVars: envVar("log-format")},
		&cli.StringFlag{Name: "log-level", Usage: "log level: debug, info, warn or error", Value: "info", EnvVars: envVar("log-level")},
	}
}

// newLogger builds the slog logger the flags ask for, writing to w.
func newLogger(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usagef("--log-format %q: want text or json", c.String("log-format"))
	}
}

// secret returns the value of flag name, or the trimmed content of the
// file named by flag name+"-file". Secrets never have defaults, so --help
// never shows them.
func secret(c *cli.Context, name string) (string, error) {
	v := c.String(name)
	file := c.String(name + "-file")
	if v != "" && file != "" {
		return "", usagef("give --%s or --%s-file, not both", name, name)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("--%s-file: %v", name, err)
		}
		v = strings.TrimSpace(string(b))
		if v == "" {
			return "", usagef("--%s-file %s is empty", name, file)
		}
	}
	return v, nil
}

// secretFlags declares --NAME (from the environment preferably) and
// --NAME-file.
func secretFlags(name, what string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: name, Usage: what + " (prefer the environment variable or --" + name + "-file: a command line is visible to other users)", EnvVars: envVar(name)},
		&cli.StringFlag{Name: name + "-file", Usage: "read the " + what + " from `FILE`", EnvVars: envVar(name + "-file")},
	}
}

func requireFlag(c *cli.Context, name, why string) error {
	if c.String(name) == "" {
		return usagef("--%s is required %s", name, why)
	}
	return nil
}

// isRecordID reports whether id looks like a Salesforce record ID: 15 or 18
// letters and digits.
func isRecordID(id string) bool {
	if len(id) != 15 && len(id) != 18 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
