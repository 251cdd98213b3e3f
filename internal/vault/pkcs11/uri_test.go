package pkcs11

import (
	"errors"
	"strings"
	"testing"
)

// A key id is the RFC 7512 URI of a token and an object, percent-encoded
// where §2.3 requires, and parses back to the same labels.
func TestKeyIDRoundTrip(t *testing.T) {
	for _, tt := range []struct{ token, object, id string }{
		{"behalf", "kek", "pkcs11:token=behalf;object=kek"},
		{"My Token", "kek;2", "pkcs11:token=My%20Token;object=kek%3B2"},
		{"a/b?c#d", "50%", "pkcs11:token=a%2Fb%3Fc%23d;object=50%25"},
		{"t", "ü:[x]@!$'()*+,=&-._~", "pkcs11:token=t;object=%C3%BC:[x]@!$'()*+,=&-._~"},
	} {
		if id := KeyID(tt.token, tt.object); id != tt.id {
			t.Errorf("KeyID(%q, %q) = %s, want %s", tt.token, tt.object, id, tt.id)
		}
		token, object, err := ParseKeyID(tt.id)
		if err != nil || token != tt.token || object != tt.object {
			t.Errorf("ParseKeyID(%s) = %q, %q, %v", tt.id, token, object, err)
		}
	}
}

// Anything but the one form of a token's object is refused, with the
// reason, and where another spelling names the same object, with the id
// to write instead.
func TestParseKeyIDRefuses(t *testing.T) {
	long := "pkcs11:token=t;object=" + strings.Repeat("o", 256)
	for _, tt := range []struct{ id, want string }{
		{"", "not a pkcs11: URI"},
		{"PKCS11:token=t;object=o", "not a pkcs11: URI"},
		{"local:00000000-0000-0000-0000-000000000000", "not a pkcs11: URI"},
		{"pkcs11:token=t;object=o?pin-value=1234", "no query"},
		{"pkcs11:token=t;object=o#x", "no query or fragment"},
		{"pkcs11:token=t", "object label is missing"},
		{"pkcs11:object=o", "token label is missing"},
		{"pkcs11:", "has no value"},
		{"pkcs11:token=t;object=o;", "has no value"},
		{"pkcs11:token=t;object=o;id=%01", `"id": a key id names only token and object`},
		{"pkcs11:token=t;token=t;object=o", "token appears twice"},
		{"pkcs11:token=t;object=", "object label is missing or empty"},
		{"pkcs11:object=o;token=t", "write it as pkcs11:token=t;object=o"},
		{"pkcs11:token=t;object=%6Fbj", "write it as pkcs11:token=t;object=obj"},
		{"pkcs11:token=t;object=a%3bb", "write it as pkcs11:token=t;object=a%3Bb"},
		{"pkcs11:token=t;object=a/b", `character '/' must be percent-encoded`},
		{"pkcs11:token=t;object=a b", `character ' ' must be percent-encoded`},
		{"pkcs11:token=t;object=a%2", "truncated percent-encoding"},
		{"pkcs11:token=t;object=a%", "truncated percent-encoding"},
		{"pkcs11:token=t;object=a%zz", `bad percent-encoding "%zz"`},
		{"pkcs11:token=t;object=a%00", "control character"},
		{"pkcs11:token=t;object=%FF", "not UTF-8"},
		{"pkcs11:token=t;object=o%20", "white space"},
		{"pkcs11:token=" + strings.Repeat("t", 33) + ";object=o", "token label is longer than 32 bytes"},
		{long, "longer than 255 bytes"},
	} {
		_, _, err := ParseKeyID(tt.id)
		if !errors.Is(err, ErrBadID) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKeyID(%q) = %v, want ErrBadID saying %q", tt.id, err, tt.want)
		}
	}
}

// Whatever a caller sends as a key id, ParseKeyID accepts exactly the ids
// KeyID makes, so one key has one id; and KeyID's ids of valid labels parse
// back to them.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range []string{"pkcs11:token=behalf;object=kek", "pkcs11:token=a%2Fb;object=%C3%BC", "pkcs11:object=o;token=t",
		"pkcs11:token=t;object=a%3bb", "pkcs11:token=t;object=o?x=y", "pkcs11:token=t;object=%"} {
		f.Add(s, "behalf", "kek")
	}
	f.Add("", "a;b", "c%d")
	f.Fuzz(func(t *testing.T, id, token, object string) {
		if tok, obj, err := ParseKeyID(id); err == nil {
			if KeyID(tok, obj) != id {
				t.Errorf("ParseKeyID(%q) accepted labels %q, %q whose id is %s", id, tok, obj, KeyID(tok, obj))
			}
		} else if !errors.Is(err, ErrBadID) {
			t.Errorf("ParseKeyID(%q) = %v, not ErrBadID", id, err)
		}
		id = KeyID(token, object)
		valid := checkLabel("token", token, maxTokenLabel) == nil && checkLabel("object", object, maxID) == nil && len(id) <= maxID
		tok, obj, err := ParseKeyID(id)
		switch {
		case valid && (err != nil || tok != token || obj != object):
			t.Errorf("ParseKeyID(KeyID(%q, %q)) = %q, %q, %v", token, object, tok, obj, err)
		case !valid && err == nil:
			t.Errorf("ParseKeyID(KeyID(%q, %q)) accepted invalid labels", token, object)
		}
	})
}
