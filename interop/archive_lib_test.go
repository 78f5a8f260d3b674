package interop

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/query"
	"github.com/sfarchive/sfarchive/subscriber"
)

// archiveAndQueryWithLibraries does in-process what `sfarchive subscribe` and `sfarchive query` do: it
// archives orderTopic from EARLIEST until idle, then prints the archive's events as JSON lines. It stands in
// for the binary while cmd/sfarchive does not build yet.
func archiveAndQueryWithLibraries(t *testing.T, emu tlsEmulator) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orders.sfa")
	a, err := archive.Open(path, archive.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open archive: %v", err)
	}
	from, err := subscriber.ParseStart("earliest")
	if err != nil {
		t.Fatalf("ParseStart: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), binaryTimeout)
	defer cancel()
	sum, err := subscriber.Run(ctx, subscriber.Config{
		Endpoint:     emu.addr,
		CAFile:       emu.certFile,
		Auth:         auth.NewStatic(accessToken, instanceURL, orgID),
		Topics:       []string{orderTopic},
		From:         from,
		ExitWhenIdle: 2 * time.Second,
	}, a)
	if cerr := a.Close(); cerr != nil {
		t.Errorf("close archive: %v", cerr)
	}
	if err != nil {
		t.Fatalf("subscriber.Run: %v", err)
	}
	t.Logf("subscriber.Run: stored %d, stopped: %s", sum.Stored, sum.Reason)

	ro, err := archive.Open(path, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open archive read-only: %v", err)
	}
	defer ro.Close()
	var out bytes.Buffer
	if _, err := query.Run(ctx, ro, query.Options{Topics: []string{orderTopic}}, &out); err != nil {
		t.Fatalf("query.Run: %v", err)
	}
	return out.Bytes()
}
