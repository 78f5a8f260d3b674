package login

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Namespaces of the partner SOAP API.
const (
	nsEnvelope = "http://schemas.xmlsoap.org/soap/envelope/"
	nsPartner  = "urn:partner.soap.sforce.com"
	nsFault    = "urn:fault.partner.soap.sforce.com"
	nsXSI      = "http://www.w3.org/2001/XMLSchema-instance"
)

// InvalidLoginFault is the faultstring of a rejected SOAP login (PROTOCOL.md §3.3).
const InvalidLoginFault = "INVALID_LOGIN: Invalid username, password, security token; or user locked out."

var apiVersionRe = regexp.MustCompile(`^[0-9]{1,3}\.[0-9]$`)

// handleSOAP answers POST /services/Soap/u/{version}/ with a login result or fault.
func (s *Server) handleSOAP(w http.ResponseWriter, r *http.Request) {
	version := r.PathValue("version")
	if !apiVersionRe.MatchString(version) {
		writeFault(w, "sf:UNSUPPORTED_API_VERSION", "UNSUPPORTED_API_VERSION: Invalid Api version specified on URL", "")
		return
	}
	username, password, err := parseLoginRequest(r.Body)
	if err != nil {
		s.log.Info("soap login: bad request", "err", err)
		writeFault(w, "soapenv:Client", "Unable to parse the login request: "+err.Error(), "")
		return
	}
	u := s.user(username)
	if u == nil || password != u.Password+u.SecurityToken {
		s.log.Info("soap login rejected", "username", username)
		writeFault(w, "sf:INVALID_LOGIN", InvalidLoginFault, "INVALID_LOGIN")
		return
	}
	token, lifetime := s.issue(u)
	s.log.Info("soap login", "username", u.Username, "api_version", version)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, s.loginResponse(r, version, u, token, int(lifetime.Seconds())))
}

// parseLoginRequest finds <login><username/><password/></login> in a SOAP
// envelope by local name, so that any prefix, CDATA or whitespace works.
func parseLoginRequest(body io.Reader) (username, password string, err error) {
	dec := xml.NewDecoder(body)
	var stack []string
	var text strings.Builder
	foundLogin := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			text.Reset()
			if t.Name.Local == "login" {
				foundLogin = true
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			if len(stack) >= 2 && stack[len(stack)-2] == "login" {
				switch t.Name.Local {
				case "username":
					username = strings.TrimSpace(text.String())
				case "password":
					password = text.String()
				}
			}
			stack = stack[:len(stack)-1]
			text.Reset()
		}
	}
	if !foundLogin {
		return "", "", errors.New("no login element in the SOAP body")
	}
	return username, password, nil
}

// loginResponse renders the LoginResult with its children in the exact WSDL
// sequence order (PROTOCOL.md §3.3). Clients parse it by position, so no
// optional element (upgradeMessage, upgradeURL) is emitted and the envelope
// has no Header: root[0] is Body, root[0][0][0] is result.
func (s *Server) loginResponse(r *http.Request, version string, u *User, token string, secondsValid int) string {
	base := s.instanceBase(r)
	org15 := s.cfg.OrgID[:15]
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + nsEnvelope + `" xmlns="` + nsPartner + `" xmlns:xsi="` + nsXSI + `">`)
	b.WriteString(`<soapenv:Body><loginResponse><result>`)
	el(&b, "metadataServerUrl", base+"/services/Soap/m/"+version+"/"+org15)
	el(&b, "passwordExpired", "false")
	el(&b, "sandbox", strconv.FormatBool(s.cfg.Sandbox))
	el(&b, "serverUrl", base+"/services/Soap/u/"+version+"/"+org15)
	el(&b, "sessionId", token)
	el(&b, "userId", u.UserID)
	b.WriteString(`<userInfo>`)
	el(&b, "accessibilityMode", "false")
	el(&b, "chatterExternal", "false")
	el(&b, "currencySymbol", "$")
	el(&b, "orgAttachmentFileSizeLimit", "5242880")
	el(&b, "orgDefaultCurrencyIsoCode", "USD")
	el(&b, "orgDefaultCurrencyLocale", "en_US")
	el(&b, "orgDisallowHtmlAttachments", "false")
	el(&b, "orgHasPersonAccounts", "true")
	el(&b, "organizationId", s.cfg.OrgID)
	el(&b, "organizationMultiCurrency", "false")
	el(&b, "organizationName", s.cfg.OrgName)
	el(&b, "profileId", "00e000000000001AAA")
	b.WriteString(`<roleId xsi:nil="true"/>`)
	el(&b, "sessionSecondsValid", strconv.Itoa(secondsValid))
	b.WriteString(`<userDefaultCurrencyIsoCode xsi:nil="true"/>`)
	el(&b, "userEmail", u.Email)
	el(&b, "userFullName", u.FullName)
	el(&b, "userId", u.UserID)
	el(&b, "userLanguage", "en_US")
	el(&b, "userLocale", "en_US")
	el(&b, "userName", u.Username)
	el(&b, "userTimeZone", "America/Los_Angeles")
	el(&b, "userType", "Standard")
	el(&b, "userUiSkin", "Theme3")
	b.WriteString(`</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>`)
	return b.String()
}

// writeFault writes a SOAP 1.1 fault with HTTP 500. exceptionCode, if set,
// adds a detail/sf:LoginFault (its shape is UNCONFIRMED, see doc.go).
func writeFault(w http.ResponseWriter, faultcode, faultstring, exceptionCode string) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + nsEnvelope + `" xmlns:sf="` + nsFault + `" xmlns:xsi="` + nsXSI + `">`)
	b.WriteString(`<soapenv:Body><soapenv:Fault>`)
	el(&b, "faultcode", faultcode)
	el(&b, "faultstring", faultstring)
	if exceptionCode != "" {
		msg := strings.TrimPrefix(faultstring, exceptionCode+": ")
		b.WriteString(`<detail><sf:LoginFault xsi:type="sf:LoginFault">`)
		el(&b, "sf:exceptionCode", exceptionCode)
		el(&b, "sf:exceptionMessage", msg)
		b.WriteString(`</sf:LoginFault></detail>`)
	}
	b.WriteString(`</soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, b.String())
}

// el writes <name>escaped text</name>.
func el(b *strings.Builder, name, text string) {
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}
