package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// LoadRSAPrivateKey reads the first private key PEM block: PKCS #1
// ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY", RSA only). Other blocks, such
// as a certificate before the key, are skipped. Encrypted keys are refused;
// errors never contain key material.
func LoadRSAPrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: no RSA PRIVATE KEY or PRIVATE KEY PEM block found", ErrConfig)
		}
		var key *rsa.PrivateKey
		switch block.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)", ErrConfig)
		case "RSA PRIVATE KEY":
			if _, ok := block.Headers["DEK-Info"]; ok {
				return nil, fmt.Errorf("%w: the private key is encrypted; decrypt it first (openssl rsa -in key.pem -out plain.pem)", ErrConfig)
			}
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: parse RSA PRIVATE KEY: %w", ErrConfig, err)
			}
			key = k
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: parse PRIVATE KEY: %w", ErrConfig, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%w: the PRIVATE KEY is a %T; the JWT bearer flow needs an RSA key", ErrConfig, k)
			}
			key = rk
		default:
			continue
		}
		if err := key.Validate(); err != nil {
			return nil, fmt.Errorf("%w: invalid RSA key: %w", ErrConfig, err)
		}
		return key, nil
	}
}

// jwtClaims are the claims of a JWT bearer assertion.
type jwtClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
}

// signJWT returns header.claims.signature, RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
func signJWT(key *rsa.PrivateKey, claims jwtClaims) (string, error) {
	if key == nil {
		return "", errors.New("no private key")
	}
	header, err := json.Marshal(map[string]string{"alg": "RS256"})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signingInput := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(body)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
