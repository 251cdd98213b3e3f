package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore/types"
	"github.com/aws/smithy-go"

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/mcpauth"
	"github.com/behalf-dev/behalf/internal/oauthwire"
)

// serveTool takes the caller's workload access token and forwards; the
// proxy's transport injects the credential.
func (g *Gateway) serveTool(w http.ResponseWriter, r *http.Request, s *callState) {
	rt := s.route
	s.wat = r.Header.Get(HeaderWAT)
	if s.wat == "" {
		s.wat = r.Header.Get(HeaderWATLegacy)
	}
	if s.wat == "" {
		challenge(w, "", "the caller's workload access token ("+HeaderWAT+") is required")
		return
	}
	body, ok := readBody(w, r, rt)
	if !ok {
		return
	}
	if calls, err := mcpCallsOf(r, body); err == nil && len(calls) > 0 {
		s.rpc, s.mcpBody = rpcRequestOf(r, body), true
	}
	if g.acceptRequestState(w, r, s) {
		g.forward(w, r, s)
	}
}

// readBody reads a tool call's body within the route's limit and timeout
// and puts it back, so that a call the upstream refuses with 401 can be
// sent again with a fresh credential. It answers the caller itself when
// it cannot.
func readBody(w http.ResponseWriter, r *http.Request, rt *route) ([]byte, bool) {
	lift := bodyDeadline(w, r, rt.Timeout)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rt.MaxBodyBytes))
	if err != nil {
		bodyRefused(w, err)
		return nil, false
	}
	lift()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return body, true
}

// bodyRefused answers a request body that could not be read: over the
// route's limit (413), not sent within its timeout (408), or cut (400).
func bodyRefused(w http.ResponseWriter, err error) {
	switch _, tooLarge := errors.AsType[*http.MaxBytesError](err); {
	case tooLarge:
		writeError(w, http.StatusRequestEntityTooLarge, "ValidationException", "the request body could not be read within this route's limit")
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeError(w, http.StatusRequestTimeout, errBodyTimeout, msgBodyTimeout)
	default:
		writeError(w, http.StatusBadRequest, "ValidationException", "the request body could not be read within this route's limit")
	}
}

// toolHeaders are the caller's headers as the proxy forwards them — its
// hop-by-hop headers (RFC 9110 §7.6.1) and the forwarding headers it could
// forge to pass for another client (Forwarded, X-Forwarded-*) dropped —
// but for any credential, under any spelling of its name: a tool sees neither the caller's workload access token nor its own credential
// as the caller sent it, nor AWS headers, nor behalf's own (X-Behalf-*,
// which only the gateway sets). Nor does it see trace context (W3C
// traceparent, tracestate, baggage): a tool is a third party, which
// learns nothing of the traces, as behalf's providers do not.
func toolHeaders(forwarded http.Header, credentialHeader string) http.Header {
	out := forwarded.Clone()
	credential := strings.ToLower(credentialHeader)
	for k := range out {
		// Underscores count as dashes: CGI-style servers (WSGI, PHP, some
		// proxies) read X_Api_Key as X-Api-Key.
		lower := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		if strings.HasPrefix(lower, "x-amz-") || strings.HasPrefix(lower, "x-amzn-") || strings.HasPrefix(lower, "x-behalf-") ||
			notForTools[lower] || lower == credential {
			delete(out, k)
		}
	}
	return out
}

// notForTools are the caller's headers, in lower case, that no tool
// receives.
var notForTools = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true,
	strings.ToLower(HeaderWATLegacy): true, "traceparent": true, "tracestate": true, "baggage": true}

// credentialTransport injects the route's credential into each upstream
// call and retries it once with another: when the upstream answers 401,
// one fetched again (forcing a new one); when it answers a user's token
// 403 insufficient_scope, one for the challenge's scopes (step-up).
type credentialTransport struct {
	base  http.RoundTripper
	g     *Gateway
	route *route
}

// A refused API key is fetched again only if it came from the cache: a
// key fetched for this call is the provider's current one.
func (t *credentialTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := stateOf(req)
	cred, cached, err := t.g.reusedCredential(req.Context(), s, t.route)
	if _, consent := errors.AsType[*consentRequired](err); consent && s.mcpBody && !s.rpc.elicits() {
		return t.withoutConsent(req, err)
	}
	if err != nil {
		return nil, err
	}
	res, err := t.base.RoundTrip(inject(req, t.route.Credential, cred))
	if err != nil || req.GetBody == nil {
		return res, err
	}
	var again func(context.Context, *callState, *route) (string, error)
	switch c := t.route.Credential; {
	case res.StatusCode == http.StatusUnauthorized && (c.Type != config.CredentialAPIKey || cached):
		again = t.g.freshCredential
	case res.StatusCode == http.StatusForbidden && c.Type == config.CredentialUser:
		scopes, ok := insufficientScope(res.Header)
		if !ok {
			return res, nil
		}
		again = func(ctx context.Context, s *callState, rt *route) (string, error) {
			return t.g.steppedUpCredential(ctx, s, rt, scopes)
		}
	default:
		return res, nil
	}
	_ = res.Body.Close() // refused: its body is of no use
	if cred, err = again(req.Context(), s, t.route); err != nil {
		return nil, err
	}
	retry := req.Clone(req.Context())
	if retry.Body, err = req.GetBody(); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(inject(retry, t.route.Credential, cred))
}

// withoutConsent sends an MCP message that MCP gives no way to ask the
// user's consent in (initialize, a listing, a notification) without the
// user's token, which the user has not given yet: the client's session
// starts, and its tool call asks for the consent (answerConsent). An
// upstream that refuses the message so gets the consent asked for here.
func (t *credentialTransport) withoutConsent(req *http.Request, consent error) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err == nil && res.StatusCode == http.StatusUnauthorized {
		_ = res.Body.Close() // refused: its body is of no use
		return nil, consent
	}
	return res, err
}

// inject puts the credential where the route says.
func inject(req *http.Request, c config.GatewayCredentialFile, cred string) *http.Request {
	req = req.Clone(req.Context())
	if c.QueryParameter != "" {
		q := req.URL.Query()
		q.Set(c.QueryParameter, aws.ToString(c.Prefix)+cred)
		req.URL.RawQuery = q.Encode()
		return req
	}
	req.Header.Set(c.Header, aws.ToString(c.Prefix)+cred)
	return req
}

// echoHeaders are the response headers that name a URL an upstream may
// echo from its request.
var echoHeaders = []string{"Location", "Content-Location"}

// withoutCredential removes a query-parameter credential from a tool's
// Location and Content-Location, where an upstream echoing its request's
// URL (a redirect that adds a trailing slash, say) would hand the caller
// the credential it must never hold. A redirect whose Location held it
// loses its body too: a hypertext note of the same URL (RFC 9110 §15.4).
func (r *route) withoutCredential(res *http.Response) {
	q := r.Credential.QueryParameter
	if q == "" {
		return
	}
	for _, k := range echoHeaders {
		var kept []string
		held := false
		for _, ref := range res.Header.Values(k) {
			ref, had := withoutParameter(ref, q)
			held = held || had
			if ref != "" {
				kept = append(kept, ref)
			}
		}
		if !held {
			continue
		}
		res.Header.Del(k)
		if len(kept) > 0 {
			res.Header[k] = kept
		}
		if k == "Location" && res.StatusCode >= 300 && res.StatusCode < 400 {
			_ = res.Body.Close() // dropped unread
			res.Body, res.ContentLength = http.NoBody, 0
			res.Header.Del("Content-Length")
			res.Header.Del("Content-Type")
		}
	}
}

// withoutParameter is ref without query parameter q; had reports that it
// held it, or may have: a reference that does not parse is dropped ("").
func withoutParameter(ref, q string) (string, bool) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", true
	}
	values, err := url.ParseQuery(u.RawQuery)
	if err == nil && !values.Has(q) {
		return ref, false
	}
	values.Del(q)
	u.RawQuery = values.Encode()
	return u.String(), true
}

// consentRequired is the user's consent to give before the gateway can
// get their token.
type consentRequired struct{ authorizationURL, sessionURI string }

func (*consentRequired) Error() string { return "consent required" }

// deniedError is the data plane's refusal, answered to the caller as is.
type deniedError struct {
	status           int
	errType, message string
}

func (e *deniedError) Error() string { return e.errType }

// reusedCredential is the route's credential for the caller's workload
// access token, from the cache when the route has one; cached reports
// whether it came from there.
func (g *Gateway) reusedCredential(ctx context.Context, s *callState, rt *route) (cred string, cached bool, err error) {
	ttl := rt.Credential.CacheFor()
	if ttl == 0 {
		cred, err = g.credential(ctx, s.wat, rt, false, rt.Credential.Scopes)
		return cred, false, err
	}
	return g.creds.get(ctx, keyOf(rt.Name, s.cacheToken()), ttl, func(ctx context.Context) (string, error) {
		return g.credential(ctx, s.wat, rt, false, rt.Credential.Scopes)
	})
}

// cacheToken is the token a call's credential is cached under: the
// caller's workload access token, or an mcp route's client's access
// token, for which each call mints a new workload access token.
func (s *callState) cacheToken() string {
	if s.accessToken != "" {
		return s.accessToken
	}
	return s.wat
}

// freshCredential fetches the route's credential anew (forcing a new
// OAuth2 token) after the upstream refused the one injected, replacing
// the cached one.
func (g *Gateway) freshCredential(ctx context.Context, s *callState, rt *route) (string, error) {
	return g.replaceCredential(ctx, s, rt, func(ctx context.Context) (string, error) {
		return g.credential(ctx, s.wat, rt, true, rt.Credential.Scopes)
	})
}

// steppedUpCredential asks for the user's token with the route's scopes
// and those an upstream's insufficient_scope challenge named (MCP
// authorization 2025-11-25, "Step-Up Authorization Flow"). behalf adds
// those the user's connection to an MCP server provider was granted, so
// the token it returns, or the consent it asks for, covers every scope
// the route's calls needed so far: it replaces the cached credential, or
// leaves no entry while the user has not consented.
func (g *Gateway) steppedUpCredential(ctx context.Context, s *callState, rt *route, challenged []string) (string, error) {
	scopes := oauthwire.UnionScopes(rt.Credential.Scopes, challenged)
	return g.replaceCredential(ctx, s, rt, func(ctx context.Context) (string, error) {
		return g.credential(ctx, s.wat, rt, false, scopes)
	})
}

// replaceCredential fetches the route's credential with fetch in place of
// the cached one.
func (g *Gateway) replaceCredential(ctx context.Context, s *callState, rt *route, fetch func(context.Context) (string, error)) (string, error) {
	ttl := rt.Credential.CacheFor()
	if ttl == 0 {
		return fetch(ctx)
	}
	return g.creds.refresh(ctx, keyOf(rt.Name, s.cacheToken()), ttl, fetch)
}

// Bounds of a step-up challenge's scopes: GetResourceOauth2Token's
// (AWS API reference, scopes).
const (
	maxChallengeScopes = 100
	maxScopeLength     = 128
)

// insufficientScope reads the scopes of an upstream's 403 bearer
// challenge with error insufficient_scope (RFC 6750 §3.1); ok is false
// for any other answer, and for scopes behalf would refuse, which the
// caller then sees as the upstream sent them.
func insufficientScope(h http.Header) (scopes []string, ok bool) {
	cs, err := mcpauth.ParseChallenges(h.Values("WWW-Authenticate"))
	if err != nil {
		return nil, false
	}
	c, ok := mcpauth.BearerChallenge(cs)
	if !ok || c.Params["error"] != "insufficient_scope" {
		return nil, false
	}
	scopes = strings.Fields(c.Params["scope"])
	if len(scopes) == 0 || len(scopes) > maxChallengeScopes ||
		slices.ContainsFunc(scopes, func(sc string) bool { return len(sc) > maxScopeLength }) {
		return nil, false
	}
	return scopes, true
}

// credential fetches the route's credential with the caller's workload
// access token; scopes are those an OAuth2 token is asked for.
func (g *Gateway) credential(ctx context.Context, wat string, rt *route, force bool, scopes []string) (string, error) {
	c := rt.Credential
	if c.Type == config.CredentialAPIKey {
		out, err := g.data.GetResourceApiKey(ctx, &bedrockagentcore.GetResourceApiKeyInput{
			ResourceCredentialProviderName: aws.String(c.Provider), WorkloadIdentityToken: aws.String(wat)})
		if err != nil {
			return "", refusal(err)
		}
		return aws.ToString(out.ApiKey), nil
	}
	if scopes == nil {
		// None configured: the member is required, and an empty list has
		// behalf select an MCP server provider's scopes.
		scopes = []string{}
	}
	in := &bedrockagentcore.GetResourceOauth2TokenInput{
		ResourceCredentialProviderName: aws.String(c.Provider), WorkloadIdentityToken: aws.String(wat),
		Scopes: scopes, Oauth2Flow: types.Oauth2FlowTypeM2m, ForceAuthentication: aws.Bool(force)}
	if c.Type == config.CredentialUser {
		in.Oauth2Flow, in.ResourceOauth2ReturnUrl = types.Oauth2FlowTypeUserFederation, aws.String(rt.ReturnURL)
	}
	out, err := g.data.GetResourceOauth2Token(ctx, in)
	if err != nil {
		return "", refusal(err)
	}
	if out.AuthorizationUrl != nil {
		return "", &consentRequired{authorizationURL: *out.AuthorizationUrl, sessionURI: aws.ToString(out.SessionUri)}
	}
	return aws.ToString(out.AccessToken), nil
}

// refusal turns the data plane's answer into the caller's: its own
// errors (a bad token, a provider it may not use) with their type and
// message, anything else a bare 502.
func refusal(err error) error {
	var apiErr smithy.APIError
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &apiErr) && errors.As(err, &re) && re.HTTPStatusCode() < 500 {
		return &deniedError{status: re.HTTPStatusCode(), errType: apiErr.ErrorCode(), message: apiErr.ErrorMessage()}
	}
	return err
}
