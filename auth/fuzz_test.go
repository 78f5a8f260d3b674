package auth

import (
	"strings"
	"testing"
)

// FuzzParseSOAPLogin: any bytes from a server are handled without a panic,
// and a parsed session ID never carries surrounding whitespace.
func FuzzParseSOAPLogin(f *testing.F) {
	f.Add([]byte(`<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><loginResponse><result><serverUrl>https://x/s</serverUrl><sessionId>t</sessionId><userInfo><organizationId>00D</organizationId></userInfo></result></loginResponse></e:Body></e:Envelope>`))
	f.Add([]byte(`<Envelope><Body><Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>x</faultstring></Fault></Body></Envelope>`))
	f.Add([]byte(`<a><sessionId><sessionId>x</sessionId></sessionId></a>`))
	f.Add([]byte{0xff, '<'})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, _ := parseSOAPLogin(b)
		if res.sessionID != strings.TrimSpace(res.sessionID) {
			t.Fatalf("session ID %q not trimmed", res.sessionID)
		}
	})
}

// FuzzNormalizeLoginURL: never panics; what it accepts is stable.
func FuzzNormalizeLoginURL(f *testing.F) {
	for _, s := range []string{"", "https://login.salesforce.com/", "http://127.0.0.1:1", "login.salesforce.com", "https://%zz", "https://a:b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeLoginURL(s)
		if err != nil {
			return
		}
		again, err := NormalizeLoginURL(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeLoginURL(%q) = %q, which normalizes to %q, %v", s, got, again, err)
		}
	})
}
