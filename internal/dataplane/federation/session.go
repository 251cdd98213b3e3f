package federation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/behalf-dev/behalf/internal/dataplane/access"
	"github.com/behalf-dev/behalf/internal/dataplane/tokenflow"
	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/wire"
)

// startSession begins a three-legged authorization and returns its URL.
func (s *Service) startSession(ctx context.Context, v access.Verified, p access.OAuth2Provider, in *tokenflow.Request) (*tokenflow.Response, error) {
	w := v.Workload
	switch {
	case len(w.AllowedReturnURLs) == 0:
		return nil, wire.Validation(fmt.Sprintf("workload identity %s has no allowedResourceOauth2ReturnUrls: register at least one to use USER_FEDERATION", w.Name),
			wire.FieldError{Name: "resourceOauth2ReturnUrl", Message: "no return URL is registered on the workload identity"})
	case in.ReturnURL == nil:
		return nil, wire.Validation("resourceOauth2ReturnUrl is required to start a USER_FEDERATION authorization",
			wire.FieldError{Name: "resourceOauth2ReturnUrl", Message: "is required"})
	case !slices.Contains(w.AllowedReturnURLs, *in.ReturnURL):
		return nil, wire.Validation(fmt.Sprintf("resourceOauth2ReturnUrl is not one of workload identity %s's allowedResourceOauth2ReturnUrls", w.Name),
			wire.FieldError{Name: "resourceOauth2ReturnUrl", Message: "is not an allowed return URL of the workload identity"})
	case p.Config.Resolved.AuthorizationEndpoint == "":
		return nil, wire.Validation(fmt.Sprintf("credential provider %s has no authorization endpoint, so it cannot run USER_FEDERATION", p.Name),
			wire.FieldError{Name: "oauth2Flow", Message: "USER_FEDERATION is not supported by this provider"})
	}
	id, state := randomToken(), randomToken()
	secrets := sessionSecrets{CustomParameters: in.CustomParameters}
	if in.CustomState != nil {
		secrets.CustomState = *in.CustomState
	}
	authURL, verifier := s.authorizationURL(p, state, in)
	secrets.AuthorizationURL, secrets.Verifier = authURL, verifier
	request, _ := json.Marshal(sessionRequest{Scopes: in.Scopes, Resources: in.Resources, Audiences: in.Audiences, ReturnURL: *in.ReturnURL})
	now := s.Now()
	stateHash := sha256.Sum256([]byte(state))
	sess := storage.OAuthSession{
		ID: id, StateHash: stateHash[:], ProviderID: p.ID, Workload: w.Name, User: v.Claims.User,
		Status: storage.SessionInProgress, Request: request,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.sessionTTL()),
	}
	var err error
	if sess.Secrets, err = s.sealSession(ctx, sess, secrets); err != nil {
		return nil, wire.Internal(err)
	}
	if err := s.Store.CreateOAuthSession(ctx, sess); err != nil {
		return nil, wire.Internal(err)
	}
	return &tokenflow.Response{AuthorizationURL: authURL, SessionURI: SessionURIPrefix + id, SessionStatus: string(storage.SessionInProgress)}, nil
}

// authorizationURL builds the authorization request (RFC 6749 §4.1.1) with
// PKCE (RFC 7636) when the provider supports it, the vendor's extra
// parameters, RFC 8707 resources and the caller's custom parameters,
// which never override the standard ones (validation refuses those).
func (s *Service) authorizationURL(p access.OAuth2Provider, state string, in *tokenflow.Request) (string, string) {
	v := p.Config.VendorInfo()
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {p.Config.ClientID},
		"redirect_uri":  {s.callbackURL(p.ID)},
		"state":         {state},
	}
	scopes := in.Scopes
	for _, rs := range v.RefreshScopes {
		if !slices.Contains(scopes, rs) {
			scopes = append(slices.Clone(scopes), rs)
		}
	}
	if len(scopes) > 0 {
		q.Set("scope", v.JoinScopes(scopes))
	}
	verifier := ""
	if p.Config.PKCE() {
		verifier = oauth2.GenerateVerifier()
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", "S256")
	}
	for k, val := range v.AuthorizationParams {
		q.Set(k, val)
	}
	tokenflow.AddRequestParameters(q, in)
	endpoint := p.Config.Resolved.AuthorizationEndpoint
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return endpoint + sep + q.Encode(), verifier
}

func (s *Service) callbackURL(providerID string) string {
	return s.opts.CallbackBase + providerID
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
