// Package oauthclient calls OAuth 2.0 token endpoints on behalf of
// credential providers: client credentials (RFC 6749 §4.4), and the
// authorization-code, refresh and token-exchange grants that share the
// same request and response shapes (RFC 6749 §4.1.3, §6; RFC 8693).
//
// It is written against the RFCs rather than with golang.org/x/oauth2
// because behalf needs what that package does not offer per request:
// repeated RFC 8707 resource parameters on every grant (refresh included),
// vendor quirks from the catalogue (JSON bodies, extra headers, errors sent
// with HTTP 200), and errors that quote the provider's error code and
// description but never echo a response body that may hold tokens.
package oauthclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/behalf-dev/behalf/internal/oauthvendor"
	"github.com/behalf-dev/behalf/internal/oauthwire"
	"github.com/behalf-dev/behalf/internal/telemetry"
)

// maxResponse bounds a token response.
const maxResponse = 1 << 20

// Request is one call to a token endpoint.
type Request struct {
	Endpoint   string
	AuthMethod oauthvendor.AuthMethod
	ClientID   string
	// ClientSecret is the client's secret or, with PrivateKeyJWT, its PEM
	// private key, which signs a client assertion with SigningAlgorithm
	// ("" chooses from the key) for Audience: the authorization server's
	// issuer, which the OAuth working group's update of RFC 7523 requires
	// to stop assertions being replayed at another server, or "" for the
	// endpoint (RFC 7523 §3).
	ClientSecret     string
	SigningAlgorithm string
	Audience         string
	// Signer, with PrivateKeyJWT, signs the client assertion with a key
	// behalf holds (package signingkeys, or a key-management backend's:
	// AssertionSigner) instead of ClientSecret's; it names its algorithm
	// and key id.
	Signer jose.Signer
	// AssertionClaims are added to the client assertion's claims, but
	// never in place of ReservedPayloadClaims.
	AssertionClaims map[string]string
	// Form holds the grant's parameters (grant_type, scope, resource, …).
	Form url.Values
	// Vendor quirks.
	BodyFormat         oauthvendor.BodyFormat
	Headers            map[string]string
	ErrorsWithStatusOK bool
}

// Token is a successful token response (RFC 6749 §5.1).
type Token struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	Scope        string
	IDToken      string
	// IssuedTokenType is set by token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string
	// Expiry is zero when the provider did not say.
	Expiry time.Time
}

// ProviderError is an error response from the provider (RFC 6749 §5.2),
// or a response that was not a usable token. Its fields are safe to show:
// they hold the provider's own error code and description, never tokens.
type ProviderError struct {
	Status      int
	Code        string
	Description string
	// Reason explains a response that was not a valid error either.
	Reason string
}

func (e *ProviderError) Error() string {
	switch {
	case e.Code != "" && e.Description != "":
		return fmt.Sprintf("the provider answered %s: %s", e.Code, e.Description)
	case e.Code != "":
		return "the provider answered " + e.Code
	case e.Reason != "":
		return e.Reason
	}
	return fmt.Sprintf("the provider answered HTTP %d", e.Status)
}

// Client sends token requests.
type Client struct {
	// HTTP sends the requests; it should come from egress.NewClient, which
	// applies the outbound address policy and never follows a redirect.
	HTTP *http.Client
	// UserAgent identifies behalf to providers that require one.
	UserAgent string
	// Now is the clock that turns expires_in into Token.Expiry; nil means
	// time.Now.
	Now func() time.Time
}

func (c *Client) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Do sends r and parses the response.
func (c *Client) Do(ctx context.Context, r Request) (*Token, error) {
	form := url.Values{}
	for k, v := range r.Form {
		form[k] = v
	}
	req, err := c.newRequest(ctx, r, form)
	if err != nil {
		return nil, err
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// One text for a timeout, a refused connection and an address the
		// egress policy refuses, so the endpoint cannot probe a network.
		return nil, &ProviderError{Reason: "could not reach the provider's token endpoint"}
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return nil, &ProviderError{Status: res.StatusCode, Reason: "the provider's response could not be read"}
	}
	if len(body) > maxResponse {
		return nil, &ProviderError{Status: res.StatusCode, Reason: "the provider's response is larger than 1 MiB"}
	}
	tok, err := parse(res, body, r.ErrorsWithStatusOK, c.now())
	var pe *ProviderError
	if errors.As(err, &pe) {
		pe.redact(secretsOf(r, form))
		telemetry.SetOAuthError(ctx, pe.Code)
	}
	return tok, err
}

// echoable lists the form parameters that carry secrets a provider may
// echo back in an error description.
var echoable = []string{"code", "code_verifier", "refresh_token", "subject_token", "actor_token", "client_assertion", "password", "assertion"}

// secretsOf returns the secrets sent in r: the client secret and every
// secret-bearing form value.
func secretsOf(r Request, form url.Values) []string {
	out := []string{r.ClientSecret}
	for _, k := range echoable {
		out = append(out, form[k]...)
	}
	return out
}

// redact removes every secret that was sent, in the forms it was sent in,
// from text a provider sent back — a provider that echoes one must not put
// it in behalf's errors, logs or pages — then bounds the text.
func (e *ProviderError) redact(secrets []string) {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 {
			pairs = append(pairs, s, "[redacted]", url.QueryEscape(s), "[redacted]", url.PathEscape(s), "[redacted]")
		}
	}
	if len(pairs) > 0 {
		r := strings.NewReplacer(pairs...)
		e.Code, e.Description, e.Reason = r.Replace(e.Code), r.Replace(e.Description), r.Replace(e.Reason)
	}
	e.Code, e.Description = printable(e.Code, 64), printable(e.Description, 256)
}

func (c *Client) newRequest(ctx context.Context, r Request, form url.Values) (*http.Request, error) {
	header := http.Header{}
	header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		header.Set("User-Agent", c.UserAgent)
	}
	switch r.AuthMethod {
	case oauthvendor.NoClient:
	case oauthvendor.ClientSecretPost:
		form.Set("client_id", r.ClientID)
		if r.ClientSecret != "" {
			form.Set("client_secret", r.ClientSecret)
		}
	case oauthvendor.PrivateKeyJWT:
		aud := r.Audience
		if aud == "" {
			aud = r.Endpoint
		}
		assertion, err := clientAssertion(r.Signer, []byte(r.ClientSecret), r.SigningAlgorithm, r.ClientID, aud, r.AssertionClaims, c.now())
		if err != nil {
			return nil, err
		}
		form.Set("client_id", r.ClientID)
		form.Set("client_assertion_type", oauthwire.ClientAssertionType)
		form.Set("client_assertion", assertion)
	default:
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		cred := url.QueryEscape(r.ClientID) + ":" + url.QueryEscape(r.ClientSecret)
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	var body []byte
	if r.BodyFormat == oauthvendor.BodyJSON {
		m := make(map[string]any, len(form))
		for k, v := range form {
			if len(v) == 1 {
				m[k] = v[0]
			} else {
				m[k] = v
			}
		}
		body, _ = json.Marshal(m)
		header.Set("Content-Type", "application/json")
	} else {
		body = []byte(form.Encode())
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.Headers {
		header.Set(k, v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &ProviderError{Reason: "the provider's token endpoint is not a valid URL"}
	}
	req.Header = header
	return req, nil
}

// response is the union of RFC 6749 §5.1 and §5.2 members.
type response struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	RefreshToken     string          `json:"refresh_token"`
	Scope            json.RawMessage `json:"scope"`
	IDToken          string          `json:"id_token"`
	IssuedTokenType  string          `json:"issued_token_type"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// parse reads a token response received at now.
func parse(res *http.Response, body []byte, errorsWithOK bool, now time.Time) (*Token, error) {
	var r response
	if err := decodeResponse(res, body, &r); err != nil {
		return nil, err
	}
	if err := checkResponse(res, &r, errorsWithOK); err != nil {
		return nil, err
	}
	t := &Token{AccessToken: r.AccessToken, TokenType: r.TokenType, RefreshToken: r.RefreshToken, IDToken: r.IDToken, IssuedTokenType: r.IssuedTokenType}
	if len(r.Scope) > 0 {
		var s string
		if json.Unmarshal(r.Scope, &s) == nil {
			t.Scope = s
		}
	}
	if secs, ok := expiresIn(r.ExpiresIn); ok && secs > 0 {
		t.Expiry = now.Add(time.Duration(secs) * time.Second)
	}
	return t, nil
}

// decodeResponse decodes a token response, JSON (RFC 6749 section 5.1) or,
// as some providers answer, form-encoded, into r.
func decodeResponse(res *http.Response, body []byte, r *response) error {
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" || (mt == "text/plain" && !json.Valid(body)) {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return &ProviderError{Status: res.StatusCode, Reason: "the provider's response is neither JSON nor form-encoded"}
		}
		*r = response{AccessToken: v.Get("access_token"), TokenType: v.Get("token_type"), RefreshToken: v.Get("refresh_token"),
			IDToken: v.Get("id_token"), Error: v.Get("error"), ErrorDescription: v.Get("error_description")}
		if s := v.Get("scope"); s != "" {
			r.Scope, _ = json.Marshal(s)
		}
		if s := v.Get("expires_in"); s != "" {
			r.ExpiresIn = json.RawMessage(s)
		}
		return nil
	}
	if err := json.Unmarshal(body, r); err != nil {
		if res.StatusCode/100 != 2 {
			return &ProviderError{Status: res.StatusCode}
		}
		return &ProviderError{Status: res.StatusCode, Reason: "the provider's token response is not valid JSON"}
	}
	return nil
}

// checkResponse returns the provider's error (RFC 6749 section 5.2), or
// why the response is not a bearer token. A token with a stray error
// member and status 200 is taken, unless errorsWithOK says the provider
// reports errors with status 200.
func checkResponse(res *http.Response, r *response, errorsWithOK bool) error {
	if r.Error != "" || res.StatusCode/100 != 2 {
		if r.Error == "" {
			return &ProviderError{Status: res.StatusCode}
		}
		if res.StatusCode/100 != 2 || errorsWithOK || r.AccessToken == "" {
			// Bounded later, after redaction, so that no cut hides a secret.
			return &ProviderError{Status: res.StatusCode, Code: printable(r.Error, maxResponse), Description: printable(r.ErrorDescription, maxResponse)}
		}
		r.Error = "" // a token with a stray error member: take the token
	}
	if r.AccessToken == "" {
		return &ProviderError{Status: res.StatusCode, Reason: "the provider's token response has no access_token"}
	}
	if r.TokenType != "" && !strings.EqualFold(r.TokenType, "bearer") && !strings.EqualFold(r.TokenType, "n_a") {
		return &ProviderError{Status: res.StatusCode, Reason: fmt.Sprintf("the provider issued a %q token; behalf handles bearer tokens only", printable(r.TokenType, 32))}
	}
	return nil
}

// expiresIn reads expires_in as a number or, as some providers send it, a
// string.
func expiresIn(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		i, err := strconv.ParseInt(n.String(), 10, 64)
		return i, err == nil && i < 1<<31
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		i, err := strconv.ParseInt(s, 10, 64)
		return i, err == nil && i < 1<<31
	}
	return 0, false
}

// printable keeps a provider string safe to quote: printable ASCII, bounded.
func printable(s string, maxLen int) string {
	b := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(b) < maxLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// Revocation is one call to a revocation endpoint.
type Revocation struct {
	Endpoint   string
	Style      oauthvendor.RevocationStyle
	AuthMethod oauthvendor.AuthMethod
	ClientID   string
	// ClientSecret, SigningAlgorithm, Audience, Signer and
	// AssertionClaims are as in Request.
	ClientSecret     string
	SigningAlgorithm string
	Audience         string
	Signer           jose.Signer
	AssertionClaims  map[string]string
	// Token is revoked; Hint is "refresh_token" or "access_token".
	Token, Hint string
	Headers     map[string]string
}

// Revoke revokes a token at the provider: RFC 7009 §2.1, or the vendor's
// own style (a bearer-authenticated call, or GitHub's application API). A
// token the provider does not know counts as revoked (RFC 7009 §2.2).
func (c *Client) Revoke(ctx context.Context, r Revocation) error {
	req, err := c.revocationRequest(ctx, r)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ProviderError{Reason: "could not reach the provider's revocation endpoint"}
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	// GitHub answers 404 for a token it does not know: already revoked.
	if res.StatusCode/100 == 2 || (r.Style == oauthvendor.RevocationGitHub && res.StatusCode == http.StatusNotFound) {
		return nil
	}
	pe := &ProviderError{Status: res.StatusCode}
	var e response
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		pe.Code, pe.Description = e.Error, e.ErrorDescription
	}
	pe.redact([]string{r.ClientSecret, r.Token})
	telemetry.SetOAuthError(ctx, pe.Code)
	return pe
}

// revocationRequest is r's request in its style.
func (c *Client) revocationRequest(ctx context.Context, r Revocation) (*http.Request, error) {
	var req *http.Request
	var err error
	switch r.Style {
	case oauthvendor.RevocationBearer:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, r.Endpoint, nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+r.Token)
		}
	case oauthvendor.RevocationGitHub:
		body, _ := json.Marshal(map[string]string{"access_token": r.Token})
		endpoint := strings.ReplaceAll(r.Endpoint, oauthvendor.ClientIDPlaceholder, url.PathEscape(r.ClientID))
		req, err = http.NewRequestWithContext(ctx, http.MethodDelete, endpoint, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth(r.ClientID, r.ClientSecret)
		}
	default:
		form := url.Values{"token": {r.Token}}
		if r.Hint != "" {
			form.Set("token_type_hint", r.Hint)
		}
		req, err = c.newRequest(ctx, Request{Endpoint: r.Endpoint, AuthMethod: r.AuthMethod, ClientID: r.ClientID,
			ClientSecret: r.ClientSecret, SigningAlgorithm: r.SigningAlgorithm, Audience: r.Audience, Signer: r.Signer, AssertionClaims: r.AssertionClaims}, form)
	}
	if ke := (*ClientKeyError)(nil); errors.As(err, &ke) {
		return nil, ke
	}
	if se := (*SigningError)(nil); errors.As(err, &se) {
		return nil, se
	}
	if err != nil {
		return nil, &ProviderError{Reason: "the provider's revocation endpoint is not a valid URL"}
	}
	return req, nil
}
