package sigv4

import (
	"fmt"
	"strings"
)

// MaxSignedHeaders is the most headers a signature may cover
// (SignedHeaders): every header the SDKs sign fits well within it.
const MaxSignedHeaders = 64

const (
	algorithm  = "AWS4-HMAC-SHA256"
	terminator = "aws4_request"

	maxAuthorizationLen = 4096
	maxSignedHeadersLen = 2048
	maxSignedHeaders    = MaxSignedHeaders
	maxHeaderNameLen    = 128
	minAccessKeyIDLen   = 16
	maxAccessKeyIDLen   = 128
	maxScopeFieldLen    = 64
	maxTerminatorLen    = 32
	signatureHexLen     = 64

	authorizationForm = "expected 'AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/service/aws4_request, SignedHeaders=host;x-amz-date;..., Signature=<64 hex digits>'"
)

// authorization is the parsed Authorization header. Its strings are
// substrings of the header.
type authorization struct {
	AccessKeyID   string
	Date          string // YYYYMMDD
	Region        string
	Service       string
	Terminator    string
	SignedHeaders string // "a;b;c": lowercase, sorted, unique
	Signature     string // 64 lowercase hex digits
}

// parseAuthorization parses the header-based form described in the AWS IAM
// User Guide, "Create a signed AWS API request", step 5 ("Add the signature
// to the request"). It is strict: one space after the algorithm, the three
// components Credential, SignedHeaders and Signature exactly once each (in
// any order) separated by a comma and optional spaces, bounded lengths, and
// SignedHeaders lowercase, sorted, unique and including host and x-amz-date.
// The credential scope's terminator is only syntax-checked here; Verify
// compares the scope with its configuration.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	if len(h) > maxAuthorizationLen {
		return a, malformed(fmt.Sprintf("Authorization header is longer than %d bytes.", maxAuthorizationLen))
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if scheme != algorithm {
		// Another AWS signing algorithm (SigV4a's AWS4-ECDSA-P256-SHA256,
		// SigV2's "AWS AKID:sig") is well-formed but unsupported; anything
		// else (Bearer, Basic, garbage) is not AWS authentication at all.
		if strings.HasPrefix(scheme, "AWS") && isToken(scheme) && len(scheme) <= 64 {
			return a, newError(KindUnsupported, fmt.Sprintf("Unsupported authorization type '%s': only AWS Signature Version 4 ('%s') is accepted.", scheme, algorithm))
		}
		return a, malformed("Authorization header is not an AWS Signature Version 4 header: " + authorizationForm + ".")
	}
	if !ok || rest == "" {
		return a, malformed("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters: " + authorizationForm + ".")
	}

	var seen parameters
	for n := 0; ; n++ {
		if n == 3 {
			return a, malformed("Authorization header has more than the three parameters Credential, SignedHeaders and Signature.")
		}
		part, next, more := strings.Cut(rest, ",")
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return a, malformed("Authorization header parameters must have the form Name=value separated by ', ': " + authorizationForm + ".")
		}
		if err := seen.parse(&a, name, value); err != nil {
			return a, err
		}
		if !more {
			break
		}
		rest = strings.TrimLeft(next, " ")
	}
	return a, seen.complete()
}

// parameters records which of the Authorization header's parameters have
// been seen, so that each is required exactly once.
type parameters struct {
	credential, signedHeaders, signature bool
}

// parse checks one parameter, name=value, and stores it in a.
func (p *parameters) parse(a *authorization, name, value string) error {
	switch name {
	case "Credential":
		if p.credential {
			return malformed("Authorization header has more than one 'Credential' parameter.")
		}
		p.credential = true
		return parseCredential(value, a)
	case "SignedHeaders":
		if p.signedHeaders {
			return malformed("Authorization header has more than one 'SignedHeaders' parameter.")
		}
		p.signedHeaders = true
		if err := checkSignedHeaders(value); err != nil {
			return err
		}
		a.SignedHeaders = value
	case "Signature":
		if p.signature {
			return malformed("Authorization header has more than one 'Signature' parameter.")
		}
		p.signature = true
		if !isLowerHex(value, signatureHexLen) {
			return malformed("Authorization header 'Signature' must be 64 lowercase hexadecimal digits.")
		}
		a.Signature = value
	default:
		return malformed("Authorization header has an unknown parameter; " + authorizationForm + ".")
	}
	return nil
}

// complete requires every parameter.
func (p *parameters) complete() error {
	switch {
	case !p.credential:
		return malformed("Authorization header requires 'Credential' parameter.")
	case !p.signedHeaders:
		return malformed("Authorization header requires 'SignedHeaders' parameter.")
	case !p.signature:
		return malformed("Authorization header requires 'Signature' parameter.")
	}
	return nil
}

// parseCredential parses "AKID/YYYYMMDD/region/service/terminator", the
// access key id followed by the credential scope ("Elements of an AWS API
// request signature", "Credential scope").
func parseCredential(s string, a *authorization) error {
	var f [5]string
	for i := range 4 {
		var ok bool
		f[i], s, ok = strings.Cut(s, "/")
		if !ok {
			return malformed("Authorization header 'Credential' must have the form AKID/YYYYMMDD/region/service/aws4_request.")
		}
	}
	f[4] = s
	switch {
	case !isAccessKeyID(f[0]):
		return malformed(fmt.Sprintf("Authorization header 'Credential' has an invalid access key id: it must be %d to %d characters A-Z and 0-9.", minAccessKeyIDLen, maxAccessKeyIDLen))
	case !isDigits(f[1], 8):
		return malformed("Authorization header 'Credential' has an invalid date: it must be YYYYMMDD.")
	case !isScopeName(f[2], maxScopeFieldLen, false):
		return malformed("Authorization header 'Credential' has an invalid region: it must be 1 to 64 characters a-z, 0-9 and '-'.")
	case !isScopeName(f[3], maxScopeFieldLen, false):
		return malformed("Authorization header 'Credential' has an invalid service name: it must be 1 to 64 characters a-z, 0-9 and '-'.")
	case !isScopeName(f[4], maxTerminatorLen, true):
		return malformed("Authorization header 'Credential' has an invalid terminator: it must be 'aws4_request'.")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service, a.Terminator = f[0], f[1], f[2], f[3], f[4]
	return nil
}

// checkSignedHeaders applies "Create a canonical request" (SignedHeaders: the
// lowercase header names, sorted, separated by semicolons), and requires host
// and x-amz-date.
func checkSignedHeaders(s string) error {
	if s == "" || len(s) > maxSignedHeadersLen {
		return malformed(fmt.Sprintf("Authorization header 'SignedHeaders' must be 1 to %d bytes.", maxSignedHeadersLen))
	}
	var prev string
	var n int
	var host, date bool
	for {
		name, rest, more := strings.Cut(s, ";")
		n++
		switch {
		case n > maxSignedHeaders:
			return malformed(fmt.Sprintf("Authorization header 'SignedHeaders' lists more than %d headers.", maxSignedHeaders))
		case !isHeaderName(name):
			return malformed("Authorization header 'SignedHeaders' must be lowercase header names separated by ';'.")
		case prev != "" && name <= prev:
			return malformed("Authorization header 'SignedHeaders' must be sorted and must not repeat a header.")
		}
		host = host || name == "host"
		date = date || name == "x-amz-date"
		prev = name
		if !more {
			break
		}
		s = rest
	}
	switch {
	case !host:
		return malformed("Authorization header 'SignedHeaders' must include 'host'.")
	case !date:
		return malformed("Authorization header 'SignedHeaders' must include 'x-amz-date'.")
	}
	return nil
}

// hasSignedHeader reports whether the validated list signed contains name.
func hasSignedHeader(signed, name string) bool {
	for {
		h, rest, more := strings.Cut(signed, ";")
		if h == name {
			return true
		}
		if !more || h > name {
			return false
		}
		signed = rest
	}
}

func malformed(msg string) *Error { return newError(KindMalformed, msg) }

func isAccessKeyID(s string) bool {
	if len(s) < minAccessKeyIDLen || len(s) > maxAccessKeyIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isScopeName accepts 1..maxLen characters [a-z0-9-], or [a-z0-9_] when
// underscore (the terminator).
func isScopeName(s string, maxLen int, underscore bool) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && !underscore, c == '_' && underscore:
		default:
			return false
		}
	}
	return true
}

// isHeaderName accepts a lowercase header name made of [a-z0-9._-]. Every
// header the SDKs sign fits; refusing other token characters keeps the
// mapping to net/http's canonical header keys unambiguous.
func isHeaderName(s string) bool {
	if s == "" || len(s) > maxHeaderNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isToken reports whether s is a non-empty RFC 9110 token, the syntax of an
// authentication scheme.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// SignedHeaders returns the names an Authorization header's SignedHeaders
// lists (lowercase and sorted), as Verify reads them, for a party that
// passes a signed request on with only the headers its signature covers;
// a header Verify would refuse is an *Error.
func SignedHeaders(authorization string) ([]string, error) {
	a, err := parseAuthorization(authorization)
	if err != nil {
		return nil, err
	}
	return strings.Split(a.SignedHeaders, ";"), nil
}
