// Package testkeys gives tests RSA keys for the JWT bearer flow without
// paying for key generation in every test: two 2048-bit keys, made once per
// test binary, and their PEM forms.
package testkeys

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
)

var pair = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("testkeys: generate an RSA key: %v", err))
		}
		return k
	}
	return gen(), gen()
})

// Pair returns two distinct RSA keys, the same ones on every call in a test
// binary: typically a connected app's key and a stranger's.
func Pair() (app, stranger *rsa.PrivateKey) { return pair() }

// PublicPEM is the key's public half as a PEM "PUBLIC KEY" block (PKIX).
func PublicPEM(k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(fmt.Sprintf("testkeys: marshal a public key: %v", err)) // cannot happen for an RSA key
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// PrivatePEM is the key as a PEM "RSA PRIVATE KEY" block (PKCS#1).
func PrivatePEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}
