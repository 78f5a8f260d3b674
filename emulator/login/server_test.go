package login

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.pem"), []byte(publicPEM(t, testKeys()[0])), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "login.json")
	data := `{
	  "org_id": "00D000000000777AAA",
	  "token_lifetime": "45m",
	  "users": [{"username": "a@example.com", "password": "pw", "security_token": "T"}],
	  "apps": [{"client_id": "cid", "client_secret": "s", "public_key_file": "app.pem", "run_as": "a@example.com"}]
	}`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.TokenLifetime) != 45*time.Minute || cfg.Apps[0].PublicKeyFile != filepath.Join(dir, "app.pem") {
		t.Fatalf("config %+v", cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.users["a@example.com"].UserID == "" || s.apps["cid"].publicKey == nil {
		t.Fatal("defaults or key not filled in")
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	pemKey := publicPEM(t, testKeys()[0])
	cases := []struct {
		name string
		json string
		want string
	}{
		{"unknown field", `{"users":[],"tokn_lifetime":"1h"}`, "tokn_lifetime"},
		{"bad duration", `{"users":[],"token_lifetime":"soon"}`, "soon"},
		{"bad org", `{"org_id":"123","users":[]}`, "org_id"},
		{"user without password", `{"users":[{"username":"a"}]}`, "no password"},
		{"duplicate user", `{"users":[{"username":"a","password":"x"},{"username":"A","password":"y"}]}`, "twice"},
		{"run-as unknown", `{"users":[],"apps":[{"client_id":"c","run_as":"ghost"}]}`, "ghost"},
		{"bad key", `{"users":[],"apps":[{"client_id":"c","public_key_pem":"not pem"}]}`, "PEM"},
		{"missing key file", `{"users":[],"apps":[{"client_id":"c","public_key_file":"/nonexistent/k.pem"}]}`, "public key"},
		{"two keys", `{"users":[],"apps":[{"client_id":"c","public_key_pem":` + jsonString(pemKey) + `,"public_key_file":"k.pem"}]}`, "both"},
		{"bad instance url", `{"users":[],"instance_url":"example.com"}`, "http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(c.json), "")
			if err == nil {
				_, err = New(cfg)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrConfig mentioning %q", err, c.want)
			}
		})
	}
}

func jsonString(s string) string {
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}

func TestParsePublicKeyForms(t *testing.T) {
	k := testKeys()[0]
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{
		"PUBLIC KEY":            publicPEM(t, k),
		"RSA PUBLIC KEY":        pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.PublicKey)),
		"CERTIFICATE":           pemBlock("CERTIFICATE", der),
		"after a comment block": pemBlock("COMMENT", []byte("x")) + publicPEM(t, k),
	}
	for name, p := range forms {
		got, err := ParsePublicKey([]byte(p))
		if err != nil || !got.Equal(&k.PublicKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	tlsCfg, _ := selfSigned(t)
	ecCert := pemBlock("CERTIFICATE", tlsCfg.Certificates[0].Certificate[0])
	if _, err := ParsePublicKey([]byte(ecCert)); err == nil || !strings.Contains(err.Error(), "not an RSA key") {
		t.Fatalf("EC certificate: %v", err)
	}
	if _, err := ParsePublicKey([]byte(pemBlock("PUBLIC KEY", []byte("junk")))); err == nil {
		t.Fatal("junk PUBLIC KEY accepted")
	}
}

func TestStartPlainAndTLS(t *testing.T) {
	rec := &recorder{}
	cfg := testConfig(t)
	cfg.Issuer = rec
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plainURL, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, pool := selfSigned(t)
	tlsURL, err := s.StartTLS("127.0.0.1:0", CertConfig(tlsCfg.Certificates[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if !strings.HasPrefix(plainURL, "http://127.0.0.1:") || !strings.HasPrefix(tlsURL, "https://127.0.0.1:") {
		t.Fatalf("urls %s %s", plainURL, tlsURL)
	}
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer tlsClient.CloseIdleConnections()
	for base, client := range map[string]*http.Client{plainURL: http.DefaultClient, tlsURL: tlsClient} {
		status, resp := soapPost(t, client, base+"/services/Soap/u/62.0/", javaEnvelope(testUser, testPassword+testSecToken))
		var r byName
		if err := xml.Unmarshal([]byte(resp), &r); err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v", base, status, err)
		}
		if !strings.HasPrefix(r.ServerURL, base+"/services/Soap/u/62.0/") {
			t.Errorf("serverUrl %q does not point at %s", r.ServerURL, base)
		}
	}
	if _, err := s.StartTLS("127.0.0.1:0", &tls.Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("StartTLS without a certificate: %v", err)
	}
}

func TestStopEndsServe(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
	if _, err := s.Start("127.0.0.1:0"); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop: %v, want ErrStopped", err)
	}
}
