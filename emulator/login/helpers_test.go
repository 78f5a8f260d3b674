package login

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/internal/testkeys"
)

const (
	testUser     = "archiver@example.com"
	testPassword = "p@ss&<word>"
	testSecToken = "SECTOKEN123"
	testUserID   = "005000000000042AAA"
	testClientID = "3MVG9emulatorclient"
	testSecret   = "client-secret-value"
	testOrgID    = "00D000000000777AAA"
)

// testKeys are the connected app's key and a stranger's, made once per test binary (internal/testkeys).
func testKeys() [2]*rsa.PrivateKey {
	app, stranger := testkeys.Pair()
	return [2]*rsa.PrivateKey{app, stranger}
}

func publicPEM(_ testing.TB, k *rsa.PrivateKey) string { return testkeys.PublicPEM(k) }

// recorder is a TokenIssuer that remembers what it was given.
type recorder struct {
	mu     sync.Mutex
	tokens map[string]time.Duration
}

func (r *recorder) AddToken(token string, lifetime time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokens == nil {
		r.tokens = map[string]time.Duration{}
	}
	r.tokens[token] = lifetime
}

func (r *recorder) lifetime(token string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.tokens[token]
	return d, ok
}

func testConfig(t testing.TB) Config {
	return Config{
		OrgID:         testOrgID,
		OrgName:       "Test Org",
		TokenLifetime: Duration(90 * time.Minute),
		Users: []User{
			{Username: testUser, Password: testPassword, SecurityToken: testSecToken, UserID: testUserID, FullName: "Archiver Bot"},
			{Username: "other@example.com", Password: "other"},
		},
		Apps: []App{
			{ClientID: testClientID, ClientSecret: testSecret, PublicKeyPEM: publicPEM(t, testKeys()[0]), RunAs: testUser},
			{ClientID: "no-run-as", ClientSecret: "x"},
		},
	}
}

// newTestServer starts the login server on a loopback httptest server.
func newTestServer(t testing.TB, mutate func(*Config)) (*Server, *httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := testConfig(t)
	cfg.Issuer = rec
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts, rec
}

func postForm(t testing.TB, ts *httptest.Server, form url.Values) (int, map[string]string) {
	t.Helper()
	resp, err := ts.Client().PostForm(ts.URL+"/services/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode token response: %v", err)
	}
	return resp.StatusCode, body
}

// assertion builds an RS256 JWT with the given claims, signed by key.
func assertion(t testing.TB, key *rsa.PrivateKey, alg string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg})
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// selfSigned returns a TLS config for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "login emulator"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func soapPost(t testing.TB, client *http.Client, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("SOAPAction", "login")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// testClock is a settable clock safe for use by the server's goroutines.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}
