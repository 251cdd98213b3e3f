// Package sigv4 verifies requests signed with AWS Signature Version 4 in the
// Authorization header (AWS4-HMAC-SHA256), as the aws-sdk-go-v2 AgentCore
// clients send them. It implements the server side of "Create a signed AWS
// API request" in the AWS IAM User Guide.
//
// Non-goals: Verify does NOT accept presigned URLs (query-string
// authentication), session credentials (X-Amz-Security-Token), SigV4a,
// unsigned or streaming payloads, or a Date header instead of X-Amz-Date; it
// rejects them. It does NOT protect against replay: a captured request
// verifies again until X-Amz-Date is more than MaxSkew old. Headers that are
// not in SignedHeaders are not authenticated.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// DefaultMaxSkew is the clock skew AWS tolerates between X-Amz-Date and the
// server clock.
const DefaultMaxSkew = 5 * time.Minute

const amzDateLayout = "20060102T150405Z"

// Verifier authenticates SigV4-signed requests. Configure it before first
// use and do not copy it afterwards (it caches derived signing keys). It is
// safe for concurrent use.
type Verifier struct {
	// Service is the signing name the credential scope must carry, e.g.
	// "bedrock-agentcore".
	Service string
	// Regions are the accepted signing regions.
	Regions []string
	// Lookup returns the secret access key of accessKeyID, or an error
	// wrapping ErrUnknownKey if there is none. Any other error is treated as
	// an internal failure and returned wrapped.
	Lookup func(ctx context.Context, accessKeyID string) (secretAccessKey string, err error)
	// MaxSkew is how far X-Amz-Date may be from Now, either way. Zero means
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	keys keyCache
}

// Verify authenticates r, whose body the caller has already read (bounded)
// into body, and returns the access key id of the signer.
//
// Verification failures are *Error values (see Kind and
// Error.Unauthenticated); a misconfigured Verifier or a failing Lookup yields
// any other error, which callers should treat as an internal error.
//
// The path and query are taken from r.RequestURI when it is in origin form,
// so path-rewriting routers do not affect verification; header keys must be
// in canonical form, as net/http's server produces them.
func (v *Verifier) Verify(r *http.Request, body []byte) (accessKeyID string, err error) {
	// HashedPayload; AWS SDKs for this service do not send
	// X-Amz-Content-Sha256, so the server always hashes the body itself.
	var payloadHash [2 * sha256.Size]byte
	sum := sha256.Sum256(body)
	hex.Encode(payloadHash[:], sum[:])
	return v.verify(r, payloadHash[:])
}

// VerifyPayloadHash is Verify for a request whose body another party read:
// behalf gateway passes on a caller's signed request with the SHA-256 of
// the body it received (lowercase hex), which stands for the body in the
// canonical request. Every check of Verify applies; a body that differs
// from the one signed is a signature mismatch, as with Verify.
func (v *Verifier) VerifyPayloadHash(r *http.Request, payloadSHA256 string) (accessKeyID string, err error) {
	if !isLowerHex(payloadSHA256, 2*sha256.Size) {
		return "", malformed("The payload hash must be the lowercase hex SHA-256 of the request body.")
	}
	return v.verify(r, []byte(payloadSHA256))
}

// emptyPayloadHash is the hex SHA-256 of an empty body.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// verify authenticates r, whose body has the hex SHA-256 payloadHash.
func (v *Verifier) verify(r *http.Request, payloadHash []byte) (accessKeyID string, err error) {
	if v.Service == "" || len(v.Regions) == 0 || v.Lookup == nil {
		return "", errors.New("sigv4: Verifier needs Service, Regions and Lookup")
	}
	path, rawQuery := requestTarget(r)
	query, err := parseQuery(rawQuery)
	if err != nil {
		return "", err
	}
	a, err := readAuthorization(r.Header)
	if err != nil {
		return "", err
	}
	amzDate, err := v.checkRequest(r, &a, string(payloadHash) != emptyPayloadHash)
	if err != nil {
		return "", err
	}
	if err := checkContentSHA256(r.Header, payloadHash); err != nil {
		return "", err
	}
	crHash, err := canonicalRequestHash(r, path, query, a.SignedHeaders, payloadHash)
	if err != nil {
		return "", err
	}

	secret, err := v.secret(r.Context(), a.AccessKeyID)
	if err != nil {
		return "", err
	}
	key := v.keys.signingKey(secret, scope{a.AccessKeyID, a.Date, a.Region, a.Service})
	want := signature(&key, amzDate, &a, &crHash)
	got := decodeSignature(a.Signature)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return "", newError(KindSignatureMismatch, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return a.AccessKeyID, nil
}

// parseQuery parses the query string, refusing the parameters of presigned
// URLs, which Verify does not support.
func parseQuery(rawQuery string) (url.Values, error) {
	if rawQuery == "" {
		return nil, nil
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, malformed("The query string is not valid: parameters must be name=value pairs separated by '&', with valid percent-encoding.")
	}
	for _, p := range [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Security-Token"} {
		if query.Has(p) {
			return nil, newError(KindUnsupported, "Presigned URLs (query-string authentication) are not supported: sign the request with an Authorization header.")
		}
	}
	return query, nil
}

// readAuthorization parses the one Authorization header, refusing session
// credentials, which Verify does not support.
func readAuthorization(h http.Header) (authorization, error) {
	authz := h["Authorization"]
	switch len(authz) {
	case 0:
		return authorization{}, newError(KindMissingAuth, "Missing Authentication Token: sign the request with AWS Signature Version 4 in the Authorization header.")
	case 1:
	default:
		return authorization{}, malformed("The request has more than one Authorization header.")
	}
	a, err := parseAuthorization(authz[0])
	if err != nil {
		return authorization{}, err
	}
	if _, ok := h["X-Amz-Security-Token"]; ok {
		return authorization{}, newError(KindUnsupported, "Session credentials (X-Amz-Security-Token) are not supported: sign with a long-term access key issued by this server.")
	}
	return a, nil
}

// checkRequest checks X-Amz-Date against the credential scope and the
// clock, and that the headers a signature must cover are there; it returns
// X-Amz-Date.
func (v *Verifier) checkRequest(r *http.Request, a *authorization, hasBody bool) (string, error) {
	amzDate, t, err := requestTime(r.Header)
	if err != nil {
		return "", err
	}
	if err := v.checkScope(*a, amzDate); err != nil {
		return "", err
	}
	if err := v.checkSkew(amzDate, t); err != nil {
		return "", err
	}
	if r.Host == "" {
		return "", malformed("The Host header is required.")
	}
	if hasBody && !hasSignedHeader(a.SignedHeaders, "content-type") {
		return "", malformed("Authorization header 'SignedHeaders' must include 'content-type' when the request has a body.")
	}
	return amzDate, nil
}

// secret looks up the secret access key of accessKeyID.
func (v *Verifier) secret(ctx context.Context, accessKeyID string) (string, error) {
	secret, err := v.Lookup(ctx, accessKeyID)
	if errors.Is(err, ErrUnknownKey) {
		return "", newError(KindUnknownKey, "The AWS Access Key Id you provided does not exist in our records.")
	}
	if err != nil {
		return "", fmt.Errorf("sigv4: looking up access key %s: %w", accessKeyID, err)
	}
	if secret == "" {
		return "", fmt.Errorf("sigv4: Lookup returned an empty secret for access key %s", accessKeyID)
	}
	return secret, nil
}

// signature is "Create a signed AWS API request", step 3 ("Create a string
// to sign") and the second part of step 4 ("Calculate the signature"):
//
//	Algorithm \n RequestDateTime \n CredentialScope \n HashedCanonicalRequest
func signature(key *[sha256.Size]byte, amzDate string, a *authorization, crHash *[sha256.Size]byte) [sha256.Size]byte {
	var stack [256]byte
	s := append(stack[:0], algorithm...)
	s = append(s, '\n')
	s = append(s, amzDate...)
	s = append(s, '\n')
	s = append(s, a.Date...)
	s = append(s, '/')
	s = append(s, a.Region...)
	s = append(s, '/')
	s = append(s, a.Service...)
	s = append(s, '/')
	s = append(s, a.Terminator...)
	s = append(s, '\n')
	s = hex.AppendEncode(s, crHash[:])

	var out [sha256.Size]byte
	m := hmac.New(sha256.New, key[:])
	m.Write(s)
	m.Sum(out[:0])
	return out
}

// decodeSignature decodes the 64 hex digits that parseAuthorization checked.
func decodeSignature(s string) [sha256.Size]byte {
	var out [sha256.Size]byte
	for i := range out {
		out[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
	return out
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// requestTime reads the single X-Amz-Date header in the ISO 8601 basic format
// of "Elements of an AWS API request signature" ("Date").
func requestTime(h http.Header) (string, time.Time, error) {
	vs := h["X-Amz-Date"]
	switch len(vs) {
	case 0:
		return "", time.Time{}, malformed("The X-Amz-Date header is required (format YYYYMMDD'T'HHMMSS'Z', UTC).")
	case 1:
	default:
		return "", time.Time{}, malformed("The request has more than one X-Amz-Date header.")
	}
	t, err := time.Parse(amzDateLayout, vs[0])
	var buf [len(amzDateLayout)]byte
	if err != nil || string(t.AppendFormat(buf[:0], amzDateLayout)) != vs[0] {
		return "", time.Time{}, malformed("The X-Amz-Date header must have the format YYYYMMDD'T'HHMMSS'Z' (UTC), e.g. 20060102T150405Z.")
	}
	return vs[0], t, nil
}

// checkScope compares the credential scope ("Elements of an AWS API request
// signature", "Credential scope") with the configuration and X-Amz-Date. The
// messages follow AWS's IncompleteSignature/InvalidSignature wording.
func (v *Verifier) checkScope(a authorization, amzDate string) error {
	switch {
	case a.Terminator != terminator:
		return newError(KindWrongScope, fmt.Sprintf("Credential should be scoped with a valid terminator: '%s', not '%s'.", terminator, a.Terminator))
	case a.Service != v.Service:
		return newError(KindWrongScope, fmt.Sprintf("Credential should be scoped to correct service: '%s', not '%s'.", v.Service, a.Service))
	case !slices.Contains(v.Regions, a.Region):
		return newError(KindWrongScope, fmt.Sprintf("Credential should be scoped to a valid region, not '%s'; this server accepts %q.", a.Region, v.Regions))
	case a.Date != amzDate[:8]:
		return newError(KindWrongScope, fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from 'X-Amz-Date'.", a.Date, amzDate[:8]))
	}
	return nil
}

func (v *Verifier) checkSkew(amzDate string, t time.Time) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	n := now().UTC()
	switch {
	case n.Sub(t) > skew:
		return newError(KindTimeSkew, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s). Check the client's clock.",
			amzDate, n.Add(-skew).Format(amzDateLayout), n.Format(amzDateLayout), formatSkew(skew)))
	case t.Sub(n) > skew:
		return newError(KindTimeSkew, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s). Check the client's clock.",
			amzDate, n.Add(skew).Format(amzDateLayout), n.Format(amzDateLayout), formatSkew(skew)))
	}
	return nil
}

func formatSkew(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", d/time.Minute)
	}
	return d.String()
}

// checkContentSHA256 accepts an X-Amz-Content-Sha256 header only if it is the
// hex SHA-256 of the body.
func checkContentSHA256(h http.Header, payloadHash []byte) error {
	vs, ok := h["X-Amz-Content-Sha256"]
	if !ok {
		return nil
	}
	switch {
	case len(vs) != 1:
		return malformed("The request has more than one X-Amz-Content-Sha256 header.")
	case vs[0] == string(payloadHash):
		return nil
	case !isLowerHex(vs[0], len(payloadHash)):
		return newError(KindUnsupported, "X-Amz-Content-Sha256 must be the lowercase hex SHA-256 of the body: unsigned and streaming payloads are not supported.")
	}
	return newError(KindSignatureMismatch, "The X-Amz-Content-Sha256 header does not match the SHA-256 of the request body.")
}
