package wat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// The compact serialization of RFC 7516 §7.1 with "dir" key management
// (§4.5 of RFC 7518: the key is the content-encryption key, so the
// encrypted-key segment is empty) and A256GCM content encryption (RFC 7518
// §5.3): BASE64URL(header) '.' '' '.' BASE64URL(iv) '.' BASE64URL(ciphertext)
// '.' BASE64URL(tag), with ASCII(BASE64URL(header)) as the additional
// authenticated data, so the header — and the key id in it — cannot be
// changed either.

type jweHeader struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

const tokenType = "behalf-wat+jwe"

// Strict: a segment has exactly one encoding, so no altered token opens.
var b64 = base64.RawURLEncoding.Strict()

func seal(kid string, key, payload []byte) (string, error) {
	header, err := json.Marshal(jweHeader{Alg: "dir", Enc: "A256GCM", Kid: kid, Typ: tokenType})
	if err != nil {
		return "", err
	}
	aead, err := newGCM(key)
	if err != nil {
		return "", err
	}
	iv := make([]byte, aead.NonceSize())
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	protected := b64.EncodeToString(header)
	sealed := aead.Seal(nil, iv, payload, []byte(protected))
	ct, tag := sealed[:len(sealed)-aead.Overhead()], sealed[len(sealed)-aead.Overhead():]
	return protected + ".." + b64.EncodeToString(iv) + "." + b64.EncodeToString(ct) + "." + b64.EncodeToString(tag), nil
}

type parsedJWE struct {
	protected  string
	kid        string
	iv, tagged []byte
}

var errMalformed = errors.New("wat: malformed token")

func parse(token string) (*parsedJWE, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 5 || parts[1] != "" {
		return nil, errMalformed
	}
	rawHeader, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, errMalformed
	}
	var h jweHeader
	if err := json.Unmarshal(rawHeader, &h); err != nil || h.Alg != "dir" || h.Enc != "A256GCM" || h.Typ != tokenType || h.Kid == "" {
		return nil, errMalformed
	}
	iv, err := b64.DecodeString(parts[2])
	if err != nil || len(iv) != 12 {
		return nil, errMalformed
	}
	ct, err := b64.DecodeString(parts[3])
	if err != nil {
		return nil, errMalformed
	}
	tag, err := b64.DecodeString(parts[4])
	if err != nil || len(tag) != 16 {
		return nil, errMalformed
	}
	return &parsedJWE{protected: parts[0], kid: h.Kid, iv: iv, tagged: append(ct, tag...)}, nil
}

func (j *parsedJWE) open(key []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, j.iv, j.tagged, []byte(j.protected))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
