package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSOAPRequestShape(t *testing.T) {
	type seen struct{ contentType, action, body, path string }
	got := make(chan seen, 1)
	f := newFixture(t, false, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- seen{r.Header.Get("Content-Type"), r.Header.Get("SOAPAction"), string(b), r.URL.Path}
			r.Body = io.NopCloser(strings.NewReader(string(b)))
			h.ServeHTTP(w, r)
		})
	})
	l := f.l
	l.APIVersion = "57.0"
	if _, err := NewSOAP(l, testUser, testPassword+testSecToken).Credentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.contentType != "text/xml; charset=UTF-8" || s.action != "login" || s.path != "/services/Soap/u/57.0/" {
		t.Fatalf("request %+v", s)
	}
	if !strings.Contains(s.body, "urn:partner.soap.sforce.com") || strings.Contains(s.body, testPassword) {
		t.Fatalf("body is not a partner login with an escaped password: %s", s.body)
	}
}

func TestParseSOAPLoginByName(t *testing.T) {
	// Other prefixes, whitespace, another order and optional elements: read by local name.
	body := `<?xml version="1.0"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
  <p:loginResponse xmlns:p="urn:partner.soap.sforce.com"><p:result>
    <p:sessionId> TOKEN </p:sessionId>
    <p:upgradeURL>x</p:upgradeURL>
    <p:serverUrl>https://acme.my.salesforce.com:8443/services/Soap/u/62.0/00D000000000777</p:serverUrl>
    <p:userInfo><p:organizationName>x</p:organizationName><p:organizationId>00D000000000777AAA</p:organizationId></p:userInfo>
  </p:result></p:loginResponse></S:Body></S:Envelope>`
	res, err := parseSOAPLogin([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.sessionID != "TOKEN" || res.orgID != testOrgID || !strings.HasPrefix(res.serverURL, "https://acme.my.salesforce.com:8443/") {
		t.Fatalf("%+v", res)
	}
	inst, err := normalizeInstanceURL(res.serverURL)
	if err != nil || inst != "https://acme.my.salesforce.com:8443" {
		t.Fatalf("instance URL %q, %v", inst, err)
	}
	if _, err := parseSOAPLogin([]byte(`{"not":"xml"}`)); err == nil {
		t.Fatal("JSON parsed as a SOAP response")
	}
	if _, err := parseSOAPLogin([]byte(`<a><b>`)); err == nil {
		t.Fatal("truncated XML accepted")
	}
}

// A server that misbehaves: echoes secrets, answers 503, hangs, omits fields.
func TestServerMisbehaviour(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusInternalServerError)
		// The fault quotes the request, password included.
		_, _ = io.WriteString(w, `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>bad: `+
			strings.ReplaceAll(strings.ReplaceAll(string(b), "<", "&lt;"), ">", "&gt;")+`</faultstring></e:Fault></e:Body></e:Envelope>`)
	}
	const password = "SECRETpw"
	cases := []struct {
		name     string
		handler  http.HandlerFunc
		rejected bool
		want     string
	}{
		{"echoes the password", echo, true, redacted},
		{"server fault", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault><faultcode>sf:SERVER_UNAVAILABLE</faultcode><faultstring>SERVER_UNAVAILABLE: try later</faultstring></e:Fault></e:Body></e:Envelope>`)
		}, false, "try later"},
		{"503", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "maintenance "+password, http.StatusServiceUnavailable)
		}, false, "HTTP 503"},
		{"no session ID", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<Envelope><Body><loginResponse><result><serverUrl>https://x.my.salesforce.com/s</serverUrl></result></loginResponse></Body></Envelope>`)
		}, false, "sessionId"},
		{"html", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<html><body>captive portal</body></html>`)
		}, false, "not a SOAP envelope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := httptest.NewServer(c.handler)
			defer ts.Close()
			_, err := NewSOAP(Login{LoginURL: ts.URL}, testUser, password).Credentials(context.Background())
			if err == nil || errors.Is(err, ErrLoginRejected) != c.rejected || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want rejected=%v mentioning %q", err, c.rejected, c.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("the password leaked: %v", err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	stop := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer ts.Close()
	defer close(stop)
	start := time.Now()
	_, err := NewClientCredentials(Login{LoginURL: ts.URL, Timeout: 100 * time.Millisecond}, testClientID, testSecret).Credentials(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	if !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Errorf("error %q does not name the timeout", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatal("the secret leaked")
	}
}

func TestOrgIDFallsBackToIDURL(t *testing.T) {
	f := newFixture(t, false, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/services/oauth2/userinfo" {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c, err := NewClientCredentials(f.l, testClientID, testSecret).Credentials(context.Background())
	if err != nil || c.OrgID != testOrgID {
		t.Fatalf("credentials %v, err %v", c, err)
	}
	if !strings.Contains(f.logs.String(), "userinfo failed") {
		t.Error("the fallback was not logged")
	}

	// No userinfo and no usable id URL: an error that says so.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"tok","instance_url":"http://127.0.0.1:1","id":"https://x/y"}`)
			return
		}
		http.Error(w, "nope", http.StatusNotFound)
	}))
	defer ts.Close()
	_, err = NewClientCredentials(Login{LoginURL: ts.URL}, testClientID, testSecret).Credentials(context.Background())
	if err == nil || !strings.Contains(err.Error(), "org ID") || errors.Is(err, ErrLoginRejected) {
		t.Fatalf("err = %v", err)
	}
}

func TestOrgIDFromIDURL(t *testing.T) {
	cases := map[string]string{
		"https://login.salesforce.com/id/00D000000000777AAA/005000000000042AAA": testOrgID,
		"https://login.salesforce.com/id/005000000000042AAA/00D000000000777AAA": "",
		"https://login.salesforce.com/services/x":                               "",
		"::": "",
	}
	for in, want := range cases {
		got, ok := orgIDFromIDURL(in)
		if got != want || ok != (want != "") {
			t.Errorf("orgIDFromIDURL(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestLoadRSAPrivateKey(t *testing.T) {
	k := testKeys()[0]
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, der []byte, h map[string]string) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der, Headers: h}))
	}
	good := map[string]string{
		"pkcs1":             enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k), nil),
		"pkcs8":             enc("PRIVATE KEY", pkcs8, nil),
		"certificate first": enc("CERTIFICATE", []byte("not parsed"), nil) + enc("PRIVATE KEY", pkcs8, nil),
	}
	for name, p := range good {
		got, err := LoadRSAPrivateKey([]byte(p))
		if err != nil || !got.Equal(k) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]string{
		"empty":           "",
		"public only":     publicPEM(t, k),
		"encrypted pkcs8": enc("ENCRYPTED PRIVATE KEY", []byte("x"), nil),
		"encrypted pkcs1": enc("RSA PRIVATE KEY", []byte("x"), map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}),
		"ec key":          enc("PRIVATE KEY", ecDER, nil),
		"corrupt":         enc("RSA PRIVATE KEY", []byte("garbage"), nil),
	}
	for name, p := range bad {
		_, err := LoadRSAPrivateKey([]byte(p))
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

func TestUnreachableLoginURL(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	_, err = NewSOAP(Login{LoginURL: "http://" + addr}, testUser, testPassword).Credentials(context.Background())
	if err == nil || errors.Is(err, ErrLoginRejected) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v; want a transport error naming %s", err, addr)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Fatal("the password leaked")
	}
}
