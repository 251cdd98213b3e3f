package inbound

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
)

// allowedAlgs is the signature allow-list handed to go-jose (RFC 8725
// §3.1). Asymmetric only: with an HS* algorithm anyone holding the
// issuer's public key could "sign" a token with it; "none" is not a
// signature.
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// forbiddenHeaders are JOSE header parameters that make the token name its
// own verification key (jwk, jku, x5u, x5c: RFC 8725 §3.10 warns against
// fetching or trusting them), change how the payload is processed (b64,
// zip, cty: a nested JWT per RFC 7519 §5.2) or belong to JWE (enc). crit is
// handled apart.
//
// Other unknown parameters are ignored rather than refused: IdPs add their
// own (Entra adds "nonce" and "x5t"), and behalf never reads them.
var (
	keyHeaders       = []string{"jwk", "jku", "x5u", "x5c"}
	forbiddenHeaders = []string{"b64", "zip", "cty", "enc"}
)

// forbiddenTypes are "typ" values of JWTs that carry iss, sub and exp but
// are not bearer tokens, so one must not be replayed as another (RFC 8725
// §3.11). Access tokens (at+jwt, RFC 9068) and plain JWT are accepted. An
// ID-JAG (oauth-id-jag+jwt, draft-ietf-oauth-identity-assertion-authz-grant)
// is a grant for an authorization server, never a user's bearer token.
var forbiddenTypes = []string{
	"dpop+jwt", "logout+jwt", "secevent+jwt", "token-introspection+jwt",
	"oauth-authz-req+jwt", "oauth-client-attestation+jwt", "oauth-client-attestation-pop+jwt",
	"oauth-id-jag+jwt",
}

// checkBearerType refuses, for a user's bearer JWT, the token types that
// are not bearer access or ID tokens.
func checkBearerType(typ string) *Error {
	// RFC 7515 §4.1.9: compare case-insensitively, "application/" optional.
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	if slices.Contains(forbiddenTypes, t) {
		return newError(KindInvalidToken, "token type %s is not a bearer access or ID token", quote(typ))
	}
	return nil
}

// header is the part of the JOSE header behalf uses.
type header struct {
	Alg string
	Kid string
	// Typ is the token's type, "" when the header has none.
	Typ string
}

// rawToken is a compact JWS split and decoded, nothing verified yet.
type rawToken struct {
	header  header
	payload []byte
	claims  claims
}

var b64 = base64.RawURLEncoding.Strict()

// preparse applies every check that needs no key: size, RFC 7515 §7.1
// compact serialization (exactly three non-empty base64url segments;
// RFC 7516 JWE has five and is refused), the header rules above, and the
// claims' JSON and types (RFC 7519 §7.2 steps 1-10 minus the signature).
func preparse(token string, maxBytes int) (*rawToken, *Error) {
	if token == "" {
		return nil, newError(KindInvalidToken, "token is empty")
	}
	if len(token) > maxBytes {
		return nil, newError(KindInvalidToken, "token is %d bytes; the limit is %d", len(token), maxBytes)
	}
	if n := strings.Count(token, "."); n != 2 {
		switch {
		case strings.HasPrefix(token, "{"):
			return nil, newError(KindInvalidToken, "token uses the JWS JSON serialization; only the compact serialization (3 segments) is accepted")
		case n == 4:
			return nil, newError(KindInvalidToken, "token is a JWE (5 segments); only signed JWTs (JWS compact serialization, 3 segments) are accepted")
		}
		return nil, newError(KindInvalidToken, "token has %d '.'-separated segments; a signed JWT has 3", n+1)
	}
	segs := strings.Split(token, ".")
	// The header first, so that "alg":"none" with its empty signature is
	// reported as such.
	var dec [3][]byte
	var h header
	for i, name := range []string{"header", "payload", "signature"} {
		if segs[i] == "" {
			return nil, newError(KindInvalidToken, "token %s segment is empty", name)
		}
		// The decoder skips CR and LF even in strict mode; a token must not
		// have two spellings.
		if strings.IndexFunc(segs[i], notBase64URL) >= 0 {
			return nil, newError(KindInvalidToken, "token %s segment is not unpadded base64url", name)
		}
		d, err := b64.DecodeString(segs[i])
		if err != nil {
			return nil, newError(KindInvalidToken, "token %s segment is not unpadded base64url", name)
		}
		dec[i] = d
		if i == 0 {
			var e *Error
			if h, e = parseHeader(d); e != nil {
				return nil, e
			}
		}
	}
	c, e := parseClaims(dec[1])
	if e != nil {
		return nil, e
	}
	return &rawToken{header: h, payload: dec[1], claims: c}, nil
}

func notBase64URL(r rune) bool {
	switch {
	case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-', r == '_':
		return false
	}
	return true
}

func parseHeader(raw []byte) (header, *Error) {
	var m map[string]json.RawMessage
	if err := strictUnmarshal(raw, &m); err != nil || m == nil {
		return header{}, newError(KindInvalidToken, "token header is not a JSON object (or repeats a member)")
	}
	var h header
	if err := json.Unmarshal(m["alg"], &h.Alg); err != nil || h.Alg == "" {
		return header{}, newError(KindInvalidToken, "token header has no alg string")
	}
	if !isAllowedAlg(h.Alg) {
		return header{}, newError(KindInvalidToken, "token algorithm %s is not allowed; allowed are RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA", quote(h.Alg))
	}
	if v, ok := m["kid"]; ok {
		if err := json.Unmarshal(v, &h.Kid); err != nil || h.Kid == "" {
			return header{}, newError(KindInvalidToken, "token header kid must be a non-empty string")
		}
	}
	if e := checkHeaderParameters(m); e != nil {
		return header{}, e
	}
	if v, ok := m["typ"]; ok && json.Unmarshal(v, &h.Typ) != nil {
		return header{}, newError(KindInvalidToken, "token header typ must be a string")
	}
	return h, nil
}

// checkHeaderParameters refuses the header parameters behalf does not
// accept in a JWT.
func checkHeaderParameters(m map[string]json.RawMessage) *Error {
	// RFC 7515 §4.1.11: a recipient must reject a token whose crit lists an
	// extension it does not process; behalf processes none for JWTs. go-jose
	// itself accepts crit ["b64"] (RFC 7797), which has no place in a JWT.
	if _, ok := m["crit"]; ok {
		return newError(KindInvalidToken, "token header has crit; no critical header extensions are supported")
	}
	for _, name := range keyHeaders {
		if _, ok := m[name]; ok {
			return newError(KindInvalidToken, "token header parameter %s is not accepted; keys come only from the issuer's JWKS", name)
		}
	}
	for _, name := range forbiddenHeaders {
		if _, ok := m[name]; ok {
			return newError(KindInvalidToken, "token header parameter %s is not accepted; nested, encrypted and unencoded-payload tokens are not supported", name)
		}
	}
	return nil
}

func isAllowedAlg(alg string) bool {
	for _, a := range allowedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// strictUnmarshal decodes with go-jose's JSON fork, which rejects duplicate
// members and matches names case-sensitively (RFC 8725 §3.12 is about
// exactly these ambiguities), and refuses trailing data.
func strictUnmarshal(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.SetNumberType(json.UnmarshalJSONNumber)
	if err := d.Decode(v); err != nil {
		return err
	}
	var extra json.RawMessage
	if err := d.Decode(&extra); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errTrailing = constErr("trailing data after JSON value")

// claims holds the registered and AgentCore-relevant claims, typed, plus
// every member raw for custom-claim checks.
type claims struct {
	iss, sub      string
	aud           []string
	hasAud        bool
	exp           time.Time
	nbf, iat      time.Time // zero when absent
	clientID, azp string
	scopes        []string
	raw           map[string]json.RawMessage
}

// parseClaims decodes a JWT's claims set (RFC 7519 section 4), requiring
// iss, sub and exp and checking the type of every claim behalf reads.
func parseClaims(raw []byte) (claims, *Error) {
	var m map[string]json.RawMessage
	if err := strictUnmarshal(raw, &m); err != nil || m == nil {
		return claims{}, newError(KindInvalidToken, "token payload is not a JSON object (or repeats a member)")
	}
	c := claims{raw: m}
	for _, parse := range []func(map[string]json.RawMessage, *claims) *Error{parseStringClaims, parseTimeClaims, parseScopeClaims} {
		if e := parse(m, &c); e != nil {
			return claims{}, e
		}
	}
	return c, nil
}

// parseStringClaims reads iss, sub, client_id, azp and aud.
func parseStringClaims(m map[string]json.RawMessage, c *claims) *Error {
	for _, claim := range []struct {
		name string
		dst  *string
	}{{"iss", &c.iss}, {"sub", &c.sub}, {"client_id", &c.clientID}, {"azp", &c.azp}} {
		v, ok := m[claim.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, claim.dst); err != nil || isNull(v) {
			return newError(KindInvalidToken, "token claim %s must be a string", claim.name)
		}
	}
	if c.iss == "" {
		return newError(KindInvalidToken, "token has no iss claim")
	}
	// RFC 7519 makes sub optional; a user identity without one is useless
	// to behalf, which keys the token vault by (iss, sub).
	if c.sub == "" {
		return newError(KindInvalidToken, "token has no sub claim (or it is empty)")
	}
	if v, ok := m["aud"]; ok {
		aud, ok := stringOrArray(v)
		if !ok {
			return newError(KindInvalidToken, "token claim aud must be a string or an array of strings")
		}
		c.aud, c.hasAud = aud, true
	}
	return nil
}

// parseTimeClaims reads exp, which is required, and nbf and iat.
func parseTimeClaims(m map[string]json.RawMessage, c *claims) *Error {
	for _, claim := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &c.exp}, {"nbf", &c.nbf}, {"iat", &c.iat}} {
		v, ok := m[claim.name]
		if !ok {
			continue
		}
		t, ok := numericDate(v)
		if !ok {
			return newError(KindInvalidToken, "token claim %s must be a NumericDate (seconds since 1970) before year 10000", claim.name)
		}
		*claim.dst = t
	}
	if _, ok := m["exp"]; !ok {
		return newError(KindInvalidToken, "token has no exp claim")
	}
	return nil
}

// parseScopeClaims reads the scopes: "scope" is RFC 8693 §4.2 / RFC 9068
// §2.2.3 (space-delimited); "scp" is what Entra (string) and Okta (array)
// use.
func parseScopeClaims(m map[string]json.RawMessage, c *claims) *Error {
	if v, ok := m["scope"]; ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || isNull(v) {
			return newError(KindInvalidToken, "token claim scope must be a space-delimited string")
		}
		c.scopes = append(c.scopes, splitScopes(s)...)
	}
	if v, ok := m["scp"]; ok {
		list, ok := stringOrArray(v)
		if !ok {
			return newError(KindInvalidToken, "token claim scp must be a string or an array of strings")
		}
		for _, s := range list {
			c.scopes = append(c.scopes, splitScopes(s)...)
		}
	}
	return nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// stringOrArray decodes RFC 7519 §4.1.3's "string or array of strings".
func stringOrArray(v json.RawMessage) ([]string, bool) {
	if isNull(v) {
		return nil, false
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return []string{s}, true
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil || list == nil {
		return nil, false
	}
	return list, true
}

func stringArray(v json.RawMessage) ([]string, bool) {
	var list []string
	if isNull(v) || json.Unmarshal(v, &list) != nil || list == nil {
		return nil, false
	}
	return list, true
}

func splitScopes(s string) []string {
	var out []string
	for _, f := range strings.Split(s, " ") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// maxNumericDate is 9999-12-31T23:59:59Z; later values are refused rather
// than overflowing time arithmetic.
const maxNumericDate = 253402300799

// numericDate decodes RFC 7519 §2's NumericDate: a JSON number of seconds,
// possibly fractional.
func numericDate(v json.RawMessage) (time.Time, bool) {
	// v is already valid JSON, so a leading digit means a JSON number, whose
	// syntax ParseFloat accepts.
	s := string(bytes.TrimSpace(v))
	if s == "" || s[0] < '0' || s[0] > '9' {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}
