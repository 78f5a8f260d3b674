package testkeys

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestPairIsStableAndDistinct(t *testing.T) {
	a1, b1 := Pair()
	a2, b2 := Pair()
	if a1 != a2 || b1 != b2 {
		t.Fatal("Pair returned new keys on a second call")
	}
	if a1.Equal(b1) {
		t.Fatal("Pair returned the same key twice")
	}
	blk, _ := pem.Decode([]byte(PublicPEM(a1)))
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil || !a1.PublicKey.Equal(pub) {
		t.Fatalf("PublicPEM does not hold the key's public half: %v", err)
	}
	blk, _ = pem.Decode(PrivatePEM(b1))
	priv, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil || !priv.Equal(b1) {
		t.Fatalf("PrivatePEM does not hold the key: %v", err)
	}
}
