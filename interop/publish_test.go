package interop

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/sfarchive/sfarchive/emulator"
)

// The Order_Event__e the Node client publishes. The values exercise a non-ASCII string, a double with a
// fraction and an epoch-ms long beyond 2^32.
const (
	orderEventID     = "interop-order-000417" // the client's correlation key, sent as ProducerEvent.id
	orderCreatedDate = int64(1764754620123)
	orderCreatedBy   = "0055g00000AbCdEAAV"
	orderNumber      = "ORD-000417"
	orderCity        = "Zürich"
	orderAmount      = 1234.56
)

// binaryTimeout bounds building and each run of the sfarchive binary.
const binaryTimeout = 3 * time.Minute

// TestNodeClientPublishArchivedBySfarchive: the Node client publishes an Order_Event__e through the emulator's
// Publish RPC; `sfarchive subscribe` archives it and `sfarchive query` prints exactly the published values.
func TestNodeClientPublishArchivedBySfarchive(t *testing.T) {
	checkGoroutineLeaks(t)
	nc := requireNodeClient(t)
	emu := startTLSEmulator(t)

	// The client expects Avro-JSON with wrapped unions for the nullable custom fields (its README's publish
	// example); it encodes the payload with the schema of GetTopic's schema ID.
	payload := map[string]any{
		"CreatedDate":     orderCreatedDate,
		"CreatedById":     orderCreatedBy,
		"Order_Number__c": map[string]any{"string": orderNumber},
		"City__c":         map[string]any{"string": orderCity},
		"Amount__c":       map[string]any{"double": orderAmount},
	}
	pj, err := json.Marshal(payload)
	if err != nil {
		t.Fatalf("marshal payload: %v", err)
	}
	env := emu.clientEnv(orderTopic)
	env["SFA_PAYLOAD"] = string(pj)
	env["SFA_EVENT_ID"] = orderEventID
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout+30*time.Second)
	defer cancel()
	results := jsonLines[struct {
		ReplayID       string `json:"replayId"`
		CorrelationKey string `json:"correlationKey"`
	}](t, nc.run(t, ctx, "publish", env).stdout)
	if len(results) != 1 {
		t.Fatalf("the Node client printed %d publish results, want 1", len(results))
	}
	res := results[0]

	// What the emulator stored is what the client sent.
	stored := emu.srv.Events(orderTopic)
	if len(stored) != 1 {
		t.Fatalf("emulator holds %d events on %s after one publish, want 1", len(stored), orderTopic)
	}
	se := stored[0]
	if res.CorrelationKey != orderEventID || se.Event.ID != orderEventID {
		t.Errorf("correlationKey %q, stored event id %q, want %q for both", res.CorrelationKey, se.Event.ID, orderEventID)
	}
	checkReplayID(t, "publish result", res.ReplayID, se.ReplayID)
	if se.Event.SchemaID != orderSchemaID {
		t.Errorf("the client published with schema ID %q, want the topic's %q", se.Event.SchemaID, orderSchemaID)
	}
	checkStoredOrderPayload(t, se.Event.Payload)
	checkPublishRequests(t, emu.srv.Requests())

	// sfarchive archives it and prints it back.
	bin := buildSfarchive(t)
	archivePath := filepath.Join(t.TempDir(), "orders.sfa")
	runSfarchive(t, bin, "subscribe",
		"--archive", archivePath,
		"--endpoint", emu.addr,
		"--ca-file", emu.certFile,
		"--auth", "token",
		"--access-token", accessToken,
		"--instance-url", instanceURL,
		"--org-id", orgID,
		"--topic", orderTopic,
		"--from", "earliest",
		"--exit-when-idle", "2s",
		"--progress", "never",
	)
	out := runSfarchive(t, bin, "query", "--archive", archivePath, "--topic", orderTopic)
	t.Logf("sfarchive query printed: %s", bytes.TrimSpace(out))
	records := jsonLines[map[string]any](t, out)
	if len(records) != 1 {
		t.Fatalf("sfarchive query printed %d records, want 1:\n%s", len(records), out)
	}
	checkQueriedOrder(t, records[0], se)
}

// checkStoredOrderPayload decodes the bytes the Node client produced with the topic's schema.
func checkStoredOrderPayload(t *testing.T, payload []byte) {
	t.Helper()
	sch := orderSchema(t)
	var got struct {
		CreatedDate int64    `avro:"CreatedDate"`
		CreatedByID string   `avro:"CreatedById"`
		OrderNumber *string  `avro:"Order_Number__c"`
		City        *string  `avro:"City__c"`
		Amount      *float64 `avro:"Amount__c"`
	}
	if err := avro.Unmarshal(sch, payload, &got); err != nil {
		t.Fatalf("the payload the Node client published does not decode with Order_Event__e: %v (%x)", err, payload)
	}
	if got.CreatedDate != orderCreatedDate || got.CreatedByID != orderCreatedBy ||
		got.OrderNumber == nil || *got.OrderNumber != orderNumber ||
		got.City == nil || *got.City != orderCity ||
		got.Amount == nil || *got.Amount != orderAmount {
		t.Errorf("stored payload decodes to %+v, want %d %s %s %s %v", got, orderCreatedDate, orderCreatedBy, orderNumber, orderCity, orderAmount)
	}
}

// orderSchema parses the emulator's Order_Event__e schema.
func orderSchema(t *testing.T) avro.Schema {
	t.Helper()
	js, err := emulator.BuiltinSchema("Order_Event__e.avsc")
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	sch, err := emulator.ParseSchema(js)
	if err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	return sch
}

// checkPublishRequests: the client looked the topic up, fetched its schema and published one event.
func checkPublishRequests(t *testing.T, reqs []emulator.Request) {
	t.Helper()
	var seq []string
	for _, r := range reqs {
		seq = append(seq, r.RPC)
		if r.RPC == emulator.RPCPublish && (r.Topic != orderTopic || r.Events != 1) {
			t.Errorf("Publish request: topic %q with %d events, want %q with 1", r.Topic, r.Events, orderTopic)
		}
	}
	want := []string{emulator.RPCGetTopic, emulator.RPCGetSchema, emulator.RPCPublish}
	if fmt.Sprint(seq) != fmt.Sprint(want) {
		t.Errorf("the emulator saw RPCs %v, want %v", seq, want)
	}
}

// checkQueriedOrder compares one `sfarchive query` JSON record with the published values.
func checkQueriedOrder(t *testing.T, rec map[string]any, se emulator.StoredEvent) {
	t.Helper()
	ev, ok := rec["event"].(map[string]any)
	if !ok {
		t.Fatalf("query record has no decoded event object under \"event\": %v", rec)
	}
	str := func(k string) string { s, _ := ev[k].(string); return s }
	num := func(k string) (float64, bool) {
		n, ok := ev[k].(json.Number)
		if !ok {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	if s := str("Order_Number__c"); s != orderNumber {
		t.Errorf("Order_Number__c = %v, want %q", ev["Order_Number__c"], orderNumber)
	}
	if s := str("City__c"); s != orderCity {
		t.Errorf("City__c = %v, want %q", ev["City__c"], orderCity)
	}
	if s := str("CreatedById"); s != orderCreatedBy {
		t.Errorf("CreatedById = %v, want %q", ev["CreatedById"], orderCreatedBy)
	}
	if f, ok := num("Amount__c"); !ok || f != orderAmount {
		t.Errorf("Amount__c = %v, want %v", ev["Amount__c"], orderAmount)
	}
	if n, ok := ev["CreatedDate"].(json.Number); !ok || n.String() != strconv.FormatInt(orderCreatedDate, 10) {
		t.Errorf("CreatedDate = %v, want %d (epoch ms, the query default)", ev["CreatedDate"], orderCreatedDate)
	}
	if len(ev) != 5 {
		t.Errorf("decoded event has %d fields, want the schema's 5: %v", len(ev), ev)
	}
	// The record's metadata is what the emulator stored.
	for k, want := range map[string]string{
		"topic":     orderTopic,
		"replay_id": hex.EncodeToString(se.ReplayID),
		"event_id":  se.Event.ID,
		"schema_id": se.Event.SchemaID,
	} {
		if got, _ := rec[k].(string); got != want {
			t.Errorf("query record %s = %v, want %q", k, rec[k], want)
		}
	}
}

// buildSfarchive builds ./cmd/sfarchive from the repository root into a temporary directory.
func buildSfarchive(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "sfarchive")
	ctx, cancel := context.WithTimeout(context.Background(), binaryTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "./cmd/sfarchive")
	cmd.Dir = root
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sfarchive: %v\n%s", err, out)
	}
	return bin
}

// runSfarchive runs the binary with args, without any SFARCHIVE_* variable of the caller's environment, and
// returns its stdout. A non-zero exit fails the test.
func runSfarchive(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), binaryTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv("SFARCHIVE_")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	t.Logf("sfarchive %s: %v", args[0], time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("sfarchive %v: %v\nstderr:\n%s\nstdout:\n%s", args, err, stderr.Bytes(), tail(stdout.Bytes(), 4000))
	}
	return stdout.Bytes()
}

// TestNodeClientPublishStream: the Node client's publishBatch sends several events in one PublishRequest on a
// PublishStream; the results come back in request order, with the client's correlation keys (its own UUID when
// the caller gave none) and the replay IDs the emulator assigned.
func TestNodeClientPublishStream(t *testing.T) {
	checkGoroutineLeaks(t)
	nc := requireNodeClient(t)
	emu := startTLSEmulator(t)

	type batchEvent struct {
		ID      string         `json:"id,omitempty"`
		Payload map[string]any `json:"payload"`
	}
	cities := []string{"Lyon", "Nice", "Genève"}
	ids := []string{"interop-batch-1", "", "interop-batch-3"} // the second gets the client's UUID
	var events []batchEvent
	for i, city := range cities {
		events = append(events, batchEvent{ID: ids[i], Payload: map[string]any{
			"CreatedDate":     orderCreatedDate + int64(i),
			"CreatedById":     orderCreatedBy,
			"Order_Number__c": map[string]any{"string": fmt.Sprintf("ORD-B%03d", i+1)},
			"City__c":         map[string]any{"string": city},
			"Amount__c":       nil,
		}})
	}
	ej, err := json.Marshal(events)
	if err != nil {
		t.Fatalf("marshal events: %v", err)
	}
	env := emu.clientEnv(orderTopic)
	env["SFA_EVENTS"] = string(ej)
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout+30*time.Second)
	defer cancel()
	results := jsonLines[struct {
		ReplayID       string `json:"replayId"`
		CorrelationKey string `json:"correlationKey"`
	}](t, nc.run(t, ctx, "publish-batch", env).stdout)

	stored := emu.srv.Events(orderTopic)
	if len(results) != len(events) || len(stored) != len(events) {
		t.Fatalf("%d results and %d stored events for %d published", len(results), len(stored), len(events))
	}
	for i, r := range results {
		se := stored[i]
		if ids[i] != "" && r.CorrelationKey != ids[i] {
			t.Errorf("result %d: correlationKey %q, want %q", i, r.CorrelationKey, ids[i])
		}
		if ids[i] == "" && !uuidRE.MatchString(r.CorrelationKey) {
			t.Errorf("result %d: correlationKey %q, want the UUID the client generated", i, r.CorrelationKey)
		}
		if se.Event.ID != r.CorrelationKey {
			t.Errorf("result %d: stored event id %q, correlationKey %q", i, se.Event.ID, r.CorrelationKey)
		}
		checkReplayID(t, fmt.Sprintf("result %d", i), r.ReplayID, se.ReplayID)
		if se.Event.SchemaID != orderSchemaID {
			t.Errorf("result %d: schema ID %q, want %q", i, se.Event.SchemaID, orderSchemaID)
		}
		var got struct {
			CreatedDate int64    `avro:"CreatedDate"`
			City        *string  `avro:"City__c"`
			Amount      *float64 `avro:"Amount__c"`
		}
		if err := avro.Unmarshal(orderSchema(t), se.Event.Payload, &got); err != nil {
			t.Errorf("result %d: payload does not decode: %v", i, err)
		} else if got.CreatedDate != orderCreatedDate+int64(i) || got.City == nil || *got.City != cities[i] || got.Amount != nil {
			t.Errorf("result %d: payload decodes to CreatedDate %d City__c %v Amount__c %v", i, got.CreatedDate, got.City, got.Amount)
		}
	}
	var streamReqs int
	for _, r := range emu.srv.Requests() {
		if r.RPC == emulator.RPCPublishStream && r.Topic != "" {
			streamReqs++
			if r.Topic != orderTopic || r.Events != len(events) {
				t.Errorf("PublishStream request: topic %q with %d events, want %q with %d", r.Topic, r.Events, orderTopic, len(events))
			}
		}
	}
	if streamReqs != 1 {
		t.Errorf("the emulator logged %d PublishStream requests, want 1", streamReqs)
	}
}
