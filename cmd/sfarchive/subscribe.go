package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/subscriber"
)

const defaultLockTimeout = 3 * time.Second

func subscribeCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		archiveFlag(),
		&cli.StringSliceFlag{Name: "topic", Aliases: []string{"t"}, Usage: "topic to archive, e.g. /data/AccountChangeEvent or /event/Order_Event__e (repeatable)", EnvVars: envVar("topic")},
		&cli.StringFlag{Name: "topics-file", Usage: "read topics from `FILE`, one per line (# starts a comment)", EnvVars: envVar("topics-file")},
		&cli.StringFlag{Name: "endpoint", Usage: "Pub/Sub API `HOST:PORT`", Value: "api.pubsub.salesforce.com:7443", EnvVars: envVar("endpoint")},
		&cli.BoolFlag{Name: "insecure", Usage: "plaintext gRPC (only for a local emulator)", EnvVars: envVar("insecure")},
		&cli.StringFlag{Name: "ca-file", Usage: "also trust the CA certificate(s) in PEM `FILE` (e.g. the emulator's)", EnvVars: envVar("ca-file")},
		&cli.StringFlag{Name: "auth", Usage: "how to authenticate: soap, client-credentials, jwt or token", Value: "token", EnvVars: envVar("auth")},
		&cli.StringFlag{Name: "login-url", Usage: "login `URL`: production, https://test.salesforce.com for sandboxes, or your My Domain URL (client-credentials needs My Domain)", Value: "https://login.salesforce.com", EnvVars: envVar("login-url")},
		&cli.StringFlag{Name: "api-version", Usage: "API `VERSION` of the SOAP login", Value: "62.0", EnvVars: envVar("api-version")},
		&cli.StringFlag{Name: "username", Usage: "user name (soap, jwt)", EnvVars: envVar("username")},
		&cli.StringFlag{Name: "client-id", Usage: "connected app consumer key (client-credentials, jwt)", EnvVars: envVar("client-id")},
		&cli.StringFlag{Name: "jwt-key-file", Usage: "PEM `FILE` with the connected app's RSA private key (jwt)", EnvVars: envVar("jwt-key-file")},
		&cli.StringFlag{Name: "instance-url", Usage: "instance or My Domain `URL` (token)", EnvVars: envVar("instance-url")},
		&cli.StringFlag{Name: "org-id", Usage: "organization `ID` (token)", EnvVars: envVar("org-id")},
		&cli.StringFlag{Name: "from", Usage: "where a topic with no stored position starts: earliest, latest, or a replay ID as hex or base64", Value: "earliest", EnvVars: envVar("from")},
		&cli.IntFlag{Name: "batch", Usage: "events requested per FetchRequest (1-100)", Value: 100, EnvVars: envVar("batch")},
		&cli.IntFlag{Name: "max-uncommitted", Usage: "received but not yet committed events allowed in memory, per topic (at least --batch; 0: the default)", Value: 1000, EnvVars: envVar("max-uncommitted")},
		&cli.StringFlag{Name: "on-invalid-replay", Usage: "when the stored position has expired: earliest (record a gap, restart from the oldest retained event) or fail", Value: "earliest", EnvVars: envVar("on-invalid-replay")},
		&cli.DurationFlag{Name: "watchdog", Usage: "resubscribe when a stream sends nothing (no event, no keepalive) for this long", Value: 300 * time.Second, EnvVars: envVar("watchdog")},
		&cli.DurationFlag{Name: "backoff-max", Usage: "longest wait between reconnect attempts", Value: 2 * time.Minute, EnvVars: envVar("backoff-max")},
		&cli.IntFlag{Name: "max-events", Usage: "stop after archiving this many events (0: no limit)", EnvVars: envVar("max-events")},
		&cli.DurationFlag{Name: "exit-when-idle", Usage: "stop when no event arrived for this long, e.g. for a catch-up run from cron (0: run until stopped)", EnvVars: envVar("exit-when-idle")},
		&cli.StringFlag{Name: "progress", Usage: "live progress line per topic on stderr: auto (on a terminal), always or never", Value: "auto", EnvVars: envVar("progress")},
		lockTimeoutFlag(),
	}
	flags = append(flags, secretFlags("password", "password, with the security token appended (soap)")...)
	flags = append(flags, secretFlags("client-secret", "connected app consumer secret (client-credentials)")...)
	flags = append(flags, secretFlags("access-token", "access token (token)")...)
	flags = append(flags, logFlags()...)
	return withUsageErrors(&cli.Command{
		Name:      "subscribe",
		Usage:     "archive events of one or more topics until stopped",
		ArgsUsage: " ",
		Description: `Subscribes to each topic (one stream per topic) and writes every event raw into the archive,
together with the topic's position, in one transaction. A later run resumes after the stored
position. SIGINT/SIGTERM commits what was received and exits 0.

Authentication (--auth):
  token               --access-token, --instance-url, --org-id (cannot be renewed: the run ends when it expires)
  soap                --username, --password (password + security token), --login-url
  client-credentials  --client-id, --client-secret, --login-url (your My Domain URL)
  jwt                 --client-id, --username, --jwt-key-file, --login-url

Examples:
  sfarchive subscribe --archive events.db --topic /data/AccountChangeEvent \
      --auth soap --username me@example.com --password-file ~/.sf-pass
  SFARCHIVE_ACCESS_TOKEN=00D... sfarchive subscribe --archive events.db \
      --topic /event/Order_Event__e --instance-url https://acme.my.salesforce.com --org-id 00D...`,
		Flags:  flags,
		Action: func(c *cli.Context) error { return runSubscribe(c, e) },
	})
}

func runSubscribe(c *cli.Context, e *env) error {
	if c.Args().Len() > 0 {
		return usagef("unexpected argument %q: topics are given with --topic", c.Args().First())
	}
	path, err := archivePath(c)
	if err != nil {
		return err
	}
	logger, err := newLogger(c, e.stderr)
	if err != nil {
		return err
	}
	topics, err := topicList(c)
	if err != nil {
		return err
	}
	from, err := subscriber.ParseStart(c.String("from"))
	if err != nil {
		return usageErr(fmt.Errorf("--from: %w", err))
	}
	if b := c.Int("batch"); b < 1 || b > 100 {
		return usagef("--batch %d: want 1 to 100 (the server never sends more than 100 outstanding events)", b)
	}
	if p := c.String("on-invalid-replay"); p != "earliest" && p != "fail" {
		return usagef("--on-invalid-replay %q: want earliest or fail", p)
	}
	for _, f := range []string{"max-events", "max-uncommitted"} {
		if c.Int(f) < 0 {
			return usagef("--%s %d: cannot be negative", f, c.Int(f))
		}
	}
	for _, f := range []string{"exit-when-idle", "watchdog", "backoff-max", "lock-timeout"} {
		if c.Duration(f) < 0 {
			return usagef("--%s %s: cannot be negative", f, c.Duration(f))
		}
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return usagef("--archive %s: the directory %s does not exist; create it first", path, dir)
		}
	}
	progressMode := c.String("progress")
	if progressMode != "auto" && progressMode != "always" && progressMode != "never" {
		return usagef("--progress %q: want auto, always or never", progressMode)
	}
	src, err := authSource(c, logger)
	if err != nil {
		return err
	}

	// Log in before the archive file is created or touched: wrong
	// credentials leave no trace.
	if _, err := src.Credentials(c.Context); err != nil {
		if errors.Is(err, auth.ErrLoginRejected) || errors.Is(err, auth.ErrConfig) {
			return err
		}
		return withHint(err, "check --login-url and the network; the login endpoint did not answer")
	}
	_, statErr := os.Stat(path)
	created := os.IsNotExist(statErr)
	arc, err := archive.Open(path, archive.Options{LockTimeout: lockTimeout(c), Logger: logger})
	if err != nil {
		return err
	}
	cfg := subscriber.Config{
		Endpoint:        c.String("endpoint"),
		Insecure:        c.Bool("insecure"),
		CAFile:          c.String("ca-file"),
		Auth:            src,
		Topics:          topics,
		From:            from,
		Batch:           c.Int("batch"),
		MaxUncommitted:  c.Int("max-uncommitted"),
		OnInvalidReplay: c.String("on-invalid-replay"),
		Watchdog:        c.Duration("watchdog"),
		BackoffMax:      c.Duration("backoff-max"),
		MaxEvents:       c.Int("max-events"),
		ExitWhenIdle:    c.Duration("exit-when-idle"),
		Logger:          logger,
	}
	var prog *progressLine
	if progressMode == "always" || (progressMode == "auto" && isTerminal(e.stderr)) {
		prog = newProgressLine(e.stderr, topics)
		cfg.Progress = prog.update
	}
	summary, runErr := subscriber.Run(c.Context, cfg, arc)
	if prog != nil {
		prog.finish()
	}
	if runErr != nil && created {
		removeIfEmpty(arc, path, logger)
	}
	closeErr := arc.Close()
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("close archive %s: %w", path, closeErr)
	}
	logger.Info("subscribe finished", "archive", path, "stored", summary.Stored,
		"duplicates", summary.Duplicates, "commits", summary.Commits, "elapsed", summary.Elapsed.Round(time.Millisecond).String(), "reason", summary.Reason)
	return nil
}

// removeIfEmpty deletes an archive this run created when the run failed
// before archiving anything (an unreachable endpoint, a refused topic), so
// a failed first attempt leaves no file behind.
func removeIfEmpty(arc *archive.Archive, path string, logger *slog.Logger) {
	topics, err := arc.Topics()
	if err != nil || len(topics) > 0 {
		return
	}
	if err := arc.Close(); err != nil {
		return
	}
	if err := os.Remove(path); err != nil {
		logger.Warn("remove the empty archive of a failed first run", "archive", path, "err", err)
	}
}

// topicList merges --topic and --topics-file, keeping order, without repeats.
func topicList(c *cli.Context) ([]string, error) {
	var topics []string
	seen := map[string]bool{}
	add := func(t string) error {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			return nil
		}
		if !strings.HasPrefix(t, "/") {
			return usagef("topic %q: topic names start with /, e.g. /data/AccountChangeEvent or /event/Order_Event__e", t)
		}
		seen[t] = true
		topics = append(topics, t)
		return nil
	}
	for _, t := range c.StringSlice("topic") {
		if err := add(t); err != nil {
			return nil, err
		}
	}
	if f := c.String("topics-file"); f != "" {
		file, err := os.Open(f)
		if err != nil {
			return nil, usagef("--topics-file: %v", err)
		}
		defer file.Close()
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if err := add(line); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read --topics-file %s: %w", f, err)
		}
	}
	if len(topics) == 0 {
		return nil, usagef("no topic: give --topic (repeatable) or --topics-file")
	}
	return topics, nil
}

// checkInstanceURL refuses an --instance-url that cannot be one:
// https://host[:port] (http only for a local emulator), no path.
func checkInstanceURL(raw string) error {
	u, err := url.Parse(raw)
	local := err == nil && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1")
	switch {
	case err != nil || u.Host == "":
		return usagef("--instance-url %q: want https://MYDOMAIN.my.salesforce.com", raw)
	case u.Scheme != "https" && !(u.Scheme == "http" && local):
		return usagef("--instance-url %q: want an https:// URL, e.g. https://MYDOMAIN.my.salesforce.com", raw)
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "":
		return usagef("--instance-url %q: give only scheme and host, without a path", raw)
	}
	return nil
}

// checkOrgID refuses an --org-id that is not a Salesforce org ID: 15 or
// 18 letters and digits starting with 00D.
func checkOrgID(id string) error {
	if !isRecordID(id) || !strings.HasPrefix(id, "00D") {
		return usagef("--org-id %q: an org ID has 15 or 18 letters and digits and starts with 00D (Setup → Company Information)", id)
	}
	return nil
}

// loginHTTPClient is the HTTP client of the login calls: the system roots,
// plus the certificates of --ca-file (the emulator's login endpoints use the
// same certificate as its gRPC endpoint).
func loginHTTPClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{Timeout: 30 * time.Second}, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, usagef("--ca-file: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, usagef("--ca-file %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}

// authSource builds the credentials source that --auth names.
func authSource(c *cli.Context, logger *slog.Logger) (auth.Source, error) {
	httpClient, err := loginHTTPClient(c.String("ca-file"))
	if err != nil {
		return nil, err
	}
	login := auth.Login{
		LoginURL:   c.String("login-url"),
		APIVersion: c.String("api-version"),
		HTTPClient: httpClient,
		Logger:     logger,
	}
	if _, err := auth.NormalizeLoginURL(login.LoginURL); err != nil && c.String("auth") != "token" {
		return nil, usageErr(fmt.Errorf("--login-url: %w", err))
	}
	switch method := c.String("auth"); method {
	case "token":
		token, err := secret(c, "access-token")
		if err != nil {
			return nil, err
		}
		if token == "" {
			return nil, usagef("--auth token needs --access-token (or SFARCHIVE_ACCESS_TOKEN, or --access-token-file)")
		}
		for _, f := range []string{"instance-url", "org-id"} {
			if err := requireFlag(c, f, "with --auth token"); err != nil {
				return nil, err
			}
		}
		if err := checkInstanceURL(c.String("instance-url")); err != nil {
			return nil, err
		}
		if err := checkOrgID(c.String("org-id")); err != nil {
			return nil, err
		}
		return auth.NewStatic(token, c.String("instance-url"), c.String("org-id")), nil
	case "soap":
		password, err := secret(c, "password")
		if err != nil {
			return nil, err
		}
		if err := requireFlag(c, "username", "with --auth soap"); err != nil {
			return nil, err
		}
		if password == "" {
			return nil, usagef("--auth soap needs --password (password + security token; or SFARCHIVE_PASSWORD, or --password-file)")
		}
		return auth.NewSOAP(login, c.String("username"), password), nil
	case "client-credentials":
		clientSecret, err := secret(c, "client-secret")
		if err != nil {
			return nil, err
		}
		if err := requireFlag(c, "client-id", "with --auth client-credentials"); err != nil {
			return nil, err
		}
		if clientSecret == "" {
			return nil, usagef("--auth client-credentials needs --client-secret (or SFARCHIVE_CLIENT_SECRET, or --client-secret-file)")
		}
		return auth.NewClientCredentials(login, c.String("client-id"), clientSecret), nil
	case "jwt":
		for _, f := range []string{"client-id", "username", "jwt-key-file"} {
			if err := requireFlag(c, f, "with --auth jwt"); err != nil {
				return nil, err
			}
		}
		pemBytes, err := os.ReadFile(c.String("jwt-key-file"))
		if err != nil {
			return nil, usagef("--jwt-key-file: %v", err)
		}
		key, err := auth.LoadRSAPrivateKey(pemBytes)
		if err != nil {
			return nil, usagef("--jwt-key-file %s: %v", c.String("jwt-key-file"), err)
		}
		return auth.NewJWT(login, c.String("client-id"), c.String("username"), key), nil
	default:
		return nil, usagef("--auth %q: want soap, client-credentials, jwt or token", method)
	}
}
