// Package login is the emulator's HTTP server for the Salesforce login
// endpoints, so that every auth flow of sfarchive can be exercised without an
// org:
//
//   - POST /services/Soap/u/{version}/ — the partner SOAP login. The result's
//     children come in the exact WSDL sequence order (metadataServerUrl,
//     passwordExpired, sandbox, serverUrl, sessionId, userId, userInfo) and
//     userInfo holds the full GetUserInfoResult sequence, because the official
//     Python example reads them by position (result[3], result[4], result[6],
//     userInfo[8]) while Java reads them by name. A wrong username or password
//     gets a SOAP fault sf:INVALID_LOGIN with HTTP 500.
//   - POST /services/oauth2/token — grant_type password, client_credentials
//     and urn:ietf:params:oauth:grant-type:jwt-bearer. JWT assertions must be
//     RS256, signed with the key whose public half the app is configured with,
//     iss = client_id, aud = the login URL (with or without a trailing slash),
//     sub = a configured username, exp in the future.
//   - GET /services/oauth2/userinfo — for a Bearer token this server issued.
//
// Tokens are random and opaque (never JWTs, which the real Pub/Sub API
// rejects), shaped like a session ID ("<15-char org ID>!<96 characters>").
// Each one is handed to Config.Issuer (the gRPC emulator's AddToken) with the
// configured lifetime.
//
// # Config file
//
// LoadConfig reads JSON; every field but users is optional:
//
//	{
//	  "org_id": "00D000000000001AAA",
//	  "org_name": "Emulated Org",
//	  "sandbox": false,
//	  "token_lifetime": "2h",
//	  "instance_url": "",
//	  "login_url": "",
//	  "users": [
//	    {"username": "archiver@example.com", "password": "pw", "security_token": "TOKEN",
//	     "user_id": "005000000000001AAA", "full_name": "Archiver", "email": "archiver@example.com"}
//	  ],
//	  "apps": [
//	    {"client_id": "3MVG9emulator", "client_secret": "secret",
//	     "public_key_file": "app-cert.pem", "run_as": "archiver@example.com"}
//	  ]
//	}
//
// public_key_file is relative to the config file; public_key_pem holds the
// PEM inline instead. An app without run_as cannot use client_credentials;
// one without a key cannot use the JWT bearer flow. instance_url and
// login_url default to the server's own base URL as the client reached it.
//
// # Where it differs from Salesforce
//
//   - Facts marked UNCONFIRMED in PROTOCOL.md §3: the HTTP 500 status and the
//     detail/sf:LoginFault of the SOAP fault; the OAuth error bodies. The
//     invalid_client error for a bad client secret uses HTTP 401 (Salesforce
//     is reported to answer 400).
//   - The JWT flow accepts only Config.LoginURL (or the server's own URL) as
//     aud; Salesforce accepts https://login.salesforce.com or
//     https://test.salesforce.com whatever host the token is requested from.
//     Any configured user may be the subject (no pre-authorization check).
//   - The security token is always required when configured (no trusted IP
//     ranges); usernames match case-insensitively.
//   - A bad token at userinfo gets HTTP 403 "Bad_OAuth_Token".
//   - No refresh tokens, no authorization-code or device flows, no logout.
package login
