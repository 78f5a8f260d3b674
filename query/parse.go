package query

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// ParseReplayID reads a replay ID given on the command line: hex ("000000000104b674", optionally "0x…", the
// form query prints) or base64 of the bytes (standard or URL alphabet, padded or not, as the Salesforce APIs
// and other clients print them). Hex wins when a string is both. A decimal number (a CometD-era replay ID)
// is rejected unless it is also 16 or 20 hex digits (an 8- or 10-byte replay ID), and so is anything shorter
// than 8 bytes ("ff", "zz"): no real replay ID is.
func ParseReplayID(s string) ([]byte, error) {
	b, err := parseReplayBytes(s)
	if err != nil {
		return nil, err
	}
	if len(b) < minReplayIDLen || len(b) > maxReplayIDLen {
		return nil, fmt.Errorf("%w: replay ID %q is %d byte(s); a Pub/Sub replay ID is 8 or 10 bytes (16 or 20 hex digits as query prints them, e.g. 00000000000f42400000)", ErrBadOption, s, len(b))
	}
	return b, nil
}

// Plausible replay ID lengths: 8 bytes before late 2022, 10 since; up to 32 leaves room for a future form.
const minReplayIDLen, maxReplayIDLen = 8, 32

func parseReplayBytes(s string) ([]byte, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return nil, fmt.Errorf("%w: empty replay ID", ErrBadOption)
	}
	h := strings.TrimPrefix(strings.TrimPrefix(in, "0x"), "0X")
	if b, err := hex.DecodeString(h); err == nil && len(b) > 0 {
		if isDecimal(h) && len(h) != 16 && len(h) != 20 {
			return nil, fmt.Errorf("%w: replay ID %q looks like a decimal number; give the replay ID bytes in hex (as query prints them) or base64", ErrBadOption, s)
		}
		return b, nil
	}
	if isDecimal(in) || strings.HasPrefix(in, "-") {
		return nil, fmt.Errorf("%w: replay ID %q is a number; give the replay ID bytes in hex (as query prints them) or base64", ErrBadOption, s)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(in); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: replay ID %q is neither hex nor base64", ErrBadOption, s)
}

func isDecimal(s string) bool {
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

// ParseTimeBound reads a --since/--until value: an RFC 3339 time ("2024-03-01T10:00:00Z"), a date
// ("2024-03-01", midnight UTC), or a duration before now ("36h", "90m", "7d" for days). A duration means this
// long ago, so a negative one ("-5h", which would be in the future) is rejected.
func ParseTimeBound(s string, now time.Time) (time.Time, error) {
	in := strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, in); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", in); err == nil {
		return t, nil
	}
	if rest, neg := strings.CutPrefix(in, "-"); neg && isDuration(rest) {
		return time.Time{}, fmt.Errorf("%w: time %q: a duration means this long ago and cannot be negative (give %q for %s ago)", ErrBadOption, s, rest, rest)
	}
	if days, ok := strings.CutSuffix(in, "d"); ok && isDecimal(days) {
		var n int
		_, _ = fmt.Sscan(days, &n)
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	if d, err := time.ParseDuration(in); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w: time %q: want RFC 3339 (2024-03-01T10:00:00Z), a date (2024-03-01) or a duration (36h, 7d)", ErrBadOption, s)
}

// isDuration reports whether s is a duration ParseTimeBound accepts: a Go duration ("36h", "1h30m") or whole
// days ("7d").
func isDuration(s string) bool {
	if days, ok := strings.CutSuffix(s, "d"); ok && isDecimal(days) {
		return true
	}
	_, err := time.ParseDuration(s)
	return err == nil
}
