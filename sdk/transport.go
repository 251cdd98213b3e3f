package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockagentcore"
)

// Credential puts a credential into an outbound request; refresh asks for
// a new one rather than the cached one. *TokenSource and *APIKeySource are
// Credentials.
type Credential interface {
	Apply(ctx context.Context, r *http.Request, refresh bool) error
}

// Transport is an http.RoundTripper that puts Credential into each
// request. When the server answers 401, it gets a new credential and sends
// the request once more; when it answers 403 with a Bearer
// insufficient_scope challenge (RFC 6750 §3.1) and MaxStepUps allows, it
// steps up. A request is sent again only if its body can be (it has
// none, or GetBody, which http.NewRequest sets for in-memory bodies). A
// request an http.Client makes to follow a redirect to another origin
// (scheme, host and port; RFC 6454 §4) goes without the credential: an
// open redirect, or a download link on another host, must not receive it.
type Transport struct {
	Credential Credential
	Base       http.RoundTripper // defaults to http.DefaultTransport

	// MaxStepUps is how many times one request may step up (default
	// none): when Credential is a *TokenSource and the server's 403
	// challenge names scopes its token was not asked for, the source asks
	// for those too, and the request is sent again with the new token.
	// This is the MCP authorization specification's "Scope Challenge
	// Handling"; an MCP server provider's token covers what the user
	// granted before as well, since behalf asks the user's consent for
	// the union of both. A challenge naming no scope the token was not
	// asked for ends the steps: its 403 is the answer.
	MaxStepUps int
}

// RoundTrip implements http.RoundTripper; it never modifies req. When a
// new credential is needed and the user must consent first, the error is
// the *ConsentRequired (errors.As finds it through the *url.Error of an
// http.Client); any other failure to get one leaves the server's answer
// as it was.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if redirectedElsewhere(req) {
		return base.RoundTrip(req)
	}
	ctx := req.Context()
	ts, _ := t.Credential.(*TokenSource)
	var st retries
	if ts != nil {
		st.asked = ts.scopes()
	}
	r := req.Clone(ctx)
	if err := t.Credential.Apply(ctx, r, false); err != nil {
		closeBody(req)
		return nil, err
	}
	res, err := base.RoundTrip(r)
	for err == nil && (req.Body == nil || req.Body == http.NoBody || req.GetBody != nil) {
		again, refresh := t.again(res, ts, &st)
		if !again {
			return res, nil
		}
		retry := req.Clone(ctx)
		if req.GetBody != nil {
			if retry.Body, err = req.GetBody(); err != nil {
				return res, nil //nolint:nilerr // the first answer stands when the body cannot be replayed
			}
		}
		if err := t.Credential.Apply(ctx, retry, refresh); err != nil {
			closeBody(retry)
			if _, consent := errors.AsType[*ConsentRequired](err); consent {
				discard(res)
				return nil, err
			}
			return res, nil //nolint:nilerr // the first answer stands when no new credential can be had
		}
		discard(res)
		res, err = base.RoundTrip(retry)
	}
	return res, err
}

// retries is what one request's retries have used.
type retries struct {
	refreshed bool
	stepUps   int
	asked     []string // the scopes the last token sent was asked for
}

// again reports whether the request answered res is sent again, and
// whether with a refreshed credential rather than a stepped-up one.
func (t *Transport) again(res *http.Response, ts *TokenSource, st *retries) (again, refresh bool) {
	switch {
	case res.StatusCode == http.StatusUnauthorized && !st.refreshed:
		st.refreshed = true
		return true, true
	case res.StatusCode == http.StatusForbidden && ts != nil && st.stepUps < t.MaxStepUps:
		scopes, ok := insufficientScope(res.Header)
		if !ok || !ts.stepUp(st.asked, scopes) {
			return false, false
		}
		st.stepUps++
		st.asked = ts.scopes()
		return true, false
	}
	return false, false
}

// discard closes an answer that a retry replaces, reading a little of it
// first so that its connection may be reused.
func discard(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
	_ = res.Body.Close()
}

// redirectedElsewhere reports whether req follows a redirect (an
// http.Client sets its Response) to an origin other than that of the
// request the client was asked to make.
func redirectedElsewhere(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return !strings.EqualFold(first.URL.Scheme, req.URL.Scheme) || !strings.EqualFold(first.URL.Host, req.URL.Host)
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// Apply sets the request's Authorization header to the bearer token
// (RFC 6750 §2.1); refresh forces a new token (TokenSource.Refresh).
func (s *TokenSource) Apply(ctx context.Context, r *http.Request, refresh bool) error {
	if refresh {
		s.Refresh()
	}
	t, err := s.TokenContext(ctx)
	if err != nil {
		return err
	}
	t.SetAuthHeader(r)
	return nil
}

// APIKey says which API key to get (GetResourceApiKey) and where to put it.
type APIKey struct {
	Provider string // the credential provider's name
	// WorkloadToken defaults to the context's (sdk.WorkloadToken).
	WorkloadToken string
	// Header names the request header the key goes in (default
	// Authorization), after Prefix (for example "Bearer ").
	// QueryParameter, when set, puts the key in the URL's query instead.
	Header, Prefix, QueryParameter string
	// TTL is how long a key is reused before it is asked for again
	// (default five minutes).
	TTL time.Duration
}

// APIKeySource gets an API key for one provider and workload access token,
// and reuses it for its TTL; it is safe for concurrent use.
type APIKeySource struct {
	api API
	in  bedrockagentcore.GetResourceApiKeyInput
	o   APIKey
	now func() time.Time

	mu      sync.Mutex
	key     string
	expires time.Time
}

// NewAPIKeySource returns a key source for o; the workload token defaults
// to that of ctx's invocation.
func NewAPIKeySource(ctx context.Context, api API, o APIKey) (*APIKeySource, error) {
	wat := o.WorkloadToken
	if wat == "" {
		wat = WorkloadToken(ctx)
	}
	if wat == "" {
		return nil, ErrNoWorkloadToken
	}
	if o.Header == "" {
		o.Header = "Authorization"
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	return &APIKeySource{api: api, o: o, now: time.Now,
		in: bedrockagentcore.GetResourceApiKeyInput{WorkloadIdentityToken: &wat, ResourceCredentialProviderName: &o.Provider}}, nil
}

// Key returns the API key: the cached one unless refresh is set or its TTL
// has passed.
func (s *APIKeySource) Key(ctx context.Context, refresh bool) (string, error) {
	s.mu.Lock()
	if s.key != "" && !refresh && s.now().Before(s.expires) {
		defer s.mu.Unlock()
		return s.key, nil
	}
	in := s.in
	s.mu.Unlock()

	out, err := s.api.GetResourceApiKey(ctx, &in)
	if err != nil {
		return "", err
	}
	if out.ApiKey == nil || *out.ApiKey == "" {
		return "", errors.New("sdk: GetResourceApiKey returned no key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key, s.expires = *out.ApiKey, s.now().Add(s.o.TTL)
	return s.key, nil
}

// Apply puts the key in the configured header or query parameter.
func (s *APIKeySource) Apply(ctx context.Context, r *http.Request, refresh bool) error {
	key, err := s.Key(ctx, refresh)
	if err != nil {
		return err
	}
	if s.o.QueryParameter != "" {
		q := r.URL.Query()
		q.Set(s.o.QueryParameter, s.o.Prefix+key)
		r.URL.RawQuery = q.Encode()
		return nil
	}
	r.Header.Set(s.o.Header, s.o.Prefix+key)
	return nil
}
