package auth

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// NewSOAP returns a Source that logs in with the partner SOAP API's login
// call (the flow of Salesforce's Pub/Sub quick start). password is the user's
// password followed by the security token, if the org requires one. The org
// ID and instance URL come from the login result.
func NewSOAP(l Login, username, password string) Source {
	s, err := l.resolve()
	switch {
	case err != nil:
	case username == "":
		err = fmt.Errorf("%w: SOAP login needs a username", ErrConfig)
	case password == "":
		err = fmt.Errorf("%w: SOAP login needs a password (with the security token appended if the org asks for one)", ErrConfig)
	}
	endpoint := s.loginURL + "/services/Soap/u/" + s.apiVersion + "/"
	return newCached("soap", s, err, func(ctx context.Context) (Credentials, error) {
		return soapLogin(ctx, s, endpoint, username, password)
	})
}

func soapLogin(ctx context.Context, s settings, endpoint, username, password string) (Credentials, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(soapEnvelope(username, password)))
	if err != nil {
		return Credentials{}, fmt.Errorf("soap login: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=UTF-8")
	req.Header.Set("SOAPAction", "login")
	status, body, err := s.send(ctx, req)
	if err != nil {
		return Credentials{}, fmt.Errorf("soap login: %w", err)
	}
	res, perr := parseSOAPLogin(body)
	if res.faultString != "" || res.faultCode != "" {
		if transientFault(res.faultCode) {
			return Credentials{}, fmt.Errorf("soap login: POST %s: HTTP %d, %s: %s", endpoint, status, res.faultCode, scrub(res.faultString, password))
		}
		return Credentials{}, &RejectedError{
			Method: "soap", URL: endpoint, StatusCode: status,
			Code:    res.faultCode,
			Message: scrub(res.faultString, password),
		}
	}
	if status != http.StatusOK {
		return Credentials{}, fmt.Errorf("soap login: POST %s: unexpected HTTP %d: %s", endpoint, status, scrub(string(body), password))
	}
	if perr != nil {
		return Credentials{}, fmt.Errorf("soap login: POST %s: parse response: %w", endpoint, perr)
	}
	var missing []string
	for name, v := range map[string]string{"sessionId": res.sessionID, "serverUrl": res.serverURL, "organizationId": res.orgID} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("soap login: POST %s: the response has no %s", endpoint, strings.Join(missing, ", "))
	}
	inst, err := normalizeInstanceURL(res.serverURL)
	if err != nil {
		return Credentials{}, fmt.Errorf("soap login: serverUrl in the response: %w", err)
	}
	return Credentials{AccessToken: res.sessionID, InstanceURL: inst, OrgID: res.orgID}, nil
}

// soapEnvelope is the partner API login request with the values escaped.
func soapEnvelope(username, password string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">`)
	b.WriteString(`<soapenv:Body><urn:login><urn:username>`)
	_ = xml.EscapeText(&b, []byte(username))
	b.WriteString(`</urn:username><urn:password>`)
	_ = xml.EscapeText(&b, []byte(password))
	b.WriteString(`</urn:password></urn:login></soapenv:Body></soapenv:Envelope>`)
	return b.String()
}

// soapResult holds what the client needs from a login response or fault.
type soapResult struct {
	sessionID, serverURL, orgID string
	faultCode, faultString      string
}

// parseSOAPLogin reads a login response by element local name, whatever the
// prefixes or element order: the first sessionId, serverUrl and
// organizationId, or faultcode and faultstring. A parse error is returned
// with whatever was read before it.
func parseSOAPLogin(body []byte) (soapResult, error) {
	var res soapResult
	fields := map[string]*string{
		"sessionId":      &res.sessionID,
		"serverUrl":      &res.serverURL,
		"organizationId": &res.orgID,
		"faultcode":      &res.faultCode,
		"faultstring":    &res.faultString,
	}
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	var current *string
	var text strings.Builder
	sawEnvelope := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			sawEnvelope = sawEnvelope || t.Name.Local == "Envelope"
			current = nil
			if p, ok := fields[t.Name.Local]; ok && *p == "" {
				current = p
				text.Reset()
			}
		case xml.CharData:
			if current != nil {
				text.Write(t)
			}
		case xml.EndElement:
			if current != nil {
				*current = strings.TrimSpace(text.String())
				current = nil
			}
		}
	}
	if !sawEnvelope {
		return res, errors.New("not a SOAP envelope")
	}
	return res, nil
}

// transientFault reports whether a SOAP faultcode is a server-side condition
// that may clear on retry, rather than a refusal of the credentials.
func transientFault(code string) bool {
	_, local, _ := strings.Cut(code, ":")
	if local == "" {
		local = code
	}
	switch local {
	case "Server", "SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED":
		return true
	}
	return false
}
