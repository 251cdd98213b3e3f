// Package oauthwire holds the OAuth 2.0 wire pieces that behalf's
// authorization servers (package authserver, and the development IdP)
// share: RFC 6749 §5.2 errors and their rendering, bounded form bodies
// without repeated parameters, scope syntax, PKCE (RFC 7636) and the
// hashes under which bearer secrets are kept.
package oauthwire

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Error is an RFC 6749 §5.2 error. Its description is shown to the
// client, so it never holds a secret.
type Error struct {
	Code        string
	Description string
	// Reason names the check that failed, short and stable, for the
	// audit trail ("aud", "replayed"); empty when Code says enough.
	Reason string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Because returns e with the failed check named.
func (e *Error) Because(reason string) *Error {
	c := *e
	c.Reason = reason
	return &c
}

// AuditType is what an audit record's error type says of e: the code,
// and the failed check when one is named ("invalid_grant:aud").
func (e *Error) AuditType() string {
	if e.Reason == "" {
		return e.Code
	}
	return e.Code + ":" + e.Reason
}

// Errorf returns the error code with a formatted description.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// Status is the HTTP status of an error response: 401 for invalid_client
// (RFC 6749 §5.2), 500 for server_error, 503 for temporarily_unavailable,
// 400 otherwise.
func (e *Error) Status() int {
	switch e.Code {
	case "invalid_client":
		return http.StatusUnauthorized
	case "server_error":
		return http.StatusInternalServerError
	case "temporarily_unavailable":
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// WriteError answers with e as JSON. A client that authenticated with
// HTTP Basic is challenged on invalid_client (RFC 6749 §5.2); realm names
// the server.
func WriteError(w http.ResponseWriter, e *Error, basicAuth bool, realm string) {
	if e.Code == "invalid_client" && basicAuth {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	}
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	WriteJSON(w, e.Status(), body)
}

// WriteJSON answers with the no-store headers of RFC 6749 §5.1, which every
// response carrying a token needs and none of the others mind.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // only a write can fail: the client went away
}

// MaxForm bounds a form body.
const MaxForm = 64 << 10

// PostForm parses a bounded form body and refuses repeated parameters
// (RFC 6749 §3.1, §3.2).
func PostForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxForm)
	if err := r.ParseForm(); err != nil {
		return nil, Errorf("invalid_request", "the body is not a valid application/x-www-form-urlencoded form")
	}
	return r.PostForm, Single(r.PostForm)
}

// Single refuses a repeated parameter (RFC 6749 §3.1), except resource
// (RFC 8707 §2) and audience (RFC 8693 §2.1), which may repeat.
func Single(v url.Values) *Error {
	for k, vs := range v {
		if len(vs) > 1 && k != "resource" && k != "audience" {
			return Errorf("invalid_request", "parameter %s is repeated", k)
		}
	}
	return nil
}

var (
	// RFC 6749 §3.3 scope-token.
	scopeTokenPattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,255}$`)
	// RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters.
	challengePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	// RFC 7636 §4.1.
	verifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
)

// MaxScopes bounds the scope tokens of one request.
const MaxScopes = 64

// ValidScopeToken reports whether s is an RFC 6749 §3.3 scope-token.
func ValidScopeToken(s string) bool { return scopeTokenPattern.MatchString(s) }

// UnionScopes is a's scopes, then those of b it lacks, each once, in
// order (nil when there are none); a is not changed.
func UnionScopes(a, b []string) []string {
	var out []string
	for _, sc := range slices.Concat(a, b) {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// ParseScope checks RFC 6749 §3.3 syntax and drops repeated tokens.
func ParseScope(s string) ([]string, *Error) {
	var out []string
	for t := range strings.FieldsSeq(s) {
		if !ValidScopeToken(t) {
			return nil, Errorf("invalid_scope", "scope has a character RFC 6749 §3.3 does not allow")
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > MaxScopes {
		return nil, Errorf("invalid_scope", "scope names more than %d scopes", MaxScopes)
	}
	return out, nil
}

// CheckChallenge checks an authorization request's PKCE parameters: S256
// only, as OAuth 2.1 §4.1.1 asks of servers that can.
func CheckChallenge(challenge, method string) *Error {
	switch {
	case challenge == "":
		return Errorf("invalid_request", "code_challenge is required: use PKCE with S256 (RFC 7636)")
	case method != "S256":
		return Errorf("invalid_request", "code_challenge_method must be S256")
	case !challengePattern.MatchString(challenge):
		return Errorf("invalid_request", "code_challenge must be 43 base64url characters")
	}
	return nil
}

// VerifierMatches reports whether verifier is well formed and hashes to
// challenge (RFC 7636 §4.6), comparing in constant time.
func VerifierMatches(verifier, challenge string) bool {
	if !verifierPattern.MatchString(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// Hash is the SHA-256 under which a bearer secret is kept, so that no
// store holds one.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// MAC is HMAC-SHA256 under key of purpose and parts, each part
// delimited so that no two lists collide, base64url: 43 characters, a
// valid PKCE verifier (RFC 7636 §4.1) too. Browser flows derive their
// state, verifier, nonce and form tokens with it, so that nothing secret
// is stored.
func MAC(key []byte, purpose string, parts ...string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// WritePage answers a browser with an HTML page rendered by html/template
// (which escapes every value). The headers forbid scripts, plugins, framing
// (clickjacking), content sniffing, caching and referrers; CSP form-action
// is left out, since browsers apply it to the redirect that follows a
// form's POST, which goes to the client.
func WritePage(w http.ResponseWriter, status int, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(page) // a failed write means the browser went away
}
