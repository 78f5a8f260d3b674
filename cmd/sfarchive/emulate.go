package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/codes"

	"github.com/sfarchive/sfarchive/emulator"
	"github.com/sfarchive/sfarchive/emulator/login"
)

// emulatorInstanceURL is the instance URL the emulator reports and expects
// when no login server gives one.
const emulatorInstanceURL = "https://emulator.my.salesforce.com"

func emulateCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Usage: "gRPC `ADDRESS` to listen on", Value: "127.0.0.1:7011", EnvVars: envVar("emulate-listen")},
		&cli.BoolFlag{Name: "tls", Usage: "serve TLS with a generated self-signed certificate (written to --cert-dir) instead of plaintext", EnvVars: envVar("emulate-tls")},
		&cli.StringFlag{Name: "cert-dir", Usage: "`DIR` for the generated certificate and key (default: a new temporary directory)", EnvVars: envVar("emulate-cert-dir")},
		&cli.StringFlag{Name: "token", Usage: "access `TOKEN` clients must send (default: a random one, printed)", EnvVars: envVar("emulate-token")},
		&cli.DurationFlag{Name: "token-lifetime", Usage: "how long the token stays valid (0: forever)", EnvVars: envVar("emulate-token-lifetime")},
		&cli.StringFlag{Name: "org-id", Usage: "org `ID` the emulator plays (default: the --login-config's org_id, else " + emulator.DefaultOrgID + ")", DefaultText: emulator.DefaultOrgID, Value: emulator.DefaultOrgID, EnvVars: envVar("emulate-org-id")},
		&cli.StringFlag{Name: "instance-url", Usage: "instance `URL` clients must send", Value: emulatorInstanceURL, EnvVars: envVar("emulate-instance-url")},
		&cli.StringFlag{Name: "login-listen", Usage: "`ADDRESS` of the login endpoints (SOAP login, OAuth token, userinfo); empty: none", Value: "127.0.0.1:7012", EnvVars: envVar("emulate-login-listen")},
		&cli.StringFlag{Name: "login-config", Usage: "JSON `FILE` with the users and connected apps that may log in (default: user " + defaultLoginUser + " with password " + defaultLoginPassword + " and security token " + defaultLoginToken + "; app " + defaultClientID + " with secret " + defaultClientSecret + ")", EnvVars: envVar("emulate-login-config")},
		&cli.StringSliceFlag{Name: "generate", Usage: "topic to fill with generated events (repeatable)", Value: cli.NewStringSlice("/data/AccountChangeEvent", "/event/Order_Event__e"), EnvVars: envVar("emulate-generate")},
		&cli.IntFlag{Name: "events", Usage: "events generated up front per --generate topic", Value: 100, EnvVars: envVar("emulate-events")},
		&cli.StringFlag{Name: "change-mix", Usage: "change types of generated change events with their weights, from CREATE, UPDATE, DELETE, UNDELETE, GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE, GAP_OVERFLOW", Value: defaultChangeMix, EnvVars: envVar("emulate-change-mix")},
		&cli.IntFlag{Name: "schema-change-after", Usage: "after `N` up-front events of each change-event topic, add a field to its schema (a new schema ID); later events mix both versions, as a backlog across a schema change does (0: never)", EnvVars: envVar("emulate-schema-change-after")},
		&cli.IntFlag{Name: "event-size", Usage: "make the up-front events about `BYTES` each (padded text fields; 0: natural size, a few hundred bytes)", EnvVars: envVar("emulate-event-size")},
		&cli.Float64Flag{Name: "rate", Usage: "then keep generating this many events per second, spread over the --generate topics (0: none)", EnvVars: envVar("emulate-rate")},
		&cli.BoolFlag{Name: "on-demand", Usage: "then keep generating events as fast as subscribers read them (a batch whenever one waits with credit)", EnvVars: envVar("emulate-on-demand")},
		&cli.Int64Flag{Name: "seed", Usage: "seed of the event generator (same seed, same events)", Value: 1, EnvVars: envVar("emulate-seed")},
		&cli.StringSliceFlag{Name: "sample", Usage: "also serve the recorded event in `FILE` (JSON like shared/pubsub/samples/*.json; repeatable)", EnvVars: envVar("emulate-sample")},
		&cli.DurationFlag{Name: "retention", Usage: "how long events stay available", Value: 72 * time.Hour, EnvVars: envVar("emulate-retention")},
		&cli.DurationFlag{Name: "keepalive", Usage: "empty keepalive response after this long without events while credit is pending", Value: 270 * time.Second, EnvVars: envVar("emulate-keepalive")},
		&cli.DurationFlag{Name: "idle-close", Usage: "close a stream with status OK after this long without credit", Value: 60 * time.Second, EnvVars: envVar("emulate-idle-close")},
		&cli.IntFlag{Name: "end-streams-after", Usage: "fault: end every Subscribe stream after `N` events (UNAVAILABLE, no error-code)", EnvVars: envVar("emulate-end-streams-after")},
		&cli.StringSliceFlag{Name: "fail", Usage: "fault: `RPC:NTH:CODE[:ERROR-CODE]` fails the NTH call of RPC, e.g. Subscribe:1:UNAVAILABLE or GetSchema:2:INTERNAL:sfdc.platform.eventbus.grpc.service.unavailable (repeatable)", EnvVars: envVar("emulate-fail")},
		&cli.BoolFlag{Name: "stall", Usage: "fault: Subscribe streams send nothing at all (no event, no keepalive, no close)", EnvVars: envVar("emulate-stall")},
		&cli.DurationFlag{Name: "latency", Usage: "fault: delay every response by this much", EnvVars: envVar("emulate-latency")},
		&cli.DurationFlag{Name: "expire-tokens-every", Usage: "fault: expire every issued token this often (SIGUSR1 expires them once, at any time)", EnvVars: envVar("emulate-expire-tokens-every")},
		&cli.Float64Flag{Name: "throttle", Usage: "fault: answer RESOURCE_EXHAUSTED beyond this many calls per second (0: off)", EnvVars: envVar("emulate-throttle")},
	}
	flags = append(flags, logFlags()...)
	return withUsageErrors(&cli.Command{
		Name:  "emulate",
		Usage: "run a local Pub/Sub API emulator with generated events, for trying sfarchive and for tests",
		Description: `Serves the Salesforce Pub/Sub API (the same proto, flow control, replay presets, keepalives,
errors and trailers) on a local port, with realistic generated Change Data Capture and platform
events. It prints the endpoint, the credentials and a ready 'sfarchive subscribe' command line.
Faults can be switched on to see how a client copes; sending the process SIGUSR1 expires every
token it issued, at once. Stop it with Ctrl-C.

Examples:
  sfarchive emulate
  sfarchive emulate --tls --events 1000 --rate 5
  sfarchive emulate --sample ../shared/pubsub/samples/AccountChangeEvent-update-2022.json
  sfarchive emulate --end-streams-after 50 --fail Subscribe:3:UNAVAILABLE`,
		Flags:  flags,
		Action: func(c *cli.Context) error { return runEmulate(c, e) },
	})
}

// parseFault reads RPC:NTH:CODE[:ERROR-CODE].
func parseFault(s string) (rpc string, nth int, code codes.Code, errorCode string, err error) {
	parts := strings.SplitN(s, ":", 4)
	if len(parts) < 3 {
		return "", 0, 0, "", usagef("--fail %q: want RPC:NTH:CODE[:ERROR-CODE], e.g. Subscribe:1:UNAVAILABLE", s)
	}
	rpc = parts[0]
	switch rpc {
	case "Subscribe", "GetSchema", "GetTopic", "Publish", "PublishStream", "ManagedSubscribe":
	default:
		return "", 0, 0, "", usagef("--fail %q: unknown RPC %q (Subscribe, GetSchema, GetTopic, Publish, PublishStream, ManagedSubscribe)", s, rpc)
	}
	nth, convErr := strconv.Atoi(parts[1])
	if convErr != nil || nth < 1 {
		return "", 0, 0, "", usagef("--fail %q: NTH must be a whole number from 1", s)
	}
	if err := code.UnmarshalJSON([]byte(strconv.Quote(strings.ToUpper(parts[2])))); err != nil || code == codes.OK {
		return "", 0, 0, "", usagef("--fail %q: unknown gRPC status %q (e.g. UNAVAILABLE, INTERNAL, UNAUTHENTICATED, INVALID_ARGUMENT)", s, parts[2])
	}
	if len(parts) == 4 {
		errorCode = parts[3]
	}
	return rpc, nth, code, errorCode, nil
}

// expireTokensOnDemand expires every token the emulator issued on SIGUSR1,
// and every interval when interval > 0, until ctx ends.
func expireTokensOnDemand(ctx context.Context, servers []interface{ ExpireTokens() }, interval time.Duration, logger *slog.Logger) {
	expire := func() {
		for _, s := range servers {
			s.ExpireTokens()
		}
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
			expire()
			logger.Info("every token expired (SIGUSR1)")
		case <-tick:
			expire()
			logger.Info("every token expired", "every", interval)
		}
	}
}

// recentStart is where the generator's event times begin so that n events
// per topic, a few seconds apart, end about now: `query --since 24h` then
// finds a fresh emulator's events.
func recentStart(n int) time.Time {
	return time.Now().Add(-time.Duration(n) * 10 * time.Second).Truncate(time.Second)
}

// generateUpFront publishes n generated events on topic, padded to about
// size bytes when size > 0.
func generateUpFront(gen *emulator.Generator, topic string, n, size int) error {
	if size <= 0 {
		_, err := gen.PublishN(topic, n)
		return err
	}
	for range n {
		g, err := gen.Large(topic, size)
		if err != nil {
			return err
		}
		if err := gen.Publish(&g); err != nil {
			return err
		}
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "00Demulator!" + hex.EncodeToString(b)
}

func runEmulate(c *cli.Context, e *env) error {
	logger, err := newLogger(c, e.stderr)
	if err != nil {
		return err
	}
	type fault struct {
		rpc       string
		nth       int
		code      codes.Code
		errorCode string
	}
	var faults []fault
	for _, f := range c.StringSlice("fail") {
		rpc, nth, code, ec, err := parseFault(f)
		if err != nil {
			return err
		}
		faults = append(faults, fault{rpc, nth, code, ec})
	}
	if c.Int("events") < 0 || c.Float64("rate") < 0 || c.Int("event-size") < 0 {
		return usagef("--events, --event-size and --rate cannot be negative")
	}

	// The org: --org-id when given, else the login config's org_id, else the default.
	var lcfg login.Config
	if c.String("login-listen") != "" {
		if lcfg, err = loginConfig(c.String("login-config")); err != nil {
			return err
		}
	}
	orgID := c.String("org-id")
	if !c.IsSet("org-id") && lcfg.OrgID != "" {
		orgID = lcfg.OrgID
	}
	srv, err := emulator.New(emulator.Config{
		OrgID:       orgID,
		InstanceURL: c.String("instance-url"),
		Retention:   c.Duration("retention"),
		Keepalive:   c.Duration("keepalive"),
		IdleClose:   c.Duration("idle-close"),
		Logger:      logger,
	})
	if err != nil {
		return err
	}
	token := c.String("token")
	if token == "" {
		token = randomToken()
	}
	srv.AddToken(token, c.Duration("token-lifetime"))

	gen := emulator.NewGenerator(c.Int64("seed"), srv)
	mix, err := parseChangeMix(c.String("change-mix"))
	if err != nil {
		return err
	}
	if err := gen.SetMix(mix); err != nil {
		return usageErr(fmt.Errorf("--change-mix: %w", err))
	}
	topics := c.StringSlice("generate")
	gen.SetClock(recentStart(c.Int("events")))
	for _, t := range topics {
		n, changeAt := c.Int("events"), c.Int("schema-change-after")
		if changeAt > 0 && changeAt < n && strings.HasPrefix(t, "/data/") {
			if err := generateUpFront(gen, t, changeAt, c.Int("event-size")); err != nil {
				return usageErr(fmt.Errorf("--generate %s: %w", t, err))
			}
			if _, err := gen.EvolveSchema(t); err != nil {
				return fmt.Errorf("schema change on %s: %w", t, err)
			}
			n -= changeAt
		}
		if err := generateUpFront(gen, t, n, c.Int("event-size")); err != nil {
			return usageErr(fmt.Errorf("--generate %s: %w", t, err))
		}
	}
	for _, f := range c.StringSlice("sample") {
		if _, err := srv.LoadSample(f); err != nil {
			return usageErr(fmt.Errorf("--sample %s: %w", f, err))
		}
	}
	for _, f := range faults {
		srv.FailCall(f.rpc, f.nth, f.code, f.errorCode, "")
	}
	if n := c.Int("end-streams-after"); n > 0 {
		srv.EndStreamsAfter(n, codes.Unavailable, "")
	}
	srv.Stall(c.Bool("stall"))
	srv.SetLatency(c.Duration("latency"))
	if t := c.Float64("throttle"); t > 0 {
		srv.Throttle(t)
	}

	var addr, caFile string
	var tlsCert tls.Certificate
	if c.Bool("tls") {
		dir := c.String("cert-dir")
		if dir == "" {
			if dir, err = os.MkdirTemp("", "sfarchive-emulator-"); err != nil {
				return fmt.Errorf("make certificate directory: %w", err)
			}
			defer os.RemoveAll(dir) // a certificate of this run only
		}
		certFile, _, cert, err := emulator.GenerateCert(dir)
		if err != nil {
			return err
		}
		caFile, tlsCert = certFile, cert
		addr, err = srv.StartTLS(c.String("listen"), cert)
		if err != nil {
			return withHint(fmt.Errorf("listen on %s: %w", c.String("listen"), err), "choose a free port with --listen 127.0.0.1:PORT")
		}
	} else {
		addr, err = srv.Start(c.String("listen"))
		if err != nil {
			return withHint(fmt.Errorf("listen on %s: %w", c.String("listen"), err), "choose a free port with --listen 127.0.0.1:PORT")
		}
	}
	defer srv.Stop()

	loginURL := ""
	expirers := []interface{ ExpireTokens() }{srv}
	if la := c.String("login-listen"); la != "" {
		lcfg.OrgID = orgID
		lcfg.InstanceURL = c.String("instance-url")
		if lt := c.Duration("token-lifetime"); lt > 0 {
			lcfg.TokenLifetime = login.Duration(lt)
		}
		lcfg.Issuer = srv
		lcfg.Logger = logger
		ls, err := login.New(lcfg)
		if err != nil {
			return usageErr(fmt.Errorf("--login-config: %w", err))
		}
		if caFile != "" {
			loginURL, err = ls.StartTLS(la, login.CertConfig(tlsCert))
		} else {
			loginURL, err = ls.Start(la)
		}
		if err != nil {
			return withHint(fmt.Errorf("login endpoints: listen on %s: %w", la, err), "choose a free port with --login-listen 127.0.0.1:PORT, or --login-listen '' for none")
		}
		defer ls.Stop()
		expirers = append(expirers, ls)
	}

	printEmulatorBanner(e.stdout, addr, caFile, token, orgID, c.String("instance-url"), srv.Topics(), topics)
	if loginURL != "" {
		printLoginBanner(e.stdout, loginURL, addr, caFile, c.String("login-config") == "", topics)
	}

	ctx := c.Context
	rate := c.Float64("rate")
	if c.Bool("on-demand") {
		if rate > 0 {
			return usagef("--rate and --on-demand exclude each other")
		}
		rate = -1 // the generator's "as fast as subscribers read"
	}
	if rate != 0 && len(topics) > 0 {
		go func() {
			if err := gen.Run(ctx, topics, rate, nil); err != nil && ctx.Err() == nil {
				logger.Error("event generator stopped", "err", err)
			}
		}()
	}
	go expireTokensOnDemand(ctx, expirers, c.Duration("expire-tokens-every"), logger)
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "emulator stopped")
	return nil
}

func printEmulatorBanner(w io.Writer, addr, caFile, token, orgID, instanceURL string, all, generated []string) {
	transport := "--insecure"
	mode := "plaintext"
	if caFile != "" {
		transport = "--ca-file " + caFile
		mode = "TLS, certificate " + caFile
	}
	fmt.Fprintf(w, "Pub/Sub API emulator listening on %s (%s)\n", addr, mode)
	fmt.Fprintf(w, "  org ID        %s\n  instance URL  %s\n  access token  %s\n", orgID, instanceURL, token)
	fmt.Fprintf(w, "  topics        %s\n\n", strings.Join(all, ", "))
	var topicFlags []string
	for _, t := range generated {
		topicFlags = append(topicFlags, "--topic "+t)
	}
	fmt.Fprintf(w, "Archive its events with:\n  SFARCHIVE_ACCESS_TOKEN='%s' sfarchive subscribe --archive events.db \\\n    --endpoint %s %s --auth token --instance-url %s --org-id %s \\\n    %s\n",
		token, addr, transport, instanceURL, orgID, strings.Join(topicFlags, " "))
	fmt.Fprintf(w, "Then query them with:\n  sfarchive query --archive events.db --limit 5\n\n")
}

// defaultChangeMix is the change types `sfarchive emulate` generates by
// default: mostly updates, and now and then the GAP events Salesforce sends
// when it cannot produce regular ones.
const defaultChangeMix = "CREATE=25,UPDATE=60,DELETE=6,UNDELETE=2,GAP_UPDATE=4,GAP_OVERFLOW=3"

// parseChangeMix reads TYPE=WEIGHT,… for the generator.
func parseChangeMix(s string) (map[string]int, error) {
	mix := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, weight, ok := strings.Cut(strings.TrimSpace(part), "=")
		w, err := strconv.Atoi(weight)
		if !ok || err != nil || w < 0 {
			return nil, usagef("--change-mix %q: want TYPE=WEIGHT,… e.g. %s", s, defaultChangeMix)
		}
		mix[strings.ToUpper(name)] = w
	}
	return mix, nil
}

// The built-in login of `sfarchive emulate` when no --login-config is given.
const (
	defaultLoginUser     = "archiver@example.com"
	defaultLoginPassword = "emulator"
	defaultLoginToken    = "TOKEN"
	defaultClientID      = "sfarchive-emulator"
	defaultClientSecret  = "emulator-secret"
)

// loginConfig reads --login-config, or gives the built-in user and app.
func loginConfig(path string) (login.Config, error) {
	if path != "" {
		cfg, err := login.LoadConfig(path)
		if err != nil {
			return login.Config{}, usageErr(fmt.Errorf("--login-config: %w", err))
		}
		return cfg, nil
	}
	return login.Config{
		Users: []login.User{{Username: defaultLoginUser, Password: defaultLoginPassword, SecurityToken: defaultLoginToken}},
		Apps:  []login.App{{ClientID: defaultClientID, ClientSecret: defaultClientSecret, RunAs: defaultLoginUser}},
	}, nil
}

func printLoginBanner(w io.Writer, loginURL, addr, caFile string, builtin bool, topics []string) {
	transport := "--insecure"
	if caFile != "" {
		transport = "--ca-file " + caFile
	}
	fmt.Fprintf(w, "Login endpoints at %s (SOAP login, OAuth token and userinfo)\n", loginURL)
	if !builtin {
		fmt.Fprintf(w, "  users and apps from --login-config\n\n")
		return
	}
	fmt.Fprintf(w, "  user %s, password %s, security token %s; app %s, secret %s\n",
		defaultLoginUser, defaultLoginPassword, defaultLoginToken, defaultClientID, defaultClientSecret)
	var topicFlags []string
	for _, t := range topics {
		topicFlags = append(topicFlags, "--topic "+t)
	}
	fmt.Fprintf(w, "Or log in as that user:\n  SFARCHIVE_PASSWORD=%s%s sfarchive subscribe --archive events.db \\\n    --endpoint %s %s --auth soap --login-url %s --username %s \\\n    %s\n\n",
		defaultLoginPassword, defaultLoginToken, addr, transport, loginURL, defaultLoginUser, strings.Join(topicFlags, " "))
}
