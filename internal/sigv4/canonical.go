package sigv4

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// requestTarget returns the path and query exactly as the client sent them.
// The server's r.RequestURI is preferred over r.URL so that routers that
// rewrite r.URL (http.StripPrefix) do not break verification; r.URL is the
// fallback for requests built in-process and for absolute-form targets.
func requestTarget(r *http.Request) (path, query string) {
	if strings.HasPrefix(r.RequestURI, "/") {
		path, query, _ = strings.Cut(r.RequestURI, "?")
		return path, query
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

// canonicalRequestHash returns the SHA-256 of the canonical request, per
// "Create a signed AWS API request", steps 1 ("Create a canonical request")
// and 2 ("Create a hash of the canonical request"):
//
//	Method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HashedPayload
//
// signed must already be validated by checkSignedHeaders.
func canonicalRequestHash(r *http.Request, path string, query url.Values, signed string, payloadHash []byte) ([sha256.Size]byte, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var stack [2048]byte
	b := append(stack[:0], method...)
	b = append(b, '\n')
	// CanonicalURI: every path segment is URI-encoded twice for services
	// other than S3. The path as sent is already encoded once, so it is
	// encoded once more, leaving '/' alone (the SDK's EscapePath(path, false)).
	if path == "" {
		path = "/"
	}
	b = appendURIEncoded(b, path, false)
	b = append(b, '\n')
	b = appendCanonicalQuery(b, query)
	b = append(b, '\n')
	b, err := appendCanonicalHeaders(b, r, signed)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	b = append(b, '\n')
	b = append(b, signed...)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	return sha256.Sum256(b), nil
}

// appendCanonicalQuery writes CanonicalQueryString: each name and value
// URI-encoded, then the pairs sorted by encoded name and value ("the sorting
// occurs after encoding"), joined by '&'.
func appendCanonicalQuery(b []byte, query url.Values) []byte {
	if len(query) == 0 {
		return b
	}
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range query {
		ek := string(appendURIEncoded(nil, k, true))
		for _, v := range vs {
			pairs = append(pairs, pair{ek, string(appendURIEncoded(nil, v, true))})
		}
	}
	slices.SortFunc(pairs, func(x, y pair) int {
		if c := cmp.Compare(x.k, y.k); c != 0 {
			return c
		}
		return cmp.Compare(x.v, y.v)
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	return b
}

// appendCanonicalHeaders writes CanonicalHeaders: for each signed header, its
// lowercase name, ':', its values trimmed (leading and trailing spaces
// removed, inner runs of spaces collapsed) and joined by ',' in the order
// received, and '\n'. host is taken from r.Host, where net/http puts it.
func appendCanonicalHeaders(b []byte, r *http.Request, signed string) ([]byte, error) {
	var key [maxHeaderNameLen]byte
	for {
		name, rest, more := strings.Cut(signed, ";")
		b = append(b, name...)
		b = append(b, ':')
		if name == "host" {
			b = appendTrimmed(b, r.Host)
		} else {
			values := r.Header[string(appendCanonicalKey(key[:0], name))]
			if len(values) == 0 {
				return nil, newError(KindSignatureMismatch, fmt.Sprintf("Signed header '%s' is missing from the request; it must be sent as it was signed.", name))
			}
			for i, v := range values {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendTrimmed(b, v)
			}
		}
		b = append(b, '\n')
		if !more {
			return b, nil
		}
		signed = rest
	}
}

// appendCanonicalKey converts a lowercase [a-z0-9._-] name into the form
// textproto.CanonicalMIMEHeaderKey gives it, without allocating.
func appendCanonicalKey(b []byte, name string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

// appendTrimmed applies the "Trimall" of "Create a canonical request" the way
// the AWS SDKs do: trim surrounding white space and collapse runs of spaces.
func appendTrimmed(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		b = append(b, v[i])
	}
	return b
}

// appendURIEncoded is "URI-encode each byte": everything except the RFC 3986
// unreserved characters A-Z a-z 0-9 - . _ ~ becomes %XX with uppercase hex;
// '/' is kept when encodeSlash is false (paths).
func appendURIEncoded(b []byte, s string, encodeSlash bool) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' && !encodeSlash {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	return b
}
