// Package auth obtains the credentials a Pub/Sub API call carries — access
// token, instance URL and org ID — and obtains new ones when the server says
// the token is no longer valid.
//
// Four Sources:
//
//   - NewSOAP: the partner SOAP login (username, password + security token),
//     as in Salesforce's Pub/Sub quick start. The response is read by element
//     local name; the instance URL is scheme://host[:port] of serverUrl and the
//     org ID is userInfo/organizationId.
//   - NewClientCredentials: the OAuth 2.0 client credentials flow.
//   - NewJWT: the OAuth 2.0 JWT bearer flow, with an RS256 assertion signed
//     here (crypto/rsa; iss = client ID, sub = username, exp = now + 3 min).
//   - NewStatic: a token the user supplies; it cannot be refreshed.
//
// For the OAuth flows the org ID comes from /services/oauth2/userinfo on the
// login URL, or failing that from the token response's id URL.
//
// A Source caches its credentials: Credentials logs in on first use and
// Refresh logs in again; concurrent callers share one login. Every HTTP call
// is bounded by Login.Timeout (default 30 s).
//
// Errors: a refusal by the server (wrong password, client secret or key,
// expired assertion, wrong audience) is a *RejectedError wrapping
// ErrLoginRejected, carrying the server's message; retrying will not help.
// Unusable settings wrap ErrConfig. Network failures and 5xx answers are
// returned as they are (retrying may help).
//
// Secrets never reach errors or logs: passwords, client secrets and tokens
// are scrubbed from anything a server sends back, request bodies are never
// quoted, and Credentials prints its token as "[redacted]" through String,
// GoString and LogValue.
package auth
