package pkcs11

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scheme starts every key id of this backend: an RFC 7512 PKCS#11 URI.
const Scheme = "pkcs11:"

const (
	// maxID is the longest key id: the vault's envelope stores it after
	// a one-byte length.
	maxID = 255
	// maxTokenLabel is the size of CK_TOKEN_INFO's label field.
	maxTokenLabel = 32
)

// ErrBadID reports a key id that is not a PKCS#11 URI this backend
// accepts.
var ErrBadID = errors.New("pkcs11: bad key id")

// KeyID returns the key id of the object labelled object in the token
// labelled token: pkcs11:token=<token>;object=<object>, percent-encoded
// as RFC 7512 §2.3 requires and in the one form ParseKeyID accepts.
func KeyID(token, object string) string {
	return Scheme + "token=" + escape(token) + ";object=" + escape(object)
}

// ParseKeyID returns the token and object labels of id, which must be
// exactly KeyID(token, object): a path of the token and object attributes
// in that order (RFC 7512 §2.3), no query, upper-case percent-encoding of
// exactly the characters outside pk11-pchar's unreserved and
// pk11-path-res-avail. One key has one id, so ids compare as strings.
func ParseKeyID(id string) (token, object string, err error) {
	if len(id) > maxID {
		return "", "", fmt.Errorf("%w: longer than %d bytes", ErrBadID, maxID)
	}
	path, ok := strings.CutPrefix(id, Scheme)
	if !ok {
		return "", "", fmt.Errorf("%w: not a %s URI", ErrBadID, Scheme)
	}
	if strings.ContainsAny(path, "?#") {
		return "", "", fmt.Errorf("%w: a key id has no query or fragment (RFC 7512 §2.3: ? and # in a label are percent-encoded)", ErrBadID)
	}
	attrs := map[string]string{}
	for _, attr := range strings.Split(path, ";") {
		name, raw, ok := strings.Cut(attr, "=")
		if !ok {
			return "", "", fmt.Errorf("%w: path attribute %q has no value", ErrBadID, attr)
		}
		if name != "token" && name != "object" {
			return "", "", fmt.Errorf("%w: path attribute %q: a key id names only token and object", ErrBadID, name)
		}
		if _, dup := attrs[name]; dup {
			return "", "", fmt.Errorf("%w: path attribute %s appears twice", ErrBadID, name)
		}
		v, err := unescape(raw)
		if err != nil {
			return "", "", fmt.Errorf("%w: %s: %w", ErrBadID, name, err)
		}
		attrs[name] = v
	}
	token, object = attrs["token"], attrs["object"]
	if err := checkLabel("token", token, maxTokenLabel); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrBadID, err)
	}
	if err := checkLabel("object", object, maxID); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrBadID, err)
	}
	if canonical := KeyID(token, object); id != canonical {
		return "", "", fmt.Errorf("%w: write it as %s", ErrBadID, canonical)
	}
	return token, object, nil
}

// checkLabel refuses labels a token could not hold or a log could not
// show: empty, too long, not UTF-8, with control characters, or with
// white space at either end (a token pads its label with spaces).
func checkLabel(name, v string, limit int) error {
	switch {
	case v == "":
		return fmt.Errorf("%s label is missing or empty", name)
	case len(v) > limit:
		return fmt.Errorf("%s label is longer than %d bytes", name, limit)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s label is not UTF-8", name)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return fmt.Errorf("%s label has a control character", name)
	case strings.TrimSpace(v) != v:
		return fmt.Errorf("%s label starts or ends with white space", name)
	}
	return nil
}

// pchar reports whether c may appear unencoded in a path attribute's
// value: RFC 3986 unreserved, or RFC 7512 pk11-path-res-avail.
func pchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:[]@!$'()*+,=&", c) >= 0
}

const upperHex = "0123456789ABCDEF"

func escape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		if c := s[i]; pchar(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}

func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", errors.New("truncated percent-encoding")
			}
			hi, okHi := unhex(s[i+1])
			lo, okLo := unhex(s[i+2])
			if !okHi || !okLo {
				return "", fmt.Errorf("bad percent-encoding %q", s[i:i+3])
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case pchar(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("character %q must be percent-encoded", c)
		}
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
