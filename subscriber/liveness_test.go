package subscriber

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sfarchive/sfarchive/auth"
	"github.com/sfarchive/sfarchive/emulator"
	"github.com/sfarchive/sfarchive/emulator/login"
)

// A stream that goes silent (no events, no keepalives, no close) is cancelled
// by the watchdog and resubscribed from the mark.
func TestWatchdogResubscribesStalledStream(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 30, 100)
	a := e.open()
	cfg := e.config(orderTopic)
	cfg.Watchdog = 150 * time.Millisecond
	r := start(t, cfg, a)
	eventually(t, "first events", 10*time.Second, func() bool { return count(a, orderTopic) == 30 })
	mark, _ := a.HighWaterMark(orderTopic)
	e.srv.Stall(true)
	e.publish(orderTopic, 20, 100) // held back by the stall
	eventually(t, "two watchdog resubscribes", 10*time.Second, func() bool { return len(subscribes(e.srv, orderTopic)) >= 3 })
	e.srv.Stall(false)
	eventually(t, "events after the stall", 10*time.Second, func() bool { return count(a, orderTopic) == 50 })
	sum, err := r.stop(t)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	sameAsEmulator(t, a, e.srv, orderTopic)
	// While stalled every resubscribe starts at the mark of the first 30 events;
	// once events flow again a later watchdog round may start at the new mark.
	final, _ := a.HighWaterMark(orderTopic)
	atMark := 0
	for _, s := range subscribes(e.srv, orderTopic)[1:] {
		if s.Preset != "CUSTOM" || !bytes.Equal(s.ReplayID, mark) && !bytes.Equal(s.ReplayID, final) {
			t.Fatalf("resubscribed with %s %x, want CUSTOM from the mark %x (or %x)", s.Preset, s.ReplayID, mark, final)
		}
		if bytes.Equal(s.ReplayID, mark) {
			atMark++
		}
	}
	if atMark < 2 {
		t.Fatalf("%d resubscribes from the stalled mark, want at least 2", atMark)
	}
	if sum.Duplicates != 0 {
		t.Fatalf("duplicates: %+v", sum)
	}
}

// Case 5: keepalives (responses without events) move the stored mark, so a
// quiet topic resumes without an invalid-replay error after its events aged out.
func TestKeepalivesMoveTheMark(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Keepalive: 40 * time.Millisecond})
	e.publish(orderTopic, 5, 100)
	a := e.open()
	cfg := e.config(orderTopic)
	r := start(t, cfg, a)
	eventually(t, "events", 10*time.Second, func() bool { return count(a, orderTopic) == 5 })
	last := e.srv.Events(orderTopic)[4].ReplayID
	eventually(t, "the mark to move past the last event", 10*time.Second, func() bool {
		m, _ := a.HighWaterMark(orderTopic)
		return bytes.Compare(m, last) > 0
	})
	sum, err := r.stop(t)
	if err != nil || sum.Topics[0].Keepalives == 0 {
		t.Fatalf("run: %v, summary %+v", err, sum.Topics[0])
	}
	mark, _ := a.HighWaterMark(orderTopic)
	// Retention removes the events; the keepalive position is still valid.
	e.srv.Purge(time.Now())
	e.publish(orderTopic, 3, 100)
	before := len(subscribes(e.srv, orderTopic))
	cfg.MaxEvents = 3
	if _, err := start(t, cfg, a).wait(t); err != nil {
		t.Fatalf("restart: %v", err)
	}
	subs := subscribes(e.srv, orderTopic)[before:]
	if len(subs) != 1 || subs[0].Preset != "CUSTOM" || !bytes.Equal(subs[0].ReplayID, mark) {
		t.Fatalf("restart subscribed %+v, want one CUSTOM from %x", subs, mark)
	}
	if gaps, _ := a.Gaps(); len(gaps) != 0 || count(a, orderTopic) != 8 {
		t.Fatalf("gaps %+v, %d events; want none and 8", gaps, count(a, orderTopic))
	}
}

// Case 14: the token expires while streams are open; the next Subscribe is
// refused, the source logs in again, and the stream resumes from the mark with
// nothing lost or duplicated.
func TestTokenExpiryMidRun(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 40, 100)
	e.publish(secondTopic, 40, 100)
	src := newRefreshSource(e.srv)
	a := e.open()
	cfg := e.config(orderTopic, secondTopic)
	cfg.Auth = src
	r := start(t, cfg, a)
	eventually(t, "first events", 10*time.Second, func() bool {
		return count(a, orderTopic) == 40 && count(a, secondTopic) == 40
	})
	marks := map[string][]byte{}
	for _, topic := range cfg.Topics {
		marks[topic], _ = a.HighWaterMark(topic)
	}
	before := len(e.srv.Requests())
	e.srv.ExpireTokens()
	// Break both streams; the first reconnect fails transiently, the next one
	// meets the expired token.
	e.srv.FailCall(emulator.RPCSubscribe, 1, codes.Unavailable, "", "")
	e.srv.EndStreamsAfter(1, codes.Unavailable, "")
	e.publish(orderTopic, 1, 100)
	e.publish(secondTopic, 1, 100)
	eventually(t, "reconnect", 10*time.Second, func() bool { return count(a, orderTopic) == 41 && count(a, secondTopic) == 41 })
	e.srv.EndStreamsAfter(0, codes.OK, "")
	e.publish(orderTopic, 30, 100)
	e.publish(secondTopic, 30, 100)
	eventually(t, "events after the new login", 10*time.Second, func() bool {
		return count(a, orderTopic) == 71 && count(a, secondTopic) == 71
	})
	sum, err := r.stop(t)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, topic := range cfg.Topics {
		sameAsEmulator(t, a, e.srv, topic)
	}
	if n := src.refreshs.Load(); n != 1 {
		t.Fatalf("%d logins after expiry, want exactly 1 shared by both topics", n)
	}
	// After the refusal, each topic resubscribed CUSTOM (never LATEST/EARLIEST).
	for _, req := range e.srv.Requests()[before:] {
		if req.RPC == emulator.RPCSubscribe && req.Preset != "" && req.Preset != "CUSTOM" {
			t.Fatalf("resubscribed with %s after the token expired", req.Preset)
		}
	}
	if sum.Duplicates != 0 {
		t.Fatalf("duplicates %+v", sum)
	}
}

// A given (static) token that expires ends the run with a clear error.
func TestStaticTokenExpiryEndsRun(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	e.publish(orderTopic, 10, 100)
	a := e.open()
	r := start(t, e.config(orderTopic), a)
	eventually(t, "events", 10*time.Second, func() bool { return count(a, orderTopic) == 10 })
	e.srv.ExpireTokens()
	e.srv.EndStreamsAfter(1, codes.Unavailable, "")
	e.publish(orderTopic, 1, 100)
	_, err := r.wait(t)
	if !errors.Is(err, ErrAuth) || !errors.Is(err, auth.ErrCannotRefresh) || !strings.Contains(err.Error(), "cannot be renewed") {
		t.Fatalf("run error %v, want ErrAuth explaining the token cannot be renewed", err)
	}
	if !strings.Contains(err.Error(), "service.auth.error") {
		t.Fatalf("error does not name the server's error code: %v", err)
	}
	if n := count(a, orderTopic); n != 11 {
		t.Fatalf("archived %d, want 11", n)
	}
}

// Before anything is written: a wrong token, an unknown topic or another org's
// archive is refused and the archive stays unbound.
func TestRefusedBeforeWriting(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	a := e.open()
	t.Run("wrong-token", func(t *testing.T) {
		cfg := e.config(orderTopic)
		cfg.Auth = auth.NewStatic("wrong", testInstance, e.srv.OrgID())
		_, err := Run(t.Context(), cfg, a)
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("got %v, want ErrAuth", err)
		}
	})
	t.Run("unknown-topic", func(t *testing.T) {
		_, err := Run(t.Context(), e.config("/event/Nope__e"), a)
		var re *RemoteError
		if !errors.Is(err, ErrTopicRefused) || !errors.As(err, &re) || re.Code != codes.PermissionDenied || re.RPCID == "" {
			t.Fatalf("got %v, want ErrTopicRefused with PERMISSION_DENIED and an rpc-id", err)
		}
	})
	if org, _, _ := a.Org(); org != "" {
		t.Fatalf("archive bound to %q after refused runs", org)
	}
	t.Run("other-org", func(t *testing.T) {
		if err := a.BindOrg("00D000000000999AAA", "https://other.my.salesforce.com"); err != nil {
			t.Fatal(err)
		}
		e.publish(orderTopic, 3, 100)
		_, err := Run(t.Context(), e.config(orderTopic), a)
		if !errors.Is(err, archiveErrOrgMismatch) {
			t.Fatalf("got %v, want ErrOrgMismatch", err)
		}
		if n := count(a, orderTopic); n != 0 {
			t.Fatalf("%d events written into another org's archive", n)
		}
	})
}

// Case 12: an endpoint that refuses connections, or accepts TCP and never
// answers, fails within a bounded time with an error naming it.
func TestUnreachableEndpoint(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accept and hold connections without speaking
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	for _, tc := range []struct{ name, addr string }{{"refused", closedAddr}, {"silent", silent.Addr().String()}} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			cfg := Config{Endpoint: tc.addr, Insecure: tc.name == "refused", Auth: auth.NewStatic("t", testInstance, emulator.DefaultOrgID),
				Topics: []string{orderTopic}, DialTimeout: 500 * time.Millisecond}
			a := (&testEnv{t: t, path: t.TempDir() + "/a.db"}).open()
			began := time.Now()
			_, err := Run(t.Context(), cfg, a)
			took := time.Since(began)
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), tc.addr) {
				t.Fatalf("got %v, want ErrUnreachable naming %s", err, tc.addr)
			}
			if took > 3*time.Second {
				t.Fatalf("took %s to fail", took)
			}
			if org, _, _ := a.Org(); org != "" {
				t.Fatalf("archive bound although nothing was reached")
			}
		})
	}
}

// Case 14 with a real login: a SOAP session against the emulator's login
// endpoint; the token expires mid-run; the subscriber logs in again and
// resumes from the mark without loss.
func TestSOAPTokenExpiryMidRun(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	ls, err := login.New(login.Config{
		OrgID:       e.srv.OrgID(),
		InstanceURL: testInstance,
		Users:       []login.User{{Username: "ops@example.com", Password: "pw", SecurityToken: "SEC"}},
		Issuer:      e.srv,
	})
	if err != nil {
		t.Fatal(err)
	}
	loginAddr, err := ls.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ls.Stop)
	e.publish(orderTopic, 25, 100)
	a := e.open()
	cfg := e.config(orderTopic)
	cfg.Auth = auth.NewSOAP(auth.Login{LoginURL: loginAddr}, "ops@example.com", "pwSEC")
	r := start(t, cfg, a)
	eventually(t, "events", 10*time.Second, func() bool { return count(a, orderTopic) == 25 }, r)
	e.srv.ExpireTokens()
	e.srv.EndStreamsAfter(1, codes.Unavailable, "")
	e.publish(orderTopic, 1, 100)
	eventually(t, "re-login", 10*time.Second, func() bool { return ls.Logins() == 2 })
	e.srv.EndStreamsAfter(0, codes.OK, "")
	e.publish(orderTopic, 10, 100)
	eventually(t, "events after re-login", 10*time.Second, func() bool { return count(a, orderTopic) == 36 })
	if _, err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	sameAsEmulator(t, a, e.srv, orderTopic)
}
