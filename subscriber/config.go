package subscriber

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
)

// Store is what the subscriber needs from the archive; *archive.Archive
// satisfies it.
type Store interface {
	HighWaterMark(topic string) ([]byte, error)
	HasSchema(id string) (bool, error)
	Append(batches []archive.TopicBatch) (archive.AppendStats, error)
	AddGap(g archive.Gap) error
	Gaps() ([]archive.Gap, error)
	BindOrg(orgID, instanceURL string) error
}

// *archive.Archive is the Store used in production.
var _ Store = (*archive.Archive)(nil)

// Invalid-replay policies for Config.OnInvalidReplay.
const (
	OnInvalidReplayEarliest = "earliest" // write a gap record, resubscribe from EARLIEST
	OnInvalidReplayFail     = "fail"     // stop the run and explain the rejected position
)

// Defaults applied to zero Config fields.
const (
	DefaultBatch          = 100
	MaxBatch              = 100 // the server never has more than 100 events outstanding
	DefaultMaxUncommitted = 1000
	DefaultWatchdog       = 300 * time.Second
	DefaultBackoffMin     = 500 * time.Millisecond
	DefaultBackoffMax     = time.Minute
	DefaultDialTimeout    = 10 * time.Second
	DefaultKeepaliveTime  = 5 * time.Minute
	DefaultProgressEvery  = time.Second
)

// Config configures Run. Zero values take the defaults above.
type Config struct {
	Endpoint string      // host:port, e.g. api.pubsub.salesforce.com:7443
	Insecure bool        // plaintext gRPC (the emulator); otherwise TLS
	CAFile   string      // extra CA certificate (PEM) trusted beside the system roots
	Auth     auth.Source // credentials; Refresh is called when the server rejects a token
	Topics   []string    // one stream each, e.g. /data/AccountChangeEvent
	From     StartPosition

	Batch           int           // num_requested per request, 1..100 (default 100)
	MaxUncommitted  int           // received-but-uncommitted events per topic (default 1000, at least Batch)
	OnInvalidReplay string        // "earliest" (default) or "fail"
	Watchdog        time.Duration // no response for this long → resubscribe (default 300s)
	BackoffMin      time.Duration // first retry delay (default 500ms)
	BackoffMax      time.Duration // retry delay cap (default 1m)
	DialTimeout     time.Duration // bound on the start-up check of each topic (default 10s)
	KeepaliveTime   time.Duration // HTTP/2 ping after this long without traffic (default 5m)

	// MaxEvents stops the run once this many events were archived (0 = no
	// limit); a run archives exactly this many when that many arrive. Events
	// received beyond the limit are not committed and the marks stay before
	// them, so the next run receives them again.
	MaxEvents int
	// ExitWhenIdle stops the run when no event arrived on any topic for this
	// long while every topic had an open stream (0 = run until ctx is done);
	// time spent reconnecting does not count. Keepalives do not count as
	// events.
	ExitWhenIdle time.Duration

	Logger        *slog.Logger        // nil → discard
	Progress      func(TopicProgress) // called every ProgressEvery per topic and once at the end; nil → none
	ProgressEvery time.Duration       // default 1s

	// creditHook, for tests, sees the outstanding credit after every request
	// sent and the server's pending_num_requested of every response.
	creditHook func(topic string, outstanding, serverPending int32)
}

func (c Config) withDefaults() (Config, error) {
	if c.Endpoint == "" {
		return c, fmt.Errorf("%w: no endpoint (host:port) given", ErrConfig)
	}
	if c.Auth == nil {
		return c, fmt.Errorf("%w: no credentials source given", ErrConfig)
	}
	if len(c.Topics) == 0 {
		return c, fmt.Errorf("%w: no topic given", ErrConfig)
	}
	seen := make(map[string]bool, len(c.Topics))
	for _, t := range c.Topics {
		if !strings.HasPrefix(t, "/") {
			return c, fmt.Errorf("%w: topic %q must start with / (e.g. /data/AccountChangeEvent or /event/Order_Event__e)", ErrConfig, t)
		}
		if seen[t] {
			return c, fmt.Errorf("%w: topic %s given twice", ErrConfig, t)
		}
		seen[t] = true
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Batch < 1 || c.Batch > MaxBatch {
		return c, fmt.Errorf("%w: batch %d out of range 1..%d", ErrConfig, c.Batch, MaxBatch)
	}
	if c.MaxUncommitted == 0 {
		c.MaxUncommitted = DefaultMaxUncommitted
	}
	if c.MaxUncommitted < c.Batch {
		return c, fmt.Errorf("%w: max uncommitted %d is below the batch %d", ErrConfig, c.MaxUncommitted, c.Batch)
	}
	switch c.OnInvalidReplay {
	case "":
		c.OnInvalidReplay = OnInvalidReplayEarliest
	case OnInvalidReplayEarliest, OnInvalidReplayFail:
	default:
		return c, fmt.Errorf("%w: on-invalid-replay %q: want %q or %q", ErrConfig, c.OnInvalidReplay, OnInvalidReplayEarliest, OnInvalidReplayFail)
	}
	if c.From.Kind == StartCustom && len(c.From.ReplayID) == 0 {
		return c, fmt.Errorf("%w: custom start position without a replay ID", ErrConfig)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Watchdog, DefaultWatchdog)
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.KeepaliveTime, DefaultKeepaliveTime)
	def(&c.ProgressEvery, DefaultProgressEvery)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.MaxEvents < 0 || c.ExitWhenIdle < 0 {
		return c, fmt.Errorf("%w: max events and exit-when-idle must not be negative", ErrConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// StartKind says where a topic without a stored mark starts.
type StartKind int

// Start kinds. The zero value is StartEarliest: an empty archive captures
// everything the server still retains.
const (
	StartEarliest StartKind = iota // the oldest retained event
	StartLatest                    // only events published after subscribing
	StartCustom                    // after the given replay ID
)

// StartPosition is the start of a topic that has no stored mark.
type StartPosition struct {
	Kind     StartKind
	ReplayID []byte // StartCustom only: the replay ID bytes, verbatim
}

// String renders the position as ParseStart accepts it.
func (p StartPosition) String() string {
	switch p.Kind {
	case StartLatest:
		return "latest"
	case StartCustom:
		return hex.EncodeToString(p.ReplayID)
	default:
		return "earliest"
	}
}

// Replay ID sizes ParseStart accepts. Pub/Sub API replay IDs are 8 bytes, or
// 10 since 2022; a little room is left for a future format.
const (
	minReplayIDBytes = 8
	maxReplayIDBytes = 32
)

// replayIDForm explains what a replay ID looks like, for error messages.
const replayIDForm = "a Pub/Sub replay ID is 8 or 10 bytes (16 or 20 hex digits), e.g. 000000000104b674 or 00000000000f42400000, or those bytes in base64"

// ParseStart parses "earliest", "latest", or a replay ID given as hex (an even
// number of hex digits, optionally after 0x) or base64 (standard or URL
// alphabet, padded or not) of 8 to 32 bytes. CometD habits are refused with
// an explanation: -1 is "latest", -2 is "earliest", and a decimal number is
// not a Pub/Sub replay ID. A string of only decimal digits is read as hex
// when it has 16 or 20 digits (an 8- or 10-byte replay ID) and refused
// otherwise. A string of only hex digits is always read as hex.
func ParseStart(s string) (StartPosition, error) {
	v := strings.TrimSpace(s)
	switch strings.ToLower(v) {
	case "earliest":
		return StartPosition{Kind: StartEarliest}, nil
	case "latest":
		return StartPosition{Kind: StartLatest}, nil
	case "":
		return StartPosition{}, fmt.Errorf("%w: empty; use earliest, latest, or a replay ID in hex or base64", ErrStartPosition)
	case "-1":
		return StartPosition{}, fmt.Errorf("%w: %q is the CometD replay ID for new events; the Pub/Sub API calls it \"latest\"", ErrStartPosition, v)
	case "-2":
		return StartPosition{}, fmt.Errorf("%w: %q is the CometD replay ID for all retained events; the Pub/Sub API calls it \"earliest\"", ErrStartPosition, v)
	}
	if isDecimal(v) && (v[0] == '-' || v[0] == '+' || len(v) != 16 && len(v) != 20) {
		return StartPosition{}, fmt.Errorf("%w: %q looks like a CometD replay ID, and a decimal number is not a Pub/Sub replay ID: Pub/Sub API replay IDs are opaque bytes, given as hex (e.g. 000000000010db4d0000) or base64; for the CometD values use latest (-1) or earliest (-2)", ErrStartPosition, v)
	}
	digits := v
	if len(v) > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') && isHex(v[2:]) {
		digits = v[2:]
	}
	if isHex(digits) {
		if len(digits)%2 != 0 {
			return StartPosition{}, fmt.Errorf("%w: %q has an odd number of hex digits (%d); %s", ErrStartPosition, v, len(digits), replayIDForm)
		}
		b, err := hex.DecodeString(digits)
		if err != nil {
			return StartPosition{}, fmt.Errorf("%w: %q: %w", ErrStartPosition, v, err)
		}
		return customStart(v, "hex", b)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil && len(b) > 0 {
			return customStart(v, "base64", b)
		}
	}
	return StartPosition{}, fmt.Errorf("%w: %q is neither earliest, latest, hex nor base64 of a replay ID", ErrStartPosition, v)
}

// customStart checks that b, decoded from v, is plausibly a replay ID.
func customStart(v, form string, b []byte) (StartPosition, error) {
	if len(b) < minReplayIDBytes || len(b) > maxReplayIDBytes {
		return StartPosition{}, fmt.Errorf("%w: %q is %d byte(s) as %s, not a replay ID: %s", ErrStartPosition, v, len(b), form, replayIDForm)
	}
	return StartPosition{Kind: StartCustom, ReplayID: b}, nil
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}
