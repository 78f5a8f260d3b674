package login

import (
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// javaEnvelope is the request shape of the official Java example.
func javaEnvelope(user, password string) string {
	var u, p strings.Builder
	_ = xml.EscapeText(&u, []byte(user))
	_ = xml.EscapeText(&p, []byte(password))
	return `<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/' xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' xmlns:urn='urn:partner.soap.sforce.com'><soapenv:Body>  <urn:login>    <urn:username>` +
		u.String() + `</urn:username>    <urn:password>` + p.String() + `</urn:password>  </urn:login></soapenv:Body></soapenv:Envelope>`
}

// pythonEnvelope wraps the values in CDATA as the official Python example does.
func pythonEnvelope(user, password string) string {
	return `<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
  <env:Body>
    <n1:login xmlns:n1="urn:partner.soap.sforce.com">
      <n1:username><![CDATA[` + user + `]]></n1:username>
      <n1:password><![CDATA[` + password + `]]></n1:password>
    </n1:login>
  </env:Body>
</env:Envelope>`
}

// node is a generic element tree: children in document order, like
// Python's ElementTree indexing.
type node struct {
	XMLName  xml.Name
	Children []node `xml:",any"`
	Text     string `xml:",chardata"`
}

func (n node) names() []string {
	var out []string
	for _, c := range n.Children {
		out = append(out, c.XMLName.Local)
	}
	return out
}

var wantResultOrder = []string{"metadataServerUrl", "passwordExpired", "sandbox", "serverUrl", "sessionId", "userId", "userInfo"}

var wantUserInfoOrder = []string{
	"accessibilityMode", "chatterExternal", "currencySymbol", "orgAttachmentFileSizeLimit",
	"orgDefaultCurrencyIsoCode", "orgDefaultCurrencyLocale", "orgDisallowHtmlAttachments", "orgHasPersonAccounts",
	"organizationId", "organizationMultiCurrency", "organizationName", "profileId", "roleId", "sessionSecondsValid",
	"userDefaultCurrencyIsoCode", "userEmail", "userFullName", "userId", "userLanguage", "userLocale", "userName",
	"userTimeZone", "userType", "userUiSkin",
}

// byName reads the result as the Java example does: by element local name.
type byName struct {
	ServerURL string `xml:"Body>loginResponse>result>serverUrl"`
	SessionID string `xml:"Body>loginResponse>result>sessionId"`
	UserID    string `xml:"Body>loginResponse>result>userId"`
	OrgID     string `xml:"Body>loginResponse>result>userInfo>organizationId"`
	Seconds   int    `xml:"Body>loginResponse>result>userInfo>sessionSecondsValid"`
}

func TestSOAPLoginParsesByNameAndByPosition(t *testing.T) {
	_, ts, rec := newTestServer(t, nil)
	for name, body := range map[string]string{
		"java":   javaEnvelope(testUser, testPassword+testSecToken),
		"python": pythonEnvelope("ARCHIVER@example.com", testPassword+testSecToken),
	} {
		t.Run(name, func(t *testing.T) {
			status, resp := soapPost(t, ts.Client(), ts.URL+"/services/Soap/u/57.0/", body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, resp)
			}
			wantServerURL := ts.URL + "/services/Soap/u/57.0/" + testOrgID[:15]

			var n byName
			if err := xml.Unmarshal([]byte(resp), &n); err != nil {
				t.Fatalf("by name: %v", err)
			}
			if n.ServerURL != wantServerURL || n.OrgID != testOrgID || n.UserID != testUserID || n.SessionID == "" {
				t.Fatalf("by name: %+v", n)
			}
			if n.Seconds != 90*60 {
				t.Errorf("sessionSecondsValid = %d, want %d", n.Seconds, 90*60)
			}
			if _, ok := rec.lifetime(n.SessionID); !ok {
				t.Errorf("session ID was not given to the issuer")
			}
			if strings.Count(n.SessionID, ".") > 0 || !strings.HasPrefix(n.SessionID, testOrgID[:15]+"!") {
				t.Errorf("session ID %q is not an opaque session-ID-shaped token", n.SessionID)
			}

			// By position, as Python's root[0][0][0], result[3], result[4], result[6], userInfo[8].
			var root node
			if err := xml.Unmarshal([]byte(resp), &root); err != nil {
				t.Fatalf("by position: %v", err)
			}
			if root.XMLName.Local != "Envelope" || len(root.Children) != 1 || root.Children[0].XMLName.Local != "Body" {
				t.Fatalf("root children = %v, want [Body]", root.names())
			}
			result := root.Children[0].Children[0].Children[0]
			if result.XMLName.Local != "result" {
				t.Fatalf("root[0][0][0] = %s, want result", result.XMLName.Local)
			}
			if got := result.names(); !slices.Equal(got, wantResultOrder) {
				t.Fatalf("result children = %v, want %v", got, wantResultOrder)
			}
			userInfo := result.Children[6]
			if got := userInfo.names(); !slices.Equal(got, wantUserInfoOrder) {
				t.Fatalf("userInfo children = %v, want %v", got, wantUserInfoOrder)
			}
			if result.Children[3].Text != wantServerURL {
				t.Errorf("result[3] = %q, want %q", result.Children[3].Text, wantServerURL)
			}
			if result.Children[4].Text != n.SessionID {
				t.Errorf("result[4] = %q, want the session ID", result.Children[4].Text)
			}
			if userInfo.Children[8].Text != testOrgID {
				t.Errorf("userInfo[8] = %q, want %q", userInfo.Children[8].Text, testOrgID)
			}
		})
	}
}

// faultBody is a SOAP fault read by local name.
type faultBody struct {
	Code          string `xml:"Body>Fault>faultcode"`
	String        string `xml:"Body>Fault>faultstring"`
	ExceptionCode string `xml:"Body>Fault>detail>LoginFault>exceptionCode"`
}

func TestSOAPLoginRejected(t *testing.T) {
	_, ts, _ := newTestServer(t, nil)
	cases := map[string]string{
		"wrong password":         javaEnvelope(testUser, "nope"+testSecToken),
		"missing security token": javaEnvelope(testUser, testPassword),
		"unknown user":           javaEnvelope("nobody@example.com", testPassword+testSecToken),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			status, resp := soapPost(t, ts.Client(), ts.URL+"/services/Soap/u/62.0/", body)
			if status != http.StatusInternalServerError {
				t.Fatalf("status = %d, want 500", status)
			}
			var f faultBody
			if err := xml.Unmarshal([]byte(resp), &f); err != nil {
				t.Fatal(err)
			}
			if f.Code != "sf:INVALID_LOGIN" || f.String != InvalidLoginFault || f.ExceptionCode != "INVALID_LOGIN" {
				t.Fatalf("fault = %+v", f)
			}
			if f.String != "INVALID_LOGIN: Invalid username, password, security token; or user locked out." {
				t.Fatalf("faultstring %q differs from PROTOCOL.md §3.3", f.String)
			}
		})
	}
}

func TestSOAPBadRequests(t *testing.T) {
	_, ts, _ := newTestServer(t, nil)
	cases := []struct {
		name, path, body, code string
	}{
		{"not xml", "/services/Soap/u/62.0/", "username=x", "soapenv:Client"},
		{"no login element", "/services/Soap/u/62.0/", `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>`, "soapenv:Client"},
		{"bad version", "/services/Soap/u/latest/", javaEnvelope(testUser, testPassword+testSecToken), "sf:UNSUPPORTED_API_VERSION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, resp := soapPost(t, ts.Client(), ts.URL+c.path, c.body)
			var f faultBody
			if err := xml.Unmarshal([]byte(resp), &f); err != nil {
				t.Fatalf("status %d, body %q: %v", status, resp, err)
			}
			if status != http.StatusInternalServerError || f.Code != c.code {
				t.Fatalf("status %d, fault %+v, want 500 %s", status, f, c.code)
			}
		})
	}
	// Without the trailing slash the endpoint answers too.
	status, _ := soapPost(t, ts.Client(), ts.URL+"/services/Soap/u/43.0", javaEnvelope(testUser, testPassword+testSecToken))
	if status != http.StatusOK {
		t.Fatalf("no trailing slash: status %d", status)
	}
}

func TestSOAPConfiguredInstanceURL(t *testing.T) {
	_, ts, _ := newTestServer(t, func(c *Config) {
		c.InstanceURL = "https://example.my.salesforce.com/"
		c.Sandbox = true
	})
	status, resp := soapPost(t, ts.Client(), ts.URL+"/services/Soap/u/62.0/", javaEnvelope(testUser, testPassword+testSecToken))
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	var r struct {
		ServerURL string `xml:"Body>loginResponse>result>serverUrl"`
		Sandbox   string `xml:"Body>loginResponse>result>sandbox"`
	}
	if err := xml.Unmarshal([]byte(resp), &r); err != nil {
		t.Fatal(err)
	}
	want := "https://example.my.salesforce.com/services/Soap/u/62.0/" + testOrgID[:15]
	if r.ServerURL != want || r.Sandbox != strconv.FormatBool(true) {
		t.Fatalf("got %+v, want serverUrl %s and sandbox true", r, want)
	}
}
