package subscriber

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/archive"
	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/emulator"
)

// Realistic traffic over TLS with the emulator's self-signed certificate:
// change events from the generator, a schema change mid-backlog (case 3),
// events byte-identical, every schema stored, progress reported per topic.
func TestTLSGeneratedTraffic(t *testing.T) {
	checkNoLeaks(t)
	srv, err := emulator.New(emulator.Config{InstanceURL: testInstance})
	if err != nil {
		t.Fatal(err)
	}
	certFile, _, cert, err := emulator.GenerateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.StartTLS("127.0.0.1:0", cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.AddToken(testToken, 0)
	const account = "/data/AccountChangeEvent"
	gen := emulator.NewGenerator(42, srv)
	if _, err := gen.PublishN(account, 150); err != nil {
		t.Fatal(err)
	}
	if _, err := gen.EvolveSchema(account); err != nil {
		t.Fatal(err)
	}
	if _, err := gen.PublishN(account, 150); err != nil {
		t.Fatal(err)
	}
	if _, err := gen.PublishN(orderTopic, 100); err != nil {
		t.Fatal(err)
	}

	cfg := Config{
		Endpoint: addr, CAFile: certFile,
		Auth:       auth.NewStatic(testToken, testInstance, srv.OrgID()),
		Topics:     []string{account, orderTopic},
		BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		MaxEvents: 400, ProgressEvery: 10 * time.Millisecond, Logger: testLogger(t),
	}
	var mu sync.Mutex
	last := map[string]TopicProgress{}
	cfg.Progress = func(p TopicProgress) {
		mu.Lock()
		defer mu.Unlock()
		last[p.Topic] = p
	}
	a, err := archive.Open(t.TempDir()+"/a.db", archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sum, err := Run(t.Context(), cfg, a)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, topic := range cfg.Topics {
		sameAsEmulator(t, a, srv, topic)
		info := mustTopic(t, srv, topic)
		for _, id := range info.SchemaIDs {
			if ok, _ := a.HasSchema(id); !ok && topic == account {
				t.Fatalf("schema %s of %s not stored", id, topic)
			}
		}
		p := last[topic]
		if p.Archived != int64(count(a, topic)) || len(p.Mark) != 10 || p.LastReceived.IsZero() {
			t.Fatalf("final progress for %s: %+v", topic, p)
		}
	}
	if sum.Stored != 400 {
		t.Fatalf("summary %+v", sum)
	}

	// The same endpoint without the emulator's CA: refused at the TLS
	// handshake, reported as unreachable and naming the endpoint.
	cfg.CAFile = ""
	_, err = Run(t.Context(), cfg, a)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("untrusted certificate: %v", err)
	}
}
