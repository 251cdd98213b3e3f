package sdk

import "context"

// WithAccessToken wraps a tool function that needs an OAuth2 access token,
// as AgentCore's requires_access_token does: each call gets the token for
// o, with the workload access token of the call's context unless o names
// one, and passes it to fn. For USER_FEDERATION without o.OnAuthURL, a
// call the user has not authorized fails with a *ConsentRequired.
func WithAccessToken[In, Out any](api API, o OAuth2, fn func(ctx context.Context, token string, in In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		var zero Out
		s, err := NewTokenSource(ctx, api, o)
		if err != nil {
			return zero, err
		}
		t, err := s.TokenContext(ctx)
		if err != nil {
			return zero, err
		}
		return fn(ctx, t.AccessToken, in)
	}
}

// WithAPIKey wraps a tool function that needs an API key, as AgentCore's
// requires_api_key does: each call gets the key of the provider with the
// workload access token of the call's context unless o names one (o's
// Header, Prefix and TTL do not apply).
func WithAPIKey[In, Out any](api API, o APIKey, fn func(ctx context.Context, key string, in In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		var zero Out
		s, err := NewAPIKeySource(ctx, api, o)
		if err != nil {
			return zero, err
		}
		key, err := s.Key(ctx, false)
		if err != nil {
			return zero, err
		}
		return fn(ctx, key, in)
	}
}
