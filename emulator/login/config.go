package login

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultOrgID is the org ID used when Config.OrgID is empty. It matches the
// gRPC emulator's default so that tokens and tenant IDs line up.
const DefaultOrgID = "00D000000000001AAA"

// DefaultTokenLifetime is the session lifetime used when Config.TokenLifetime
// is zero (Salesforce's default session timeout is two hours).
const DefaultTokenLifetime = 2 * time.Hour

// TokenIssuer receives every access token the login server issues, so that
// the gRPC emulator accepts it in the accesstoken header. *emulator.Server
// satisfies it.
type TokenIssuer interface {
	AddToken(token string, lifetime time.Duration)
}

// Config describes the emulated org: its users, its connected apps and how
// the login server answers. The exported JSON-tagged fields are the format of
// the config file read by LoadConfig; Issuer, Now and Logger are set in code.
type Config struct {
	// OrgID is the 18-character org ID returned by every login; "" → DefaultOrgID.
	OrgID string `json:"org_id,omitempty"`
	// OrgName is userInfo/organizationName; "" → "sfarchive emulator".
	OrgName string `json:"org_name,omitempty"`
	// Sandbox is reported in the SOAP result's <sandbox> element.
	Sandbox bool `json:"sandbox,omitempty"`
	// TokenLifetime is how long an issued token is valid; 0 → DefaultTokenLifetime.
	TokenLifetime Duration `json:"token_lifetime,omitempty"`
	// InstanceURL is returned as the SOAP serverUrl base and the OAuth
	// instance_url. "" → the login server's own base URL (scheme://host:port
	// of the request), which is what the gRPC emulator's Config.InstanceURL
	// should then be set to.
	InstanceURL string `json:"instance_url,omitempty"`
	// LoginURL is the URL clients log in at: the only accepted JWT "aud"
	// (with or without a trailing slash) and the base of the OAuth "id" URL.
	// "" → the login server's own base URL.
	LoginURL string `json:"login_url,omitempty"`
	// Users who may log in.
	Users []User `json:"users"`
	// Apps are the connected apps for the OAuth flows.
	Apps []App `json:"apps,omitempty"`

	// Issuer, if set, is told about every issued token.
	Issuer TokenIssuer `json:"-"`
	// Now is the clock; nil → time.Now.
	Now func() time.Time `json:"-"`
	// Logger receives one line per login attempt (never a secret); nil → discard.
	Logger *slog.Logger `json:"-"`
}

// User is an org user.
type User struct {
	// Username, matched case-insensitively as Salesforce does.
	Username string `json:"username"`
	// Password without the security token.
	Password string `json:"password"`
	// SecurityToken is appended to the password by SOAP and password-grant
	// clients; "" means the user logs in with the bare password (a trusted
	// IP range in a real org).
	SecurityToken string `json:"security_token,omitempty"`
	// UserID is the 18-character user ID; "" → a generated 005… ID.
	UserID string `json:"user_id,omitempty"`
	// FullName and Email appear in userInfo and userinfo; defaults derive
	// from Username.
	FullName string `json:"full_name,omitempty"`
	Email    string `json:"email,omitempty"`
}

// App is a connected app.
type App struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// PublicKeyPEM (inline) or PublicKeyFile (a path, relative to the config
	// file's directory) holds the key that verifies JWT bearer assertions: a
	// PEM "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" block. Without one the
	// app cannot use the JWT bearer flow.
	PublicKeyPEM  string `json:"public_key_pem,omitempty"`
	PublicKeyFile string `json:"public_key_file,omitempty"`
	// RunAs is the username the client credentials flow logs in as; "" means
	// the app has no client credentials flow enabled.
	RunAs string `json:"run_as,omitempty"`

	publicKey *rsa.PublicKey
}

// Duration is a time.Duration that reads from JSON as a Go duration string
// ("2h", "90s") or a number of seconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration must be a string like \"2h\" or a number of seconds, got %s", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// LoadConfig reads a JSON config file. Public key files are resolved relative
// to the file's directory. The result is not yet validated: New does that.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read login config: %w", err)
	}
	cfg, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return Config{}, fmt.Errorf("login config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a JSON config; baseDir resolves relative public_key_file
// paths. Unknown fields are an error, so that a typo does not pass silently.
func ParseConfig(data []byte, baseDir string) (Config, error) {
	var cfg Config
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	for i := range cfg.Apps {
		p := cfg.Apps[i].PublicKeyFile
		if p != "" && !filepath.IsAbs(p) && baseDir != "" {
			cfg.Apps[i].PublicKeyFile = filepath.Join(baseDir, p)
		}
	}
	return cfg, nil
}

// normalize fills defaults, checks the config and loads public keys. It works
// on a copy so the caller's slices are not modified.
func (cfg Config) normalize() (Config, error) {
	if cfg.OrgID == "" {
		cfg.OrgID = DefaultOrgID
	}
	if len(cfg.OrgID) != 15 && len(cfg.OrgID) != 18 || !strings.HasPrefix(cfg.OrgID, "00D") {
		return cfg, fmt.Errorf("%w: org_id %q must be a 15- or 18-character ID starting with 00D", ErrConfig, cfg.OrgID)
	}
	if cfg.OrgName == "" {
		cfg.OrgName = "sfarchive emulator"
	}
	if cfg.TokenLifetime < 0 {
		return cfg, fmt.Errorf("%w: token_lifetime must not be negative", ErrConfig)
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = Duration(DefaultTokenLifetime)
	}
	for _, u := range []*string{&cfg.InstanceURL, &cfg.LoginURL} {
		*u = strings.TrimRight(*u, "/")
		if *u != "" && !strings.HasPrefix(*u, "http://") && !strings.HasPrefix(*u, "https://") {
			return cfg, fmt.Errorf("%w: %q must be an http:// or https:// URL", ErrConfig, *u)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	users := make([]User, len(cfg.Users))
	seen := map[string]bool{}
	for i, u := range cfg.Users {
		if u.Username == "" {
			return cfg, fmt.Errorf("%w: users[%d] has no username", ErrConfig, i)
		}
		key := strings.ToLower(u.Username)
		if seen[key] {
			return cfg, fmt.Errorf("%w: user %q is listed twice", ErrConfig, u.Username)
		}
		seen[key] = true
		if u.Password == "" {
			return cfg, fmt.Errorf("%w: user %q has no password", ErrConfig, u.Username)
		}
		if u.UserID == "" {
			u.UserID = fmt.Sprintf("005%012dAAA", i+1)
		}
		if u.Email == "" {
			u.Email = u.Username
		}
		if u.FullName == "" {
			u.FullName = strings.SplitN(u.Username, "@", 2)[0]
		}
		users[i] = u
	}
	cfg.Users = users

	apps := make([]App, len(cfg.Apps))
	seenApps := map[string]bool{}
	for i, a := range cfg.Apps {
		if a.ClientID == "" {
			return cfg, fmt.Errorf("%w: apps[%d] has no client_id", ErrConfig, i)
		}
		if seenApps[a.ClientID] {
			return cfg, fmt.Errorf("%w: app %q is listed twice", ErrConfig, a.ClientID)
		}
		seenApps[a.ClientID] = true
		if a.RunAs != "" && !seen[strings.ToLower(a.RunAs)] {
			return cfg, fmt.Errorf("%w: app %q runs as unknown user %q", ErrConfig, a.ClientID, a.RunAs)
		}
		if a.PublicKeyPEM != "" && a.PublicKeyFile != "" {
			return cfg, fmt.Errorf("%w: app %q sets both public_key_pem and public_key_file", ErrConfig, a.ClientID)
		}
		pemBytes := []byte(a.PublicKeyPEM)
		if a.PublicKeyFile != "" {
			b, err := os.ReadFile(a.PublicKeyFile)
			if err != nil {
				return cfg, fmt.Errorf("%w: app %q public key: %w", ErrConfig, a.ClientID, err)
			}
			pemBytes = b
		}
		if len(pemBytes) > 0 {
			k, err := ParsePublicKey(pemBytes)
			if err != nil {
				return cfg, fmt.Errorf("%w: app %q: %w", ErrConfig, a.ClientID, err)
			}
			a.publicKey = k
		}
		apps[i] = a
	}
	cfg.Apps = apps
	return cfg, nil
}

// ParsePublicKey reads an RSA public key from the first usable PEM block:
// "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE" (the form
// a Salesforce connected app takes).
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE PEM block found")
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			cert, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				pub = cert.PublicKey
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s holds a %T, not an RSA key", block.Type, pub)
		}
		return k, nil
	}
}
