package interop

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/emulator"
)

const (
	// orgID is the emulator's org; the Node client sends it as tenantid (it requires 15 or 18 characters).
	orgID = emulator.DefaultOrgID
	// instanceURL is what the emulator requires in the instanceurl header; the Node client requires https://.
	instanceURL = "https://interop-dev-ed.my.salesforce.com"
	// accessToken has the shape of a real session ID (org ID, '!', opaque part).
	accessToken = orgID + "!AQ0AQInterop.3rdPartyClient.Token"

	accountTopic = "/data/AccountChangeEvent"
	orderTopic   = "/event/Order_Event__e"
	// orderSchemaID is the real schema ID of Order_Event__e, which the emulator registers verbatim.
	orderSchemaID = "_CADE3qaegX3ECEW0rlbYA"

	// generatedEvents is how many change events the Node client must receive (the brief asks for >= 300; 320
	// makes the client ask for credit four times, the last time past the end of the backlog).
	generatedEvents = 320
	generatorSeed   = 20261203

	// nodeTimeout is the Node script's own hard limit; the Go side allows a little more.
	nodeTimeout = 90 * time.Second
)

// tlsEmulator is an emulator serving TLS on loopback with a freshly generated self-signed certificate.
type tlsEmulator struct {
	srv      *emulator.Server
	addr     string // 127.0.0.1:port
	certFile string // PEM of the self-signed certificate
}

// startTLSEmulator starts an emulator with TLS and accessToken registered. Stop runs at cleanup, before the
// goroutine leak check registered by the caller earlier.
func startTLSEmulator(t *testing.T) tlsEmulator {
	t.Helper()
	return startTLSEmulatorWith(t, emulator.Config{InstanceURL: instanceURL})
}

// startTLSEmulatorWith is startTLSEmulator with a given configuration.
func startTLSEmulatorWith(t *testing.T, cfg emulator.Config) tlsEmulator {
	t.Helper()
	srv, err := emulator.New(cfg)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.AddToken(accessToken, 0)
	certFile, _, cert, err := emulator.GenerateCert(t.TempDir())
	if err != nil {
		t.Fatalf("emulator.GenerateCert: %v", err)
	}
	addr, err := srv.StartTLS("127.0.0.1:0", cert)
	if err != nil {
		t.Fatalf("emulator.StartTLS: %v", err)
	}
	return tlsEmulator{srv: srv, addr: addr, certFile: certFile}
}

// clientEnv is the SFA_* environment shared by every client.mjs run against e.
func (e tlsEmulator) clientEnv(topic string) map[string]string {
	return map[string]string{
		"SFA_ENDPOINT":     e.addr,
		"SFA_ACCESS_TOKEN": accessToken,
		"SFA_INSTANCE_URL": instanceURL,
		"SFA_ORG_ID":       orgID,
		"SFA_TOPIC":        topic,
		"SFA_TIMEOUT_MS":   strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
	}
}

// nodeEvent is one line client.mjs prints in subscribe mode: the client's parsed event.
type nodeEvent struct {
	Seq      int             `json:"seq"`
	ReplayID string          `json:"replayId"` // Number(first 8 bytes, big-endian), printed with String()
	ID       string          `json:"id"`
	SchemaID string          `json:"schemaId"`
	Payload  json.RawMessage `json:"payload"` // the decoded record, unions unwrapped by the client
}

// nodeHeader is the ChangeEventHeader of a nodeEvent's payload.
type nodeHeader struct {
	EntityName    string          `json:"entityName"`
	RecordIDs     []string        `json:"recordIds"`
	ChangeType    string          `json:"changeType"`
	CommitNumber  json.RawMessage `json:"commitNumber"` // a BigInt beyond 2^53: printed as a string
	ChangedFields []string        `json:"changedFields"`
	NulledFields  []string        `json:"nulledFields"`
	DiffFields    []string        `json:"diffFields"`
}

// TestNodeClientReceivesGeneratedChangeEvents: the third-party Node client, over TLS with
// rejectUnauthorizedSsl: false and user-supplied auth, subscribes to /data/AccountChangeEvent from EARLIEST
// and receives every generated event, with the replay ID, event ID and schema ID the emulator stored, and the
// bitmap fields it expands equal to the generator's ground truth.
func TestNodeClientReceivesGeneratedChangeEvents(t *testing.T) {
	checkGoroutineLeaks(t)
	nc := requireNodeClient(t)
	emu := startTLSEmulator(t)

	gen := emulator.NewGenerator(generatorSeed, emu.srv)
	truth, err := gen.PublishN(accountTopic, generatedEvents)
	if err != nil {
		t.Fatalf("generate %d events on %s: %v", generatedEvents, accountTopic, err)
	}
	stored := emu.srv.Events(accountTopic)
	if len(stored) != generatedEvents {
		t.Fatalf("emulator holds %d events on %s, want %d", len(stored), accountTopic, generatedEvents)
	}
	byID := make(map[string]int, len(truth))
	for i, g := range truth {
		if !slices.Equal(g.ReplayID, stored[i].ReplayID) || g.Event.ID != stored[i].Event.ID {
			t.Fatalf("generated event %d (id %s, replay %x) is not the emulator's event %d (id %s, replay %x)",
				i, g.Event.ID, g.ReplayID, i, stored[i].Event.ID, stored[i].ReplayID)
		}
		byID[g.Event.ID] = i
	}
	if len(byID) != len(truth) {
		t.Fatalf("generator produced duplicate event IDs: %d distinct of %d", len(byID), len(truth))
	}

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout+30*time.Second)
	defer cancel()
	env := emu.clientEnv(accountTopic)
	env["SFA_COUNT"] = strconv.Itoa(generatedEvents)
	// A grace period after the last event catches surplus deliveries (the client asks for more credit).
	env["SFA_GRACE_MS"] = "500"
	got := jsonLines[nodeEvent](t, nc.run(t, ctx, "subscribe", env).stdout)

	if len(got) != generatedEvents {
		t.Errorf("the Node client received %d events, want %d", len(got), generatedEvents)
	}
	seen := make(map[string]bool, len(got))
	var prevCounter uint64
	outOfOrder := 0
	for _, ev := range got {
		i, ok := byID[ev.ID]
		if !ok {
			t.Errorf("event #%d: id %q was never generated", ev.Seq, ev.ID)
			continue
		}
		if seen[ev.ID] {
			t.Errorf("event #%d: id %s delivered twice", ev.Seq, ev.ID)
			continue
		}
		seen[ev.ID] = true
		want := truth[i]
		label := fmt.Sprintf("event #%d (id %s, generated #%d, replay %s)", ev.Seq, ev.ID, i, hex.EncodeToString(want.ReplayID))
		counter := checkReplayID(t, label, ev.ReplayID, want.ReplayID)
		if counter < prevCounter {
			outOfOrder++
		}
		prevCounter = counter
		if ev.SchemaID != want.Event.SchemaID || ev.SchemaID != want.Truth.SchemaID {
			t.Errorf("%s: schemaId %q, emulator sent %q (written with %q)", label, ev.SchemaID, want.Event.SchemaID, want.Truth.SchemaID)
		}
		checkHeader(t, label, ev, want.Truth)
		checkValues(t, label, ev.Payload, want.Truth.Values)
	}
	for _, g := range truth {
		if !seen[g.Event.ID] {
			t.Errorf("generated event %s (replay %x, %s) never reached the Node client", g.Event.ID, g.ReplayID, g.Truth.ChangeType)
		}
	}
	if outOfOrder > 0 {
		// The client handles each FetchResponse in its own async 'data' handler (client.js
		// #injectEventHandlingLogic), so two responses decoded in one tick can interleave at its `await`. The
		// emulator's delivery order is checked by its own conformance tests; here it is only reported.
		t.Logf("the Node client's callback order differed from replay order %d times", outOfOrder)
	}
	checkSubscribeRequests(t, emu.srv.Requests())
	checkCoverage(t, truth)
}

// checkCoverage fails when the seeded backlog stops exercising what this test is for: nested (compound)
// changed fields, nulled and diff fields, person-account names, multi-record changes, every basic change type,
// and a commitNumber beyond 2^53 (a BigInt in the client).
func checkCoverage(t *testing.T, truth []emulator.Generated) {
	t.Helper()
	count := map[string]int{}
	for _, g := range truth {
		tr := g.Truth
		count[tr.ChangeType]++
		for _, f := range tr.ChangedFields {
			if strings.Contains(f, ".") {
				count["nested changed field"]++
				if strings.HasPrefix(f, "Name.") {
					count["person-account Name subfield"]++
				}
				break
			}
		}
		if len(tr.NulledFields) > 0 {
			count["nulledFields"]++
		}
		if len(tr.DiffFields) > 0 {
			count["diffFields"]++
		}
		if len(tr.RecordIDs) > 1 {
			count["multi-record"]++
		}
		if tr.CommitNumber > 1<<53 {
			count["commitNumber > 2^53"]++
		}
	}
	t.Logf("backlog coverage: %v", count)
	for _, k := range []string{"CREATE", "UPDATE", "DELETE", "nested changed field", "person-account Name subfield",
		"nulledFields", "diffFields", "multi-record", "commitNumber > 2^53"} {
		if count[k] == 0 {
			t.Errorf("the generated backlog (seed %d) has no event with %s: the test no longer covers it", generatorSeed, k)
		}
	}
}

// checkReplayID compares the client's numeric replay ID with the emulator's bytes and returns the counter.
// The client reads only the first 8 bytes, big-endian, and converts them to a JavaScript Number
// (eventParser.js decodeReplayId), so the comparison is made on float64.
func checkReplayID(t *testing.T, label, got string, want []byte) uint64 {
	t.Helper()
	if len(want) < 8 {
		t.Errorf("%s: emulator replay ID %x is shorter than 8 bytes", label, want)
		return 0
	}
	counter := binary.BigEndian.Uint64(want[:8])
	f, err := strconv.ParseFloat(got, 64)
	if err != nil {
		t.Errorf("%s: replayId %q is not a number: %v", label, got, err)
		return counter
	}
	if f != float64(counter) {
		t.Errorf("%s: replayId %s, want %d (first 8 bytes of %x)", label, got, counter, want)
	}
	if counter < 1<<53 && got != strconv.FormatUint(counter, 10) {
		t.Errorf("%s: replayId printed as %q, want %d", label, got, counter)
	}
	return counter
}

// checkHeader compares the ChangeEventHeader as the Node client parsed it with the ground truth.
func checkHeader(t *testing.T, label string, ev nodeEvent, truth emulator.GroundTruth) {
	t.Helper()
	var p struct {
		ChangeEventHeader nodeHeader `json:"ChangeEventHeader"`
	}
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Errorf("%s: payload has no readable ChangeEventHeader: %v", label, err)
		return
	}
	h := p.ChangeEventHeader
	if h.ChangeType != truth.ChangeType {
		t.Errorf("%s: changeType %q, want %q", label, h.ChangeType, truth.ChangeType)
	}
	if truth.EntityName != "" && h.EntityName != truth.EntityName {
		t.Errorf("%s: entityName %q, want %q", label, h.EntityName, truth.EntityName)
	}
	if !slices.Equal(h.RecordIDs, truth.RecordIDs) {
		t.Errorf("%s: recordIds %q, want %q", label, h.RecordIDs, truth.RecordIDs)
	}
	if cn := strings.Trim(string(h.CommitNumber), `"`); cn != strconv.FormatInt(truth.CommitNumber, 10) {
		t.Errorf("%s: commitNumber %s, want %d", label, h.CommitNumber, truth.CommitNumber)
	}
	checkFieldList(t, label, "changedFields", h.ChangedFields, truth.ChangedFields)
	checkFieldList(t, label, "nulledFields", h.NulledFields, truth.NulledFields)
	checkFieldList(t, label, "diffFields", h.DiffFields, truth.DiffFields)
}

// checkFieldList compares an expanded bitmap field. The client lists top-level fields in schema order, then
// each "parentIndex-0x…" element's subfields as "Parent.Sub" (eventParser.js parseFieldBitmaps); the ground
// truth claims the same order, so order is compared too, after the set.
func checkFieldList(t *testing.T, label, name string, got, want []string) {
	t.Helper()
	gs, ws := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	switch {
	case !slices.Equal(gs, ws):
		t.Errorf("%s: %s parsed by the Node client %q, ground truth %q", label, name, got, want)
	case !slices.Equal(got, want):
		t.Errorf("%s: %s has the right names in another order: Node client %q, ground truth %q", label, name, got, want)
	}
}

// checkSubscribeRequests asserts that the client's traffic exercised what the test claims: a first
// FetchRequest for the topic with EARLIEST and 100 events of credit, then credit top-ups of 100.
func checkSubscribeRequests(t *testing.T, reqs []emulator.Request) {
	t.Helper()
	var subs []emulator.Request
	for _, r := range reqs {
		if r.RPC == emulator.RPCSubscribe {
			subs = append(subs, r)
		}
	}
	if len(subs) == 0 {
		t.Fatalf("the emulator logged no Subscribe request")
	}
	first := subs[0]
	if first.Topic != accountTopic || first.Preset != "EARLIEST" || first.NumRequested != 100 {
		t.Errorf("first FetchRequest: topic %q preset %q num_requested %d, want %q EARLIEST 100",
			first.Topic, first.Preset, first.NumRequested, accountTopic)
	}
	// 320 events in batches of 100: the client tops up after 100, 200 and 300.
	if want := generatedEvents/100 + 1; len(subs) < want {
		t.Errorf("the emulator logged %d FetchRequests, want at least %d (first + a top-up per 100 events)", len(subs), want)
	}
	for _, r := range subs[1:] {
		if r.NumRequested != 100 {
			t.Errorf("credit top-up asked for %d events, the client always asks for 100", r.NumRequested)
		}
	}
}

// TestNodeClientResumesAfterReplayID: the Node client numbers replay IDs and sends them back as 8 bytes
// (eventParser.js encodeReplayId), while the emulator, like the real service since 2022, issues 10-byte IDs. A
// CUSTOM subscription with the client's 8-byte form must start right after that event.
func TestNodeClientResumesAfterReplayID(t *testing.T) {
	const total, resumeAfter = 40, 14 // resume after the 15th event
	checkGoroutineLeaks(t)
	nc := requireNodeClient(t)
	emu := startTLSEmulator(t)
	truth, err := emulator.NewGenerator(generatorSeed+1, emu.srv).PublishN(accountTopic, total)
	if err != nil {
		t.Fatalf("generate %d events: %v", total, err)
	}
	after := truth[resumeAfter].ReplayID
	counter := binary.BigEndian.Uint64(after[:8])

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout+30*time.Second)
	defer cancel()
	env := emu.clientEnv(accountTopic)
	env["SFA_REPLAY_ID"] = strconv.FormatUint(counter, 10)
	env["SFA_COUNT"] = strconv.Itoa(total - resumeAfter - 1)
	env["SFA_GRACE_MS"] = "500"
	got := jsonLines[nodeEvent](t, nc.run(t, ctx, "subscribe", env).stdout)

	want := truth[resumeAfter+1:]
	if len(got) != len(want) {
		t.Errorf("the Node client received %d events after replay ID %d, want %d", len(got), counter, len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i].ID != want[i].Event.ID {
			t.Errorf("event #%d: id %s, want %s (replay %x)", i+1, got[i].ID, want[i].Event.ID, want[i].ReplayID)
			continue
		}
		checkReplayID(t, fmt.Sprintf("event #%d", i+1), got[i].ReplayID, want[i].ReplayID)
	}
	var first *emulator.Request
	for _, r := range emu.srv.Requests() {
		if r.RPC == emulator.RPCSubscribe {
			first = &r
			break
		}
	}
	if first == nil {
		t.Fatal("the emulator logged no Subscribe request")
	}
	if first.Preset != "CUSTOM" || !slices.Equal(first.ReplayID, after[:8]) {
		t.Errorf("first FetchRequest: preset %q replay_id %x, want CUSTOM %x (8 bytes)", first.Preset, first.ReplayID, after[:8])
	}
}

// TestNodeClientHandlesKeepalives: with credit pending and no event left, the emulator sends empty
// FetchResponses whose latest_replay_id the client decodes like a replay ID (client.js reads it from every
// response, so an empty or short one would crash it); the position never goes back.
func TestNodeClientHandlesKeepalives(t *testing.T) {
	const events, keepalives = 3, 2
	checkGoroutineLeaks(t)
	nc := requireNodeClient(t)
	emu := startTLSEmulatorWith(t, emulator.Config{InstanceURL: instanceURL, Keepalive: 300 * time.Millisecond})
	truth, err := emulator.NewGenerator(generatorSeed+2, emu.srv).PublishN(accountTopic, events)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout+30*time.Second)
	defer cancel()
	env := emu.clientEnv(accountTopic)
	env["SFA_COUNT"] = strconv.Itoa(events)
	env["SFA_KEEPALIVES"] = strconv.Itoa(keepalives)
	lines := jsonLines[struct {
		ID             string `json:"id"`
		Keepalive      int    `json:"keepalive"`
		AfterEvents    int    `json:"afterEvents"`
		LatestReplayID string `json:"latestReplayId"`
	}](t, nc.run(t, ctx, "subscribe", env).stdout)

	last := binary.BigEndian.Uint64(truth[events-1].ReplayID[:8])
	got, prev := 0, 0.0
	for _, l := range lines {
		if l.Keepalive == 0 {
			continue
		}
		got++
		pos, err := strconv.ParseFloat(l.LatestReplayID, 64)
		if err != nil {
			t.Errorf("keepalive %d: latestReplayId %q is not a number", l.Keepalive, l.LatestReplayID)
			continue
		}
		if l.AfterEvents != events {
			t.Errorf("keepalive %d came after %d events, want after all %d", l.Keepalive, l.AfterEvents, events)
		}
		if pos < float64(last) || pos < prev {
			t.Errorf("keepalive %d: latestReplayId %s, want >= %d (last event) and >= %v (previous keepalive)", l.Keepalive, l.LatestReplayID, last, prev)
		}
		prev = pos
	}
	if got != keepalives {
		t.Errorf("the client saw %d keepalives, want %d", got, keepalives)
	}
}
