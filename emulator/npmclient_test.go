//go:build npmclient

package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestNpmClient runs the third-party npm package salesforce-pubsub-api-client against the emulator over TLS.
// It needs node and a directory holding node_modules with salesforce-pubsub-api-client (and underscore, which
// its avro-js dependency requires but does not declare), named by SFARCHIVE_NPM_DIR:
//
//	npm install --prefix DIR salesforce-pubsub-api-client@5.5.2 underscore
//	SFARCHIVE_NPM_DIR=DIR go test -tags npmclient -run TestNpmClient ./emulator
func TestNpmClient(t *testing.T) {
	dir := os.Getenv("SFARCHIVE_NPM_DIR")
	if dir == "" {
		t.Fatal("SFARCHIVE_NPM_DIR must name a directory with node_modules/salesforce-pubsub-api-client")
	}
	checkLeaks(t)
	_, _, cert, err := GenerateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Keepalive: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	const token = "00D000000000001AAA!npm"
	srv.AddToken(token, 0)
	addr, err := srv.StartTLS("127.0.0.1:0", cert)
	if err != nil {
		t.Fatal(err)
	}
	gens, err := NewGenerator(2026, srv).PublishN(accountTopic, 320)
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string][]string{}
	for _, g := range gens {
		truth[g.Event.ID] = g.Truth.ChangedFields
	}
	_, port, _ := netSplit(addr)
	in, _ := json.Marshal(map[string]any{"endpoint": "localhost:" + port, "token": token, "instanceUrl": "https://example.my.salesforce.com",
		"topic": accountTopic, "count": len(gens), "truth": truth})
	inFile := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(inFile, in, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("testdata/npmclient/check.mjs")
	if err != nil {
		t.Fatal(err)
	}
	// Run the script from a copy inside dir so that node resolves the package from dir/node_modules.
	local := filepath.Join(dir, "sfarchive-emulator-check.mjs")
	body, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, body, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(local)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", local, inFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	var res struct {
		Received, Mismatches int
		Examples             []map[string]string
		Publish              struct {
			CorrelationKey string `json:"correlationKey"`
		}
	}
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil {
		t.Fatalf("node output %q: %v", stdout.String(), err)
	}
	if res.Received < 300 || res.Mismatches != 0 {
		t.Errorf("npm client received %d events with %d changedFields mismatches: %v", res.Received, res.Mismatches, res.Examples)
	}
	evs := srv.Events(orders)
	if len(evs) != 1 || evs[0].Event.ID != "npm-order-1" || res.Publish.CorrelationKey != "npm-order-1" {
		t.Fatalf("published order: %+v, result %+v", evs, res.Publish)
	}
	rec, _ := decode(t, srv, evs[0].Event.SchemaID, evs[0].Event.Payload)
	if rec["Order_Number__c"] != "N-42" || rec["City__c"] != "Paris" || rec["Amount__c"] != 99.5 || rec["CreatedDate"] != int64(1764000000000) {
		t.Errorf("order published by the npm client decodes to %v", rec)
	}
}

func netSplit(addr string) (string, string, error) { return net.SplitHostPort(addr) }
