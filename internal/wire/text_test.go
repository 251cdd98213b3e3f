package wire

import (
	"errors"
	"testing"
)

// NUL and invalid UTF-8 are refused in every string of a request, member
// names included, before any handler sees them: PostgreSQL cannot store a
// NUL in text, and encoding/json would silently replace invalid bytes.
func TestDecodeRefusesNULAndInvalidUTF8(t *testing.T) {
	for _, c := range []struct {
		body, member string
	}{
		{`{"name":"a\u0000b"}`, "name"},
		{`{"name":"\u0000"}`, "name"},
		{`{"list":[{"clientId":"x"},{"clientId":"\u0000"}]}`, "list[1].clientId"},
		{`{"union":{"params":{"k":"v\u0000"}}}`, "union.params.k"},
		{`{"union":{"params":{"k\u0000":"v"}}}`, "union.params"},
		{`{"free":{"any":["\u0000"]}}`, "free.any[0]"},
		{"{\"name\":\"a\xffb\"}", "name"},
		{"{\"union\":{\"params\":{\"k\":\"\xc3\"}}}", "union.params.k"},
		{"{\"free\":\"\xed\xa0\x80\"}", "free"}, // an encoded surrogate
		// Strings without escapes are checked eight bytes at a time.
		{"{\"name\":\"abcdefghijklmnop\xffqrstuvw\"}", "name"},
		{"{\"name\":\"abcdefgh\xc3\"}", "name"},
	} {
		var s shape
		err := Decode([]byte(c.body), &s)
		var we *Error
		if !errors.As(err, &we) || we.Type != "ValidationException" || len(we.Fields) != 1 || we.Fields[0].Name != c.member {
			t.Errorf("Decode(%q) = %v, want a ValidationException naming %s", c.body, err, c.member)
		}
	}
	// A raw control character is a syntax error, wherever it falls.
	for _, body := range []string{"{\"name\":\"abcdefgh\x00\"}", "{\"name\":\"abcdefghijklmno\x1f\"}", "{\"name\":\"\x01abcdefghijkl日本\"}"} {
		var s shape
		if err := Decode([]byte(body), &s); err == nil {
			t.Errorf("Decode(%q) accepted a raw control character", body)
		}
	}
	// Escapes that only look alike stay valid, as do DEL and long text.
	for _, body := range []string{`{"name":"a\\u0000b"}`, `{"name":"\u0001é\u00e9"}`, `{"name":"日本"}`,
		"{\"name\":\"abcdefghij\x7fklmnop日本語abcdefgh\"}"} {
		var s shape
		if err := Decode([]byte(body), &s); err != nil {
			t.Errorf("Decode(%q) = %v", body, err)
		}
	}
}
