package subscriber

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
)

func TestParseStart(t *testing.T) {
	id10 := []byte{0, 0, 0, 0, 0, 0x10, 0xdb, 0x4d, 0, 0}
	for _, tc := range []struct {
		in      string
		kind    StartKind
		id      []byte
		errHint string // substring of the error; "" = no error
	}{
		{in: "earliest", kind: StartEarliest},
		{in: " LATEST ", kind: StartLatest},
		{in: "000000000010db4d0000", kind: StartCustom, id: id10},                       // case 1: 10 bytes verbatim
		{in: "000000000010DB4D0000", kind: StartCustom, id: id10},                       // upper-case hex
		{in: "AAAAAAAQ200AAA==", kind: StartCustom, id: id10},                           // base64
		{in: "AAAAAAAQ200AAA", kind: StartCustom, id: id10},                             // raw base64
		{in: "0000000001040000", kind: StartCustom, id: []byte{0, 0, 0, 0, 1, 4, 0, 0}}, // 16 digits: 8-byte hex
		{in: "-1", errHint: `calls it "latest"`},
		{in: "-2", errHint: `calls it "earliest"`},
		{in: "12907414", errHint: "not a Pub/Sub replay ID"},
		{in: "12907414", errHint: "opaque bytes"},
		{in: "-3", errHint: "CometD"},
		{in: "", errHint: "empty"},
		{in: "abc", errHint: "odd number of hex digits"},
		{in: "not a replay id!", errHint: "neither"},
		// Too short to be a replay ID (8 or 10 bytes), or far too long.
		{in: "zzz", errHint: "8 or 10 bytes (16 or 20 hex digits)"}, // base64 of 2 bytes
		{in: "ff", errHint: "8 or 10 bytes (16 or 20 hex digits)"},
		{in: "0xff", errHint: "8 or 10 bytes (16 or 20 hex digits)"},
		{in: "0xff", errHint: "000000000104b674 or 00000000000f42400000"},
		{in: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", errHint: "33 byte(s) as hex"},
		{in: "AQIDBAUGBw", errHint: "7 byte(s) as base64"},
		{in: "0x000000000104b674", kind: StartCustom, id: []byte{0, 0, 0, 0, 1, 4, 0xb6, 0x74}},
		{in: "AQIDBAUGBwg=", kind: StartCustom, id: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{in: strings.Repeat("ab", 32), kind: StartCustom, id: bytes.Repeat([]byte{0xab}, 32)},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseStart(tc.in)
			if tc.errHint != "" {
				if !errors.Is(err, ErrStartPosition) || !strings.Contains(err.Error(), tc.errHint) {
					t.Fatalf("ParseStart(%q) = %v, %v; want ErrStartPosition mentioning %q", tc.in, p, err, tc.errHint)
				}
				return
			}
			if err != nil || p.Kind != tc.kind || !bytes.Equal(p.ReplayID, tc.id) {
				t.Fatalf("ParseStart(%q) = %+v, %v; want kind %d id %x", tc.in, p, err, tc.kind, tc.id)
			}
			if p.Kind == StartCustom && p.String() != fmt.Sprintf("%x", tc.id) {
				t.Fatalf("String() = %s", p.String())
			}
		})
	}
	if s := (StartPosition{}).String(); s != "earliest" {
		t.Fatalf("zero StartPosition is %s, want earliest", s)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Endpoint: "h:1", Auth: auth.NewStatic("t", "https://x.my.salesforce.com", "00D000000000001AAA"), Topics: []string{"/event/A__e"}}
	c, err := ok.withDefaults()
	if err != nil || c.Batch != 100 || c.MaxUncommitted != 1000 || c.OnInvalidReplay != "earliest" || c.Watchdog != 300*time.Second || c.Logger == nil {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for name, mut := range map[string]func(*Config){
		"no endpoint":       func(c *Config) { c.Endpoint = "" },
		"no auth":           func(c *Config) { c.Auth = nil },
		"no topic":          func(c *Config) { c.Topics = nil },
		"relative topic":    func(c *Config) { c.Topics = []string{"event/A__e"} },
		"duplicate topic":   func(c *Config) { c.Topics = []string{"/event/A__e", "/event/A__e"} },
		"batch 101":         func(c *Config) { c.Batch = 101 },
		"batch -1":          func(c *Config) { c.Batch = -1 },
		"uncommitted<batch": func(c *Config) { c.MaxUncommitted = 10; c.Batch = 50 },
		"policy":            func(c *Config) { c.OnInvalidReplay = "latest" },
		"custom no id":      func(c *Config) { c.From = StartPosition{Kind: StartCustom} },
		"negative max":      func(c *Config) { c.MaxEvents = -1 },
	} {
		c := ok
		mut(&c)
		if _, err := c.withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
}

func TestClassify(t *testing.T) {
	re := func(code codes.Code, ec string) (error, *RemoteError) {
		err := status.Error(code, "msg rpcId: 1")
		md := metadata.MD{}
		if ec != "" {
			md.Set("error-code", ec)
		}
		md.Set("rpc-id", "1")
		return err, remoteFailure("Subscribe", "/t", err, md)
	}
	for _, tc := range []struct {
		code codes.Code
		ec   string
		want action
	}{
		{codes.Unauthenticated, ErrorCodePrefix + "service.auth.error", actReauth},
		{codes.Unauthenticated, "", actReauth},
		{codes.PermissionDenied, ErrorCodePrefix + "service.auth.refresh.invalid", actReauth},
		{codes.InvalidArgument, ErrorCodePrefix + "subscription.fetch.replayid.corrupted", actInvalidReplay},
		{codes.InvalidArgument, ErrorCodePrefix + "subscription.fetch.replayid.validation.failed", actInvalidReplay},
		{codes.Unavailable, "", actRetry},
		{codes.Internal, ErrorCodePrefix + "service.unavailable", actRetry},
		{codes.Internal, "", actRetry},
		{codes.ResourceExhausted, ErrorCodePrefix + "service.protection.triggered", actRetry},
		{codes.Unknown, "", actRetry},
		{codes.DeadlineExceeded, "", actRetry},
		{codes.PermissionDenied, ErrorCodePrefix + "subscription.limit.exceeded", actRetry},
		{codes.PermissionDenied, ErrorCodePrefix + "topic.not.found", actStopTopic},
		{codes.PermissionDenied, "", actStopTopic},
		{codes.NotFound, ErrorCodePrefix + "schema.validation.failed", actStopTopic},
		{codes.InvalidArgument, ErrorCodePrefix + "subscription.fetch.topic.mismatch", actStopTopic},
	} {
		err, r := re(tc.code, tc.ec)
		if got := classify(err, r); got != tc.want {
			t.Errorf("classify(%s, %q) = %s, want %s", tc.code, tc.ec, got, tc.want)
		}
	}
	if got := classify(io.EOF, nil); got != actResubscribe {
		t.Errorf("end of stream with OK: %s, want resubscribe", got)
	}
	err, r := re(codes.PermissionDenied, ErrorCodePrefix+"topic.not.found")
	if s := r.Error(); !strings.Contains(s, "PermissionDenied") || !strings.Contains(s, "rpc-id 1") || !strings.Contains(s, "topic.not.found") {
		t.Errorf("RemoteError text %q", s)
	}
	if status.Code(fmt.Errorf("wrapped: %w", r)) != codes.PermissionDenied || !errors.Is(r, err) {
		t.Errorf("RemoteError does not unwrap to the status")
	}
}

func TestBackoffCappedJitteredReset(t *testing.T) {
	b := backoff{min: 10 * time.Millisecond, max: 80 * time.Millisecond}
	var got []time.Duration
	for range 8 {
		got = append(got, b.next())
	}
	caps := []time.Duration{10, 20, 40, 80, 80, 80, 80, 80}
	for i, d := range got {
		c := caps[i] * time.Millisecond
		if d < c/2 || d > c {
			t.Fatalf("attempt %d waited %s, want within [%s, %s]", i, d, c/2, c)
		}
	}
	b.reset()
	if d := b.next(); d > 10*time.Millisecond {
		t.Fatalf("after reset waited %s", d)
	}
	// Jitter: many draws at the cap are not all equal.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[b.next()] = true
	}
	if len(seen) < 2 {
		t.Fatalf("no jitter: %v", seen)
	}
}

func TestMergeByTopic(t *testing.T) {
	ev := func(id byte) archive.Event { return archive.Event{ReplayID: []byte{0, id}, EventID: fmt.Sprint(id)} }
	a, b := &topicState{name: "/a"}, &topicState{name: "/b"}
	group := []handoff{
		{a, archive.TopicBatch{Topic: "/a", Events: []archive.Event{ev(1), ev(2)}, LatestReplayID: []byte{0, 3}, Schemas: map[string]string{"s1": "{}"}}},
		{b, archive.TopicBatch{Topic: "/b", LatestReplayID: []byte{0, 9}}},
		{a, archive.TopicBatch{Topic: "/a", Events: []archive.Event{ev(4)}, Schemas: map[string]string{"s2": "{}"}}},
		{b, archive.TopicBatch{Topic: "/b", Events: []archive.Event{ev(10)}, LatestReplayID: []byte{0, 12}}},
	}
	out := mergeByTopic(group)
	if len(out) != 2 || out[0].Topic != "/a" || out[1].Topic != "/b" {
		t.Fatalf("merged %+v", out)
	}
	if len(out[0].Events) != 3 || out[0].Events[2].EventID != "4" || !bytes.Equal(batchMark(out[0]), []byte{0, 4}) || len(out[0].Schemas) != 2 {
		t.Fatalf("topic a merged to %+v", out[0])
	}
	if len(out[1].Events) != 1 || !bytes.Equal(batchMark(out[1]), []byte{0, 12}) {
		t.Fatalf("topic b merged to %+v", out[1])
	}
	if len(group[0].batch.Events) != 2 || len(group[0].batch.Schemas) != 1 {
		t.Fatalf("merge modified its input")
	}
}
