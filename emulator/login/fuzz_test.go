package login

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzParseLoginRequest: any request body is handled without a panic.
func FuzzParseLoginRequest(f *testing.F) {
	f.Add([]byte(javaEnvelope("u", "p")))
	f.Add([]byte(pythonEnvelope("u", "p")))
	f.Add([]byte(`<login><username>a</username></login>`))
	f.Add([]byte(`<<<`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseLoginRequest(bytes.NewReader(b))
	})
}

// FuzzJWTAssertion: any assertion is answered with 200 or an OAuth error, never a panic.
func FuzzJWTAssertion(f *testing.F) {
	s, err := New(testConfig(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.AAAA")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIzTVZHOWVtdWxhdG9yY2xpZW50IiwiYXVkIjpbMSwyXX0.AAAA")
	f.Fuzz(func(t *testing.T, assertion string) {
		form := url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion}}
		req := httptest.NewRequest(http.MethodPost, "/services/oauth2/token", bytes.NewBufferString(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d", rec.Code)
		}
	})
}
